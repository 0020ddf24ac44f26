"""The repository a verb works on: its git, settings and envoy state."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from envoy import gitdir
from envoy.config import Config
from envoy.errors import EnvoyError
from envoy.git import Git
from envoy.worker.store import State
from envoy.worker.worktree import Layout, layout


@dataclass
class Workspace:
    git: Git
    toplevel: Path  # the checkout the verb was called from (main or a worker's)
    state: State
    config: Config

    def layout(self) -> Layout:
        """Where this repository's worker worktrees go (settings may change it per call)."""
        return layout(self.git, self.config)


def open_workspace(cwd: Path | None = None) -> Workspace:
    """The repository around `cwd`. Found by reading .git files where they are plain
    (no git process, so status stays fast); git decides where they are not."""
    start = str(cwd or Path.cwd())
    toplevel, common = (None, None) if "GIT_DIR" in os.environ else (gitdir.toplevel_of(start), gitdir.find_common_dir(start))
    if toplevel is not None and common is None and (toplevel / ".git").is_file():
        # a linked worktree whose git files cannot be read: git itself would hang on a FIFO there
        raise EnvoyError("not_a_repo", f"the git files of the worktree at {toplevel} cannot be read: "
                         f"{toplevel / '.git'} names no git dir, or the commondir it leads to is not a regular file",
                         "repair it from the main checkout (git worktree repair), or remove it (git worktree prune)")
    if toplevel is None or common is None:
        git = Git(start)
        toplevel = git.toplevel()
        common = Git(toplevel).common_dir()
    return Workspace(git=Git(toplevel, common), toplevel=toplevel, state=State(common), config=Config(toplevel))
