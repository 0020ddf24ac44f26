"""The repository a verb works on: its git, settings and envoy state."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .git import Git
from .state import State


@dataclass
class Workspace:
    git: Git
    toplevel: Path  # the checkout the verb was called from (main or a worker's)
    state: State
    config: Config

    def worktree_dir(self) -> Path:
        configured = self.config.get("PARALLEL_WORKTREE_DIR")
        if configured:
            return Path(os.path.expanduser(configured)).resolve()
        return self.git.main_worktree().parent


def open_workspace(cwd: Path | None = None) -> Workspace:
    git = Git(cwd or Path.cwd())
    toplevel = git.toplevel()
    git = Git(toplevel)
    return Workspace(git=git, toplevel=toplevel, state=State(git.common_dir()), config=Config(toplevel))
