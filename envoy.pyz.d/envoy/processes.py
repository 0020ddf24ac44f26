"""A worker's processes, and ending every one of them when its run ends, however it ends.

- The agent and the setup command start in their own sessions, with a parent-death
  signal: they die with the supervisor, even when it is killed with -9.
- The supervisor is a child subreaper (kept across its exec into the watcher):
  whatever they start and leave behind, double-forked and setsid'd or not, becomes
  the watcher's child when orphaned, and the watcher ends it (watch.end_strays).
- Each of them carries ENVOY_RUN_ID=<a random id of the run> in its environment. A
  killed supervisor takes its subreaper care with it: whoever then finds the worker
  lost (status, wait) or removes it (cleanup) ends every process carrying the id
  (`end_run`), after checking the id in each one's own /proc entry, so no process
  that is not the worker's (a reused pid) is ever signalled.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

RUN_ID = "ENVOY_RUN_ID"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def new_run_id() -> str:
    return os.urandom(12).hex()


def _prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux


def die_with_parent() -> Callable[[], None]:
    """What a child runs before exec: if its parent dies (even by kill -9), so does it.
    Made in the parent: importing ctypes in the child would delay every agent's start."""
    import signal

    prctl = _prctl()
    parent = os.getpid()
    if prctl is None:
        return lambda: None  # the agent may outlive a killed supervisor: end_run finds it

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def become_subreaper() -> None:
    """Orphans among this process's descendants become its children, not init's."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_CHILD_SUBREAPER, 1)


def _carries(pid: str, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False


def _session(pid: str) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[3].decode() if len(fields) > 3 else None  # state ppid pgrp session


def _signal_if(pid: str, check: Callable[[str], bool]) -> bool:
    """SIGKILL `pid` if `check` holds for it, pinning the process first (a pidfd) so a
    pid reused between the check and the kill is never hit."""
    import signal  # here: `status` loads this module, and rarely needs it

    try:
        fd = os.pidfd_open(int(pid))
    except (AttributeError, OSError):
        return False
    try:
        if not check(pid):
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def end_run(run_id: Any, timeout: float = 2.0) -> int:
    """Kill every process of a run: those carrying its ENVOY_RUN_ID, and those in a
    session one of them leads (a child that cleared its environment). Call only when
    the run has no live supervisor (its worker lock is ours). Returns how many."""
    if not isinstance(run_id, str) or not run_id.isalnum():
        return 0  # a record of an older envoy, or a broken one: nothing to match safely
    marker = f"{RUN_ID}={run_id}".encode()
    me = str(os.getpid())
    killed = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # again, for any child forked during the sweep
        try:
            pids = [p for p in os.listdir("/proc") if p.isdigit() and p != me]
        except OSError:
            return killed
        tagged = [p for p in pids if _carries(p, marker)]
        if not tagged:
            return killed
        leaders = {p for p in tagged if _session(p) == p}
        for pid in pids:
            if pid in tagged:
                killed += _signal_if(pid, lambda p: _carries(p, marker))
            elif leaders and _session(pid) in leaders:
                killed += _signal_if(pid, lambda p: _session(p) in leaders)
        time.sleep(0.02)
    return killed
