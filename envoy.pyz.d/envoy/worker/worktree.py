"""A worker's worktree and branch: made, undone, and removed only once git confirms
they are the ones envoy made. Records on disk are untrusted: a path or branch read
from one is never deleted on its word alone."""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envoy import files
from envoy.errors import EnvoyError
from envoy.worker.record import Record

if TYPE_CHECKING:
    from envoy.config import Config
    from envoy.git import Git


@dataclass(frozen=True)
class Layout:
    """Where envoy puts worktrees: `<directory>/<prefix><worker name>`, or, in the default
    directory (the main checkout's parent, shared with its neighbours),
    `<directory>/<repository>-<prefix><worker name>`, so two repositories side by side
    never claim one path for their workers of the same branch name."""
    directory: Path
    prefix: str
    repository: str | None = None

    def path(self, name: str) -> Path:
        leaf = f"{self.prefix}{name}"
        if self.repository:
            room = 254 - len(leaf.encode("utf-8", "surrogateescape"))  # a file name holds 255 bytes
            repo = self.repository.encode("utf-8", "surrogateescape")[:max(room, 0)].decode("utf-8", "ignore")
            leaf = f"{repo}-{leaf}" if repo else leaf
        return self.directory / leaf

    def paths(self, name: str) -> list[Path]:
        """Every path envoy may have put worker `name`'s worktree at: `path`, and where
        envoy put it before the repository's name was part of it."""
        legacy = self.directory / f"{self.prefix}{name}"
        return [self.path(name), *([legacy] if self.repository else [])]


def layout(git: Git, config: Config) -> Layout:
    configured = config.get("PARALLEL_WORKTREE_DIR")
    if not configured:
        main = git.main_worktree()
        return Layout(main.parent, config.get("PARALLEL_WORKER_PREFIX"), main.name)
    directory = Path(os.path.expanduser(configured)).resolve()
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    if not existing.is_dir():  # git would fail to make the worktree there, after the checks
        source = config.raw("PARALLEL_WORKTREE_DIR")[1]
        raise EnvoyError("invalid_config", f"PARALLEL_WORKTREE_DIR={configured!r} from {source}: "
                         f"{existing} is not a directory",
                         "set PARALLEL_WORKTREE_DIR to a directory (or a path one can be made at)")
    return Layout(directory, config.get("PARALLEL_WORKER_PREFIX"))


