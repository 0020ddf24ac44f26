"""Finding the git common dir by reading files, not running git: hooks run on
every tool call and cannot afford a git process (or the `sh` import)."""
from __future__ import annotations

import os
from pathlib import Path

from envoy import files

GIT_FILE_BYTES = 64 * 1024  # a .git file or commondir holds one path


def find_common_dir(start: str) -> Path | None:
    """The repository's common git dir for a path inside any of its worktrees."""
    here = Path(start).resolve()
    for directory in (here, *here.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():  # a linked worktree: "gitdir: <common>/worktrees/<id>"
            try:
                text = files.read_text(dot_git, GIT_FILE_BYTES).strip()
            except (OSError, ValueError):
                return None
            if not text.startswith("gitdir:"):
                return None
            gitdir = Path(directory, text[len("gitdir:"):].strip()).resolve()
            try:
                common = files.read_text(gitdir / "commondir", GIT_FILE_BYTES).strip()
            except FileNotFoundError:
                return gitdir  # no commondir: the gitdir is its own common dir (git's rule)
            except (OSError, ValueError):
                return None  # there but unreadable (a FIFO, say): no guess, whose state would be another's
            return Path(gitdir, common).resolve()
    return None


def toplevel_of(start: str) -> Path | None:
    here = Path(start).resolve()
    for directory in (here, *here.parents):
        if os.path.exists(directory / ".git"):
            return directory
    return None
