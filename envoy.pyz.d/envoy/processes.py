"""A worker's processes, and ending every one of them when its run ends, however it ends.

- The agent and the setup command start in their own sessions, with a parent-death
  signal: they die with the supervisor, even when it is killed with -9.
- Each of them carries ENVOY_RUN_ID=<a random id of the run> in its environment;
  a process of the run is one that carries it, or one in a session led by the
  agent, the setup command or a live process that carries it (a child that
  cleared its environment). One that cleared it and left those sessions is lost
  to view.
- The supervisor is a child subreaper (kept across its exec into the watcher):
  whatever they start and leave behind, double-forked and setsid'd or not, becomes
  its child when orphaned, and it ends those of the run (`end_strays`).
- A killed supervisor takes its subreaper care with it: whoever then finds the
  worker lost (status, wait) or removes it (cleanup) ends every process of the run
  (`end_run`), checked in each one's own /proc entry, so no process that is not the
  worker's (a reused pid) is ever signalled.

Light (os and time): the watcher beside every agent loads it.
"""
from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing is not loaded at run time: the watcher imports this module
if TYPE_CHECKING:
    import signal
    from pathlib import Path
    from typing import Any, Callable
else:
    try:  # the C module behind signal.py, without its enum wrappers (5 ms less beside every agent)
        import _signal as signal
    except ImportError:  # not CPython
        import signal

RUN_ID = "ENVOY_RUN_ID"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
GRACE = 5.0  # seconds between TERM and KILL when stopping a process group


def new_run_id() -> str:
    return os.urandom(12).hex()


def _marker(run_id: Any) -> bytes | None:
    if not isinstance(run_id, str) or not run_id.isalnum() or not run_id.isascii():
        return None  # a record of an older envoy, or a broken one: nothing to match safely
    return f"{RUN_ID}={run_id}".encode()


def _prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux


def die_with_parent() -> Callable[[], None]:
    """What a child runs before exec: if its parent dies (even by kill -9), so does it.
    Made in the parent: importing ctypes in the child would delay every agent's start."""
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


def _children() -> list[str]:
    """This process's children (orphans in its care as a subreaper among them)."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return f.read().split()
    except OSError:  # a kernel without that file: the slow way
        return [pid for pid in filter(str.isdigit, os.listdir("/proc")) if _stat(pid, 1) == str(me)]


def _stat(pid: str, field: int) -> str | None:
    """A field of /proc/<pid>/stat after "pid (comm)": 0 state, 1 ppid, 2 pgrp, 3 session."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[field].decode()
    except (OSError, IndexError):
        return None


def _carries(pid: str, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False


def _signal_if(pid: str, check: Callable[[str], bool]) -> bool:
    """SIGKILL `pid` if `check` holds for it, pinning the process first (a pidfd) so a
    pid reused between the check and the kill is never hit."""
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
    """Kill every process of a run, anywhere. Call only when the run has no live
    supervisor (its worker lock is ours). Returns how many were signalled."""
    marker = _marker(run_id)
    if marker is None:
        return 0
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
        leaders = {p for p in tagged if _stat(p, 3) == p}
        for pid in pids:
            if pid in tagged:
                killed += _signal_if(pid, lambda p: _carries(p, marker))
            elif leaders and _stat(pid, 3) in leaders:
                killed += _signal_if(pid, lambda p: _stat(p, 3) in leaders)
        time.sleep(0.02)
    return killed


def end_strays(run_id: str, sessions: set[str], grace: float = 5.0) -> None:
    """Kill the processes of a run orphaned into our care (we are a subreaper), and
    reap every child that has ended. `sessions`: those of the run's first processes
    (the agent, the setup command), which the caller has reaped. A child that is not
    of the run is left alone: a worker's supervisor that a verb run by the agent
    started, hiding its run id, comes to us too."""
    marker = _marker(run_id) or b"\0"
    sessions = set(sessions)
    deadline = time.monotonic() + grace
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return  # no child at all
        strays = [c for c in _children() if _carries(c, marker) or _stat(c, 3) in sessions]
        if not strays or time.monotonic() > deadline:
            return
        sessions.update(c for c in strays if _stat(c, 3) == c)  # and whoever is in their sessions
        for child in strays:
            try:
                os.kill(int(child), signal.SIGKILL)  # our child, unreaped: its pid cannot be reused
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def self_command(bare: bool = False) -> list[str]:
    """How to run this same envoy again: the zipapp / source dir, or the installed package.
    `bare`: an interpreter without site-packages (-I -S), where that still finds envoy."""
    import sys
    from pathlib import Path

    import envoy

    root = Path(envoy.__file__).resolve().parent.parent
    if root.is_file() or (root / "__main__.py").is_file():
        return [sys.executable, *(["-I", "-S"] if bare else []), str(root)]
    return [sys.executable, "-m", "envoy"]  # installed: site-packages is where envoy lives


def terminate(pid: int) -> None:
    """SIGTERM to `pid` (the caller has checked it is the process it means); gone already is fine."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def kill_group(group: int, alive: Callable[[], bool] | None, grace: float = GRACE) -> None:
    """TERM a process group, KILL it after the grace period (at once without `alive`).
    Its leader must be our child, not yet reaped: then its id cannot have been reused."""
    try:
        os.killpg(group, signal.SIGTERM if alive else signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    if alive is None:
        return
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def start_detached(argv: list[str], log: Path | str) -> None:
    """Start `argv` in a session of its own, its output to `log`, and leave it: it
    outlives us (it is not our child for long: a double fork, so never our zombie)."""
    if os.fork() == 0:  # the middle process: setsid, fork the real one, go
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                try:  # never through a symlink planted at the log (it is under .git/envoy)
                    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                except OSError:
                    out = null
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(out, 2)
                os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # a worker's lock held on by it would keep the worker "alive"
                os.execv(argv[0], argv)
        finally:
            os._exit(0)
    os.wait()