class deferred_interrupt:
    """`with deferred_interrupt():` an undo that a second Ctrl-C cannot cut short;
    the interrupt is raised when the block ends."""

    def __enter__(self) -> None:
        self._caught: list[int] = []
        try:
            self._old: Any = signal.signal(signal.SIGINT, lambda signum, _: self._caught.append(signum))
        except ValueError:  # not the main thread: nothing to defer
            self._old = None

    def __exit__(self, *_: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            if self._caught:
                raise KeyboardInterrupt


def create(git: Git, record: Record) -> None:
    """The worker's worktree and branch, plus the untracked files it needs (.env,
    .worktreeinclude matches). Raises on failure; the caller undoes (see `discard`)."""
    path, base = Path(record["path"]), record.get("base_sha")
    if not base:
        raise EnvoyError("not_found", f"worker {record['name']} has no base commit to start from",
                         "spawn it again with --from REF")
    git.worktree_add(path, record["branch"], base)
    record["copied"] = copy_untracked(git, git.main_worktree(), path)


def uncommitted(git: Git, record: Record) -> list[str]:
    """The worker's uncommitted changes (modified, staged and untracked paths), less the
    files envoy copied in; [] when it has no worktree."""
    path = Path(record["path"])
    if not path.is_dir():
        return []
    copied = set(record.get("copied") or [])
    return [p for p in git.dirty_paths(path) if p not in copied]


def copy_untracked(git: Git, source: Path, target: Path) -> list[str]:
    """Copy `.env`, envoy.pyz and every file matched by `.worktreeinclude` from the main
    worktree, modes kept."""
    copied = []
    wanted = to_copy(git, source)
    for rel in sorted(wanted):
        src, dst = source / rel, target / rel
        if not (src.is_file() or src.is_symlink()) or os.path.lexists(dst):
            continue  # what the checkout has there (a committed file, or a committed symlink) stays
        try:
            copy_into(target, src, dst)
        except files.NotOurs as exc:  # the checkout is untrusted content: never copied through
            raise EnvoyError("unsafe_path", f"will not copy {rel} into {target}: {exc.filename} {exc.strerror} "
                             "(a symlink committed there would send your file where it points)",
                             f"remove {rel} from .worktreeinclude, or the symlink from the branch, then retry") from None
        except OSError as exc:  # a full disk, say: the caller undoes the checkout
            raise EnvoyError("copy_failed", f"could not copy {rel} into the worktree: {exc.strerror or exc}",
                             "free some disk space (or drop the file from .worktreeinclude), then spawn again") from None
        copied.append(rel)
    return copied


def copy_into(target: Path, src: Path, dst: Path) -> None:
    """Copy the user's file `src` to `dst` in the checkout `target` (content a worker
    chose): every directory on the way a real one (made where missing), `dst` a new
    file (O_EXCL|O_NOFOLLOW: never written through a symlink), mode kept; a symlink
    `src` is copied as a symlink. NotOurs when the way is not plain."""
    parent = files.open_dir_below(target, dst.parent, create=True)
    try:
        if src.is_symlink():
            os.symlink(os.readlink(src), dst.name, dir_fd=parent)
            return
        import shutil

        st = os.stat(src)
        try:
            fd = os.open(dst.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | files.CLOEXEC, 0o600,
                         dir_fd=parent)
        except FileExistsError:
            raise files.NotOurs(17, "appeared meanwhile: not a file envoy made", str(dst)) from None
        with os.fdopen(fd, "wb") as out, open(src, "rb") as source:
            shutil.copyfileobj(source, out)
            os.fchmod(out.fileno(), st.st_mode & 0o7777)
        os.utime(dst.name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=parent, follow_symlinks=False)
    finally:
        os.close(parent)


def to_copy(git: Git, source: Path) -> set[str]:
    """What a new worktree gets from the checkout at `source`: an untracked `.env` and
    envoy.pyz, and, as Claude Code does, the files that match `.worktreeinclude`
    (gitignore syntax) and that git ignores (so nothing a commit should carry)."""
    paths = [rel for rel in (".env", *_envoy_pyz(source)) if (source / rel).is_file()]
    wanted = set(git.untracked(source, *paths)) if paths else set()
    include = source / ".worktreeinclude"
    if include.is_file():
        matched = git.untracked(source, pattern_file=include)
        wanted.update(git.ignored_among(source, matched) if matched else set())
    return wanted


def unseen(git: Git, checkout: Path) -> list[str]:
    """Uncommitted changes of `checkout` (modified, staged, untracked and not ignored)
    that a worker started from its HEAD will not have: those not copied in."""
    dirty = git.dirty_paths(checkout, untracked="normal")  # a new directory is named once, not file by file
    if not dirty:
        return []
    copied = to_copy(git, checkout)
    return [p for p in dirty if p not in copied]


def _envoy_pyz(source: Path) -> list[str]:
    """Where the checkout keeps envoy: `envoy init`'s copy, and the pyz running now. Kept
    out of git (as init suggests), it is copied in, so the worker's hooks and its own
    `envoy parallel status` find it at the same path as in the main checkout; the
    hook commands, by design, never look outside the session's own project."""
    from envoy import pyz

    inside = pyz.running_inside(source)  # a pyz outside the checkout: nothing to copy
    return [".claude/envoy.pyz", *([inside] if inside else [])]


def discard(git: Git, where: Layout, record: Record) -> None:
    """Undo a checkout that failed or died half-way: its worktree, and its branch while
    that still points at the base and is checked out nowhere (no agent ever ran there,
    so no work can be on it). Raises unless all of it is gone."""
    path = Path(record["path"])
    if any(os.path.realpath(p) == os.path.realpath(path) for p in git.worktrees_being_made()):
        raise EnvoyError("still_running", f"git is still making {path} (the process that started it was killed)",
                         f"retry in a moment: envoy parallel cleanup --worker {record['name']}")
    if path.exists() or path.is_symlink():
        remove(git, where, record["name"], path)
    git.worktree_prune()  # the entry of a worktree whose directory is gone
    branch, base_sha = record["branch"], record.get("base_sha")
    if not base_sha:  # its base was never resolved: no branch was ever made
        return
    if git.resolve_commit(f"refs/heads/{branch}") == base_sha and git.worktree_of(branch) is None:
        git.delete_branch_at(branch, base_sha)  # only while no work can be on it: compare-and-swap
    if git.resolve_commit(f"refs/heads/{branch}") == base_sha:
        raise EnvoyError("cleanup_incomplete", f"branch {branch} of worker {record['name']} could not be removed",
                         f"git branch -D {branch}, then envoy parallel cleanup --worker {record['name']}")


def verify(git: Git, where: Layout, name: str, path: Path) -> str | None:
    """Why `path` is not a worktree envoy made for worker `name` (None: it is): it must
    be exactly where envoy puts that worker's worktree, not a symlink, and a linked
    worktree git has registered."""
    expected = next((p for p in where.paths(name) if os.path.normpath(str(path)) == str(p)), None)
    if expected is None:
        return f"{path} is not where envoy puts worker {name}'s worktree ({where.path(name)})"
    if expected.is_symlink():
        return f"{expected} is a symlink, not a worktree envoy made"
    listed = list(git.worktrees())
    real = os.path.realpath(expected)
    if not any(os.path.realpath(p) == real for p in listed[1:]):  # [0] is the main worktree
        return f"{expected} is not a git worktree of this repository"
    return None


def remove(git: Git, where: Layout, name: str, path: Path) -> None:
    """THE one way envoy deletes a worktree directory: only after `verify`, and it
    checks the directory is gone after. Raises EnvoyError otherwise."""
    problem = verify(git, where, name, path)
    if problem:
        raise EnvoyError("unverified_worktree", f"left {path} in place: {problem}",
                         "if it is yours to delete: git worktree remove --force PATH (or set "
                         "PARALLEL_WORKTREE_DIR / PARALLEL_WORKER_PREFIX as they were when it was made)")
    git.worktree_remove(path)
    if path.exists():
        raise EnvoyError("cleanup_incomplete", f"git worktree remove left {path} in place",
                         "remove it by hand, then: git worktree prune")


def remove_scratch(git: Git, base: Path, path: Path) -> None:
    """Remove a scratch worktree envoy made for its own work (land's checks, merge's
    rebase) under `base` (the common dir), never a worker's: by git, else (git no
    longer knows it) from the disk. A symlink at `path` is removed as a link, never
    handed to git (which would remove the worktree it points to); one on the way
    there refuses (files.NotOurs)."""
    from envoy.git import GitError

    try:
        files.check_below(base, path)
    except files.NotOurs:
        files.remove_below(base, path)  # a link at `path`: unlinked; a link on the way: NotOurs
        return
    if path.exists():
        try:
            git.worktree_remove(path)
        except GitError:
            files.remove_below(base, path)


def checked_out_at(git: Git, path: Path) -> str | None:
    """The branch git says is checked out in the worktree at `path`."""
    real = os.path.realpath(path)
    return next((b for p, b in git.worktrees().items() if os.path.realpath(p) == real), None)
