"""The repository a verb works on: its git, settings and envoy state."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .config import Config
from .errors import EnvoyError
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
        if not configured:
            return self.git.main_worktree().parent
        path = Path(os.path.expanduser(configured)).resolve()
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():  # git would fail to make the worktree there, after the checks
            source = self.config.raw("PARALLEL_WORKTREE_DIR")[1]
            raise EnvoyError("invalid_config", f"PARALLEL_WORKTREE_DIR={configured!r} from {source}: "
                             f"{existing} is not a directory",
                             "set PARALLEL_WORKTREE_DIR to a directory (or a path one can be made at)")
        return path


def open_workspace(cwd: Path | None = None) -> Workspace:
    """The repository around `cwd`. Found by reading .git files where they are plain
    (no git process, so status stays fast); git decides where they are not."""
    start = str(cwd or Path.cwd())
    toplevel, common = (None, None) if "GIT_DIR" in os.environ else (paths.toplevel_of(start), paths.find_common_dir(start))
    if toplevel is None or common is None:
        git = Git(start)
        toplevel = git.toplevel()
        common = Git(toplevel).common_dir()
    return Workspace(git=Git(toplevel, common), toplevel=toplevel, state=State(common), config=Config(toplevel))
