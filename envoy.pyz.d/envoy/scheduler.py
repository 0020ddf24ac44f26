"""Starting workers: the one place a worker goes from decided to running.

Everything here runs under the launch mutex (see slots.py): the caller has
counted the held slots and picked a free one; `start` launches the detached
supervisor of a run and returns once the supervisor holds the slot, so the
next launcher counts it. The queue (queueing.py) starts workers through here.
"""
from __future__ import annotations

import os
import select
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from . import slots
from .errors import EnvoyError
from .state import ACTIVE, Record, State, last_line, now_iso

if TYPE_CHECKING:
    from .git import Git

READY_TIMEOUT = 60.0


def self_command(bare: bool = False) -> list[str]:
    """How to run this same envoy again: the zipapp / source dir, or the installed package.
    `bare`: an interpreter without site-packages (-I -S), where that still finds envoy."""
    import envoy

    root = Path(envoy.__file__).resolve().parent.parent
    if root.is_file() or (root / "__main__.py").is_file():
        return [sys.executable, *(["-I", "-S"] if bare else []), str(root)]
    return [sys.executable, "-m", "envoy"]  # installed: site-packages is where envoy lives


def worktree_path(worktree_dir: Path, prefix: str, name: str) -> Path:
    return worktree_dir / f"{prefix}{name}"


def create_worktree(git: Git, record: Record) -> None:
    """The worker's worktree and branch, plus the untracked files it needs (.env,
    .worktreeinclude matches). On failure nothing is left behind."""
    path = Path(record["path"])
    git.worktree_add(path, record["branch"], record["base_sha"])
    record["worktree_created"] = True  # so cleanup removes only what envoy made
    try:
        record["copied"] = copy_untracked(git, git.main_worktree(), path)
    except BaseException:
        _undo_worktree(git, record)
        raise


def _undo_worktree(git: Git, record: Record) -> None:
    """Remove the worktree and branch envoy just made, and say so in the record:
    cleanup must not later take a same-named branch for this worker's."""
    git.worktree_remove(Path(record["path"]))
    git.delete_branch(record["branch"])
    record.pop("worktree_created", None)


def check_out(git: Git, state: State, record: Record) -> None:
    """Make the worker's worktree unless it has one, recording the attempt first: a
    checkout that died half-way (its process was killed) is discarded and redone."""
    if record.get("worktree_created"):
        return
    if record.get("checking_out"):
        discard_half_made(git, record)
    record["checking_out"] = True
    state.write(record)
    try:
        create_worktree(git, record)  # on failure it leaves nothing behind
    finally:
        del record["checking_out"]
    state.write(record)


def discard_half_made(git: Git, record: Record) -> None:
    """Undo a checkout that died half-way: its worktree, and its branch while that
    still points at the base (no work can be on it: no agent ever ran there)."""
    from .git import GitError

    path = Path(record["path"])
    if path.exists():
        try:
            git.worktree_remove(path)
        except GitError:
            pass  # not a worktree after all: the new checkout says what is in the way
    git.worktree_prune()
    if git.resolve_commit(f"refs/heads/{record['branch']}") == record["base_sha"]:
        git.delete_branch(record["branch"])


def copy_untracked(git: Git, source: Path, target: Path) -> list[str]:
    """Copy `.env`, envoy.pyz and every untracked file matched by `.worktreeinclude`
    (gitignore syntax, Claude Code's convention) from the main worktree, modes kept."""
    paths = [rel for rel in (".env", *_envoy_pyz(source)) if (source / rel).is_file()]
    wanted = set(git.untracked(source, *paths)) if paths else set()
    include = source / ".worktreeinclude"
    if include.is_file():
        wanted.update(git.untracked(source, pattern_file=include))
    copied = []
    for rel in sorted(wanted):
        src, dst = source / rel, target / rel
        if not (src.is_file() or src.is_symlink()) or dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
        copied.append(rel)
    return copied


def _envoy_pyz(source: Path) -> list[str]:
    """Where the checkout keeps envoy: `envoy init`'s copy, and the pyz running now. Kept
    out of git (as init suggests), it is copied in, so the worker's hooks and its own
    `envoy parallel status` find it at the same path as in the main checkout; the
    hook commands, by design, never look outside the session's own project."""
    from . import pyz

    found = [".claude/envoy.pyz"]
    running = pyz.running()
    if running is not None:
        try:
            found.append(running.resolve().relative_to(source.resolve()).as_posix())
        except ValueError:
            pass  # a pyz outside the checkout: nothing to copy
    return found


