"""Scratch worktrees for `envoy parallel land`'s checks, and their janitor.

They live in `<common dir>/envoy/land/<run>/`, each beside its check's log and
process-group id. A janitor process waits on the land lock: when `land` ends,
however it ends (kill -9 included), it kills the checks' process groups and
removes that run's worktrees, so nothing is left behind and no lock is stuck.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from envoy import git, processes
from envoy.git import environment
from envoy.worker import launch, locks, worktree
from envoy.worker.store import State
from envoy.worker.workspace import Workspace

LOCK = "land"


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
        run_id = processes.new_run_id()
        with open(path.with_suffix(".log"), "wb") as out:
            # Its own process group, so stopping it stops everything it started.
            proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=path, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=environment({processes.RUN_ID: run_id}))
        began = time.monotonic()
        path.with_suffix(".pgid").write_text(str(proc.pid))
        return Running(proc, began, run_id)

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
            worktree.remove_scratch(self.ws.git, check.path)
        for suffix in (".pgid", ".log"):
            check.path.with_suffix(suffix).unlink(missing_ok=True)

    def close(self) -> None:
        for check in list(self.live):
            self.stop(check)
        self.pool.shutdown()
        sweep(self.ws, self.dir)


def sweep(ws: Workspace, run_dir: Path) -> None:
    """Stop the checks and remove the worktrees a run left (it was killed, or it ends)."""
    if not run_dir.is_dir():
        return
    if not any(run_dir.iterdir()):  # the run tidied up after itself: no git to ask
        run_dir.rmdir()
        return
    for pgid_file in run_dir.glob("*.pgid"):
        text = pgid_file.read_text().strip()
        if text.isdigit():
            processes.kill_group(int(text), None)
    with locks.launch_mutex(ws.state):
        for path in run_dir.iterdir():
            if path.is_dir():
                worktree.remove_scratch(ws.git, path)
        shutil.rmtree(run_dir, ignore_errors=True)
        ws.git.worktree_prune()


def sweep_all(ws: Workspace, keep: Path) -> None:
    """What earlier, killed runs left behind (their janitor may still be queued on the lock)."""
    root = keep.parent
    for run_dir in root.iterdir() if root.is_dir() else []:
        if run_dir != keep:
            sweep(ws, run_dir)


def start_janitor(ws: Workspace, run_dir: Path) -> None:
    """When `land` ends, however it ends, its checks are stopped and its worktrees removed."""
    launch.start_janitor(ws.state, LOCK, "land janitor", lambda: sweep(ws, run_dir))


def land_lock(state: State) -> FileLock:
    return locks.lock(state, LOCK)
