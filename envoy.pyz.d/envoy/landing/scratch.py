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
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from envoy import files, git, processes
from envoy.git import environment
from envoy.worker import launch, locks, worktree
from envoy.worker.store import State
from envoy.worker.workspace import Workspace

LOCK = "land"
_RUN_DIR = re.compile(r"([0-9]+)-([0-9a-f]{6})")


def check_id(run_dir: Path, number: str) -> str | None:
    """The id check `number` of the run in `run_dir` carries in its environment
    (ENVOY_RUN_ID): one a check, so ending one never ends its neighbours; never a
    worker's (those are hex only); None for a directory no land made."""
    match = _RUN_DIR.fullmatch(run_dir.name)
    return f"land{match[1]}x{match[2]}c{number}" if match and number.isdigit() else None


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    began: float  # time.monotonic() when it started
    run_id: str  # ENVOY_RUN_ID in its environment: found, and ended, also if it leaves its group


@dataclass
class Check:
    path: Path  # the scratch worktree
    log: Path
    started: Future[Running]  # the check's process, once its worktree is made
    timeout: float | None = None  # seconds it may run
    timed_out: bool = False

    def poll(self) -> int | None:
        """Its exit code once it ended, every process it started ended with it; None while
        it runs (or its worktree is being made). Past its time limit, it is ended."""
        if not self.started.done():
            return None
        running = self.started.result()
        proc = running.proc
        if proc.returncode is not None:
            return proc.returncode
        # WNOWAIT: the shell is left unreaped, so its process group id cannot be reused
        # before the group is killed (a background process it left is still in it).
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            if not self.timeout or time.monotonic() - running.began < self.timeout:
                return None
            self.timed_out = True
        end(running)
        return proc.wait()


def end(running: Running) -> None:
    """End every process of a check whose shell is not yet reaped: its process group,
    then any process that left the group but carries the check's run id."""
    processes.kill_group(running.proc.pid, None)
    processes.end_run(running.run_id)


class Scratch:
    """This run's scratch worktrees and their checks. Worktrees are made on threads of
    their own, so the next merge is computed while the previous ones are checked out."""

    def __init__(self, ws: Workspace, width: int, timeout: float | None = None) -> None:
        self.ws, self.timeout = ws, timeout
        self.dir = ws.state.root / "land" / f"{os.getpid()}-{os.urandom(3).hex()}"
        self.count = 0
        self.live: list[Check] = []
        self.pool = ThreadPoolExecutor(max_workers=width)
        self.main = ws.git.main_worktree()

    def start(self, commit: str, command: str) -> Check:
        self.count += 1
        path = self.dir / str(self.count)
        check = Check(path, path.with_suffix(".log"), self.pool.submit(self._launch, path, commit, command),
                      self.timeout)
        self.live.append(check)
        return check

    def _launch(self, path: Path, commit: str, command: str) -> Running:
        with locks.launch_mutex(self.ws.state):  # every worktree add and prune runs under it (see cleanup)
            self.ws.git.worktree_add_detached(path, commit)
        git.unsparse(self.ws.git, path)  # the check sees the whole merge result, whatever the user's cone
        self.ws.git.populate(path)  # outside it: several checkouts at once
        worktree.copy_untracked(self.ws.git, self.main, path)  # .env and .worktreeinclude files, as a worker gets
        identity = str(check_id(self.dir, path.name))
        with self.ws.state.private_open(path.with_suffix(".log"), "wb") as out:
            # Its own process group, so stopping it stops everything it started; the run's
            # id in its environment, so the janitor finds it (and only it) if land is killed.
            proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=path, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=environment({processes.RUN_ID: identity}))
        return Running(proc, time.monotonic(), identity)

    def stop(self, check: Check) -> None:
        try:
            running: Running | None = check.started.result()
        except Exception:  # its worktree could not be made: nothing runs
            running = None
        if running is not None and running.proc.returncode is None:  # not reaped: its group id is still its own
            end(running)
            running.proc.wait()
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
    try:
        names = _names(ws, run_dir)
    except files.NotOurs:  # a symlink (or a file) where a run directory belongs: the link goes, not its target
        ws.state.remove(run_dir)
        return
    for number in {name.split(".")[0] for name in names if name.split(".")[0].isdigit()}:
        identity = check_id(run_dir, number)
        if identity is not None:
            processes.end_run(identity)  # only processes that carry a check's id: never a stranger
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
