"""Scratch worktrees for `envoy parallel land`'s checks, and their janitor.

They live in `<common dir>/envoy/land/<run>/` (0700), each beside its check's log
(0600). A janitor process waits on the land lock: when `land` ends, however it
ends (kill -9 included), it ends the checks' processes and removes that run's
worktrees, so nothing is left behind and no lock is stuck.

Every worker's shell can write there, so nothing found there is believed: the
checks' processes are found by the run's id in their own environment (as a
worker's are, processes.end_run), never by a process-group id read from a file
(a planted or stale one would have land kill a stranger's processes, or its
own); paths are reached without following symlinks (files.py).
"""
from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from envoy import files, processes
from envoy.git import environment
from envoy.worker import launch, locks, worktree
from envoy.worker.store import State
from envoy.worker.workspace import Workspace

LOCK = "land"
_RUN_DIR = re.compile(r"([0-9]+)-([0-9a-f]{6})")


def run_id(run_dir: Path) -> str | None:
    """The id the checks of the run in `run_dir` carry in their environment (ENVOY_RUN_ID):
    never a worker's (those are hex only); None for a directory no land made."""
    match = _RUN_DIR.fullmatch(run_dir.name)
    return f"land{match[1]}x{match[2]}" if match else None


@dataclass
class Check:
    path: Path  # the scratch worktree
    log: Path
    started: Future[subprocess.Popen[bytes]]  # the check's process, once its worktree is made

    def poll(self) -> int | None:
        """Its exit code once it ended; None while it runs (or its worktree is being made)."""
        return self.started.result().poll() if self.started.done() else None


class Scratch:
    """This run's scratch worktrees and their checks. Worktrees are made on threads of
    their own, so the next merge is computed while the previous ones are checked out."""

    def __init__(self, ws: Workspace, width: int) -> None:
        self.ws = ws
        self.dir = ws.state.root / "land" / f"{os.getpid()}-{os.urandom(3).hex()}"
        self.count = 0
        self.live: list[Check] = []
        self.pool = ThreadPoolExecutor(max_workers=width)
        self.main = ws.git.main_worktree()

    def start(self, commit: str, command: str) -> Check:
        self.count += 1
        path = self.dir / str(self.count)
        check = Check(path, path.with_suffix(".log"), self.pool.submit(self._launch, path, commit, command))
        self.live.append(check)
        return check

    def _launch(self, path: Path, commit: str, command: str) -> subprocess.Popen[bytes]:
        with locks.launch_mutex(self.ws.state):  # every worktree add and prune runs under it (see cleanup)
            self.ws.git.worktree_add_detached(path, commit)
        self.ws.git.populate(path)  # outside it: several checkouts at once
        worktree.copy_untracked(self.ws.git, self.main, path)  # .env and .worktreeinclude files, as a worker gets
        with self.ws.state.private_open(path.with_suffix(".log"), "wb") as out:
            # Its own process group, so stopping it stops everything it started; the run's
            # id in its environment, so the janitor finds it (and only it) if land is killed.
            proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=path, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=environment({processes.RUN_ID: str(run_id(self.dir))}))
        return proc

    def stop(self, check: Check) -> None:
        try:
            proc = check.started.result()
        except Exception:  # its worktree could not be made: nothing runs
            proc = None
        if proc is not None and proc.poll() is None:
            processes.kill_group(proc.pid, None)
            proc.wait()
        self.remove(check)

    def remove(self, check: Check) -> None:
        if check in self.live:
            self.live.remove(check)
        with locks.launch_mutex(self.ws.state):
            worktree.remove_scratch(self.ws.git, self.ws.state.base, check.path)
        self.ws.state.remove(check.path.with_suffix(".log"))

    def close(self) -> None:
        for check in list(self.live):
            self.stop(check)
        self.pool.shutdown()
        sweep(self.ws, self.dir)


def _names(ws: Workspace, directory: Path) -> list[str]:
    """The entries of one of envoy's directories, reached without following a symlink."""
    try:
        fd = files.open_dir_below(ws.state.base, directory)
    except FileNotFoundError:
        return []
    try:
        return [entry.name for entry in os.scandir(fd)]
    finally:
        os.close(fd)


def sweep(ws: Workspace, run_dir: Path) -> None:
    """Stop the checks and remove the worktrees a run left (it was killed, or it ends).
    Anything else found there (a symlink, a file) is removed as itself, never followed."""
    identity = run_id(run_dir)
    if identity is not None:
        processes.end_run(identity)  # only processes that carry the run's id: never a stranger
    try:
        names = _names(ws, run_dir)
    except files.NotOurs:  # a symlink (or a file) where a run directory belongs: the link goes, not its target
        ws.state.remove(run_dir)
        return
    if not names:  # the run tidied up after itself: no git to ask
        ws.state.remove(run_dir)
        return
    with locks.launch_mutex(ws.state):
        for name in names:
            path = run_dir / name
            if os.path.isdir(path) and not os.path.islink(path):
                worktree.remove_scratch(ws.git, ws.state.base, path)
        ws.state.remove(run_dir)
        ws.git.worktree_prune()


def sweep_all(ws: Workspace, keep: Path) -> None:
    """What earlier, killed runs left behind (their janitor may still be queued on the lock)."""
    for name in _names(ws, keep.parent):
        if name != keep.name:
            sweep(ws, keep.parent / name)


def start_janitor(ws: Workspace, run_dir: Path) -> None:
    """When `land` ends, however it ends, its checks are stopped and its worktrees removed."""
    launch.start_janitor(ws.state, LOCK, "land janitor", lambda: sweep(ws, run_dir))


def land_lock(state: State) -> FileLock:
    return locks.lock(state, LOCK)
