"""Commits a worker made inside a submodule live in its worktree's own module store
(<common>/worktrees/<id>/modules/<name>) and die with the worktree. Before cleanup
removes a worktree, every submodule commit its branch points at is made to exist
where the main checkout keeps that submodule (<common>/modules/<name>), fetched
under refs/envoy/kept/<sha> there; where it cannot be, the removal is refused, so
a branch never points at a submodule commit that exists nowhere."""
from __future__ import annotations

from pathlib import Path

from envoy import git as gitmod
from envoy.errors import EnvoyError
from envoy.git import Git, GitError
from envoy.worker.record import Record


def keep_commits(git: Git, record: Record, worktree: Path, tip: str) -> list[str]:
    """Make the submodule commits of the worker's branch survive its worktree; the
    submodule paths whose commits were fetched. EnvoyError when one cannot be kept."""
    changed = gitmod.gitlinks_changed(git, record.get("base_sha"), tip)
    if not changed or not worktree.is_dir():
        return []
    names = gitmod.submodule_names(git, tip)
    main = git.main_worktree()
    fetched = []
    for path, sha in changed:
        name = names.get(path, path)
        ours = gitmod.git_paths(git, main, f"modules/{name}")[f"modules/{name}"]
        if ours.is_dir() and gitmod.has_commit(git, ours, sha):
            continue  # already where the main checkout keeps it
        theirs = gitmod.git_paths(git, worktree, f"modules/{name}")[f"modules/{name}"]
        if not theirs.is_dir():
            continue  # the worker never checked it out: it made no commit there to lose
        if not ours.is_dir():
            raise EnvoyError("submodule_commits", f"worker {record['name']}'s branch points submodule {path} at "
                             f"{sha[:12]}, a commit only its worktree holds, and the main checkout has no store "
                             f"for that submodule to keep it in", f"git submodule update --init -- {path} (in the "
                             f"main checkout), then envoy parallel cleanup --worker {record['name']}")
        try:
            gitmod.fetch_commit(git, ours, theirs, sha, f"refs/envoy/kept/{sha}")
        except GitError as exc:
            if gitmod.has_commit(git, theirs, sha):
                raise EnvoyError("submodule_commits", f"commit {sha[:12]} of submodule {path}, made by worker "
                                 f"{record['name']}, could not be kept: {exc.message}",
                                 f"push it from {worktree / path} somewhere, then clean up again") from None
            continue  # it exists nowhere here anyway (a commit of someone else's remote): nothing to lose
        fetched.append(path)
    return fetched