def start(state: State, record: Record, slot_index: int, env: Mapping[str, str] | None = None) -> Record:
    """Launch the supervisor of the record's next run in `slot_index`; return the
    record as the supervisor wrote it once it holds its locks.

    The supervisor is forked, not executed: it starts in milliseconds with
    everything already imported. A double fork with setsid detaches it: its
    own session, so it survives the terminal closing and the calling Claude
    Code session ending, and no signal to our process group reaches it."""
    run = int(record.get("run", 0)) + 1
    (state.logs / record["name"]).mkdir(parents=True, exist_ok=True)
    record["port"] = free_port(state)
    state.write(record)
    err_path = state.run_file(record["name"], run, "err")
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        os.close(read_fd)
        _become_supervisor(state, record["name"], run, slot_index, write_fd, err_path, env)
    os.close(write_fd)
    os.waitpid(child, 0)
    try:
        ready = _read_ready(read_fd)
    finally:
        os.close(read_fd)
    if not ready:
        detail = last_line(err_path)
        raise EnvoyError("start_failed", f"the supervisor of {record['name']} did not start"
                         + (f": {detail}" if detail else ""), f"see {state.log_file} and retry")
    fresh = state.read(record["name"])
    assert fresh is not None
    return fresh


def in_detached_child(state: State, label: str, err_path: Path, env: Mapping[str, str] | None,
                       body: Callable[[], int]) -> None:
    """In a forked child: detach (new session, second fork so it is never our zombie,
    stdio to /dev/null and `err_path`), run `body`, exit. Never returns."""
    code = 1
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        slots.close_inherited(state)  # the launcher's locks (the mutex...) are not ours to hold
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(err_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        os.chdir(state.root)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        code = body()
    except BaseException as exc:
        state.log(f"{label}: {type(exc).__name__}: {exc}")
    finally:
        os._exit(code)


def _become_supervisor(state: State, name: str, run: int, slot_index: int, ready_fd: int, err_path: Path,
                       env: Mapping[str, str] | None) -> None:
    def body() -> int:
        from . import supervisor

        return supervisor.main(state.root.parent, name, run, slot_index, ready_fd)

    in_detached_child(state, f"supervisor {name}", err_path, env, body)


def start_new(git: Git, state: State, record: Record, slot_index: int,
              env: Mapping[str, str] | None = None) -> Record:
    """The first run: worktree and branch, then the supervisor. A failure removes
    what it made and raises; the caller decides whether the record stays."""
    if not record.get("base_sha"):  # --after: the base is resolved when the worker starts
        base_sha = git.resolve_commit(record["base"])
        if base_sha is None:
            raise EnvoyError("not_found", f"base {record['base']!r} of {record['name']} no longer names a commit",
                             "spawn it again with an existing --from")
        record["base_sha"] = base_sha
    record["state"] = "starting"
    state.write(record)  # first, so even a crash mid-way leaves a record saying so
    check_out(git, state, record)  # unless the queue runner has already
    try:
        return start(state, record, slot_index, env)
    except BaseException:
        _undo_worktree(git, record)
        raise


def free_port(state: State) -> int:
    """A free TCP port on this machine that no running worker was given."""
    import socket  # here: spawn --queue and the other verbs never need it

    taken = {r.get("port") for r in state.all() if r.get("state") in ACTIVE}
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port
    raise EnvoyError("no_port", "could not find a free TCP port for the worker", "retry in a moment")


def _read_ready(fd: int) -> bool:
    """True once the supervisor writes 'ok'; False if it closes the pipe first (it died)."""
    received = b""
    while True:
        readable, _, _ = select.select([fd], [], [], READY_TIMEOUT)
        if not readable:
            return False
        chunk = os.read(fd, 64)
        if not chunk:
            return received.startswith(b"ok")
        received += chunk
        if received.startswith(b"ok"):
            return True


def mark_failed(state: State, record: Record, reason: str, error: str) -> Record:
    record.update(state="failed", reason=reason, error=error, finished_at=now_iso())
    state.write(record)
    return record
