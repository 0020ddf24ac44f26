"""Moving a target branch: the one way `merge` and `land` do it.

Refused, with nothing changed, while git has a rebase, merge, cherry-pick, revert
or bisect under way on it (an interactive rebase shows the branch detached: its
`head-name` says whose it is), or, where it is checked out, when the move would
write over a file git does not track, an ignored one included (a worker's
committed `.env` must not replace the user's, its committed symlink `secrets`
must not delete the user's `secrets/`). Otherwise the branch moves by
compare-and-swap against the commit the caller checked (a commit the user
dropped meanwhile does not come back); where it is checked out, its index and
files go from that commit to the new one first (git read-tree -m -u, which
keeps local changes or refuses, changing nothing), as git's own fast-forward
does, and are put back if the branch moved meanwhile."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from envoy import git as gitmod
from envoy.errors import EnvoyError
from envoy.git import Git, GitError

# What git keeps in a worktree's git dir while an operation is under way.
UNDER_WAY = {"rebase-merge": "a rebase", "rebase-apply": "a rebase (or git am)", "MERGE_HEAD": "a merge",
             "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert",
             "sequencer": "a cherry-pick or revert", "BISECT_LOG": "a bisect"}
# Where a detached worktree names the branch it is rebasing or bisecting.
HEAD_NAMES = {"rebase-merge/head-name": "a rebase", "rebase-apply/head-name": "a rebase (or git am)",
              "BISECT_START": "a bisect"}
HEAD_NAME_BYTES = 4096
ADVICE = ("finish or abort it there (git rebase --continue / --abort, git merge --abort, git cherry-pick --abort, "
          "git bisect reset), then retry")


def move(git: Git, into: str, old: str, new: str, own: Path) -> None:
    """Move branch `into` from `old` to `new`, or raise, having changed nothing. `own`:
    envoy's state dir, whose detached scratch worktrees (land's checks) rebase nothing."""
    ref, own = f"refs/heads/{into}", Path(os.path.realpath(own))
    checked_out = None
    for path, branch in git.worktrees().items():
        if branch is None and Path(os.path.realpath(path)).is_relative_to(own):
            continue
        if branch == into:
            checked_out = path
            busy = under_way(git, path)
        elif branch is None:  # detached: maybe in the middle of rebasing or bisecting `into`
            busy = working_on(git, path, ref)
        else:
            continue
        if busy:
            raise EnvoyError("operation_in_progress", f"{busy} is in progress on {into} in {path}; "
                             f"{into} was not moved, nothing was changed", ADVICE)
    if checked_out is None:
        swap(git, into, ref, old, new)
        return
    in_the_way = untracked_in_the_way(git, checked_out, old, new)
    if in_the_way:
        shown = ", ".join(in_the_way[:5]) + (f" and {len(in_the_way) - 5} more" if len(in_the_way) > 5 else "")
        raise EnvoyError("would_overwrite", f"moving {into} (checked out at {checked_out}) would overwrite "
                         f"untracked or ignored files there: {shown}; nothing was changed",
                         f"move them out of the way in {checked_out} (they are not in git: keep a copy), "
                         "or merge --into a branch that is not checked out", files=in_the_way[:20])
    # As git's own fast-forward: the files first, then the branch by compare-and-swap; a
    # branch that moved meanwhile gets its files put back. Cut short between the two, the
    # checkout holds the new files on the old commit (the move staged, nothing lost).
    if git.resolve_commit(ref) != old or gitmod.symbolic_head(git, checked_out) != ref:
        swap(git, into, ref, old, new)  # moved meanwhile: refused; switched away: no checkout to update
        return
    try:
        gitmod.two_tree_update(git, checked_out, old, new)  # refuses before writing anything
    except GitError as exc:
        raise refused(into, checked_out, exc) from None
    try:
        swap(git, into, ref, old, new)
    except EnvoyError:
        try:
            gitmod.two_tree_update(git, checked_out, new, old)
        except GitError as exc:
            raise EnvoyError("git_error", f"{into} moved meanwhile, and its checkout at {checked_out} could not be "
                             f"put back from {new[:12]} to {old[:12]}: {exc.message}",
                             f"check {checked_out} with git status (git read-tree -m -u {new[:12]} HEAD puts "
                             "it back)") from None
        raise


def swap(git: Git, into: str, ref: str, old: str, new: str) -> None:
    try:
        git.update_ref(ref, new, old)  # fails if it moved meanwhile
    except GitError as exc:
        raise EnvoyError("git_error", f"could not move {into}: {exc.message}; nothing was changed",
                         f"{into} moved meanwhile: retry") from None


def refused(into: str, where: Path, exc: GitError) -> EnvoyError:
    return EnvoyError("git_error", f"could not move {into} (checked out at {where}): {exc.message}; "
                      "nothing was changed",
                      "commit or stash the local changes there, or merge --into another branch")


def under_way(git: Git, worktree: Path) -> str | None:
    """What git has under way in `worktree`, if anything."""
    if not worktree.is_dir():
        return None  # a worktree deleted by hand: nothing can be under way there
    for name, path in gitmod.git_paths(git, worktree, *UNDER_WAY).items():
        if os.path.lexists(path):
            return UNDER_WAY[name]
    return None


def working_on(git: Git, worktree: Path, ref: str) -> str | None:
    """What rebase or bisect, if any, detached `worktree` is running on `ref`. A marker
    that cannot be read safely counts as naming it: refusing is the safe answer."""
    if not worktree.is_dir():
        return None
    try:
        paths = gitmod.git_paths(git, worktree, *HEAD_NAMES)
    except GitError:  # a worktree git cannot open (a worker broke its .git file): git rebases nothing there
        return None
    for name, path in paths.items():
        try:
            text = read_small(path)
        except FileNotFoundError:
            continue
        except OSError:
            return HEAD_NAMES[name]
        named = text.strip()
        if named in (ref, ref.removeprefix("refs/heads/")):
            return HEAD_NAMES[name]
    return None


def read_small(path: Path) -> str:
    """A small regular file under a git dir, never through a symlink, never blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return os.read(fd, HEAD_NAME_BYTES).decode("utf-8", "replace")
    finally:
        os.close(fd)


def untracked_in_the_way(git: Git, worktree: Path, old: str, new: str) -> list[str]:
    """Files of `worktree` git does not track (ignored ones too) that moving from `old`
    to `new` would write over or delete: at a path `new` adds, under it (a committed
    symlink or file where the user keeps a directory), or a file or symlink where
    `new` needs a directory."""
    added = gitmod.added_paths(git, old, new)
    if not added:
        return []
    found = set(gitmod.untracked_among(git, worktree, added))
    leading: set[str] = set()
    for path in added:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in leading:
                continue
            leading.add(prefix)
            try:
                mode = os.lstat(worktree / prefix).st_mode
            except FileNotFoundError:
                break  # nothing there, nor deeper
            if not stat.S_ISDIR(mode):  # a file or a symlink where a directory must go
                found.update(gitmod.untracked_among(git, worktree, [prefix]))
                break
    return sorted(found)
