"""Starting workers: the one place a worker goes from decided to running.

Everything here runs under the launch mutex (see slots.py): the caller has
counted the held slots and picked a free one; `start` creates the worktree
(first run only), launches the detached supervisor and returns once the
supervisor holds the slot, so the next launcher counts it.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import EnvoyError
from .git import Git
from .state import Record, State, now_iso

READY_TIMEOUT = 60.0


def self_command() -> list[str]:
    """How to run this same envoy again: the zipapp / source dir, or the installed package."""
    import envoy

    root = Path(envoy.__file__).resolve().parent.parent
    if root.is_file() or (root / "__main__.py").is_file():
        return [sys.executable, str(root)]
    return [sys.executable, "-m", "envoy"]


def worktree_path(worktree_dir: Path, prefix: str, name: str) -> Path:
    return worktree_dir / f"{prefix}{name}"


def create_worktree(git: Git, record: Record) -> None:
    """The worker's worktree and branch, plus the untracked files it needs (.env,
    .worktreeinclude matches). On failure nothing is left behind."""
    path = Path(record["path"])
    git.worktree_add(path, record["branch"], record["base_sha"])
    try:
        record["copied"] = copy_untracked(git, git.main_worktree(), path)
    except BaseException:
        git.worktree_remove(path)
        git.delete_branch(record["branch"])
        raise


def copy_untracked(git: Git, source: Path, target: Path) -> list[str]:
    """Copy `.env` and every untracked file matched by `.worktreeinclude` (gitignore
    syntax, Claude Code's convention) from the main worktree, modes kept."""
    wanted = set(git.untracked(source, ".env")) if (source / ".env").is_file() else set()
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


def start(state: State, record: Record, slot_index: int) -> Record:
    """Launch the supervisor of the record's next run in `slot_index`; return the
    record as the supervisor wrote it once it holds its locks."""
    run = int(record.get("run", 0)) + 1
    log_dir = state.logs / record["name"]
    log_dir.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    argv = [*self_command(), "_supervise", "--common-dir", str(state.root.parent), "--name", record["name"],
            "--run", str(run), "--slot", str(slot_index), "--ready-fd", str(write_fd)]
    with open(state.run_file(record["name"], run, "err"), "ab") as err:
        try:
            # Its own session: it survives the terminal closing and the calling
            # Claude Code session ending, and no signal to our group reaches it.
            subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             pass_fds=(write_fd,), start_new_session=True, cwd=state.root)
        finally:
            os.close(write_fd)
    try:
        ready = _read_ready(read_fd)
    finally:
        os.close(read_fd)
    if not ready:
        detail = _last_line(state.run_file(record["name"], run, "err"))
        raise EnvoyError("start_failed", f"the supervisor of {record['name']} did not start"
                         + (f": {detail}" if detail else ""), f"see {state.log_file} and retry")
    fresh = state.read(record["name"])
    assert fresh is not None
    return fresh


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


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def mark_failed(state: State, record: Record, reason: str, error: str) -> Record:
    record.update(state="failed", reason=reason, error=error, finished_at=now_iso())
    state.write(record)
    return record
