"""The light middle of a worker's life: waiting for its agent.

The supervisor (supervisor.py) takes the locks and starts the agent, then
execs this module in a bare interpreter (`python3 -I -S`), keeping the lock
file descriptors (flock locks survive exec) and its PID, so the agent stays
its child. Here only os, _signal, sys, time and select are loaded: the process
that sits beside each agent for hours costs a few MiB, not the tens that
sh and filelock would. When the agent ends (or the timeout passes, or
cleanup asks it to stop with SIGTERM) it frees the slot, pokes the queue
runner (wake.py), and only then loads the finisher (ending.py), which records
the end.
"""
from __future__ import annotations

import os
import sys
import time
TYPE_CHECKING = False  # typing itself is not loaded at run time: each MiB here is paid per agent
if TYPE_CHECKING:
    import signal
    from typing import Callable
else:
    try:  # the C module behind signal.py, without its enum wrappers (5 ms less beside every agent)
        import _signal as signal
    except ImportError:  # not CPython
        import signal

GRACE = 5.0  # seconds between TERM and KILL when stopping the agent


def kill_group(group: int, alive: Callable[[], bool] | None, grace: float = GRACE) -> None:
    """TERM a process group, KILL it after the grace period (at once without `alive`)."""
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


def _exit_notifier(pid: int) -> Callable[[float], None]:
    """A wait that returns the moment the agent exits (Linux pidfd), else after `timeout`:
    the slot is handed on without a polling delay."""
    try:
        import select

        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return time.sleep
    return lambda timeout: select.select([fd], [], [], timeout) and None


def main(argv: list[str]) -> int:
    """argv: agent pid, deadline (epoch seconds, or "-"), common dir, worker name, run,
    worker lock fd, slot lock fd. Plain words, not JSON: even the json module costs
    memory here."""
    pid, run, worker_fd, slot_fd = int(argv[0]), int(argv[4]), int(argv[5]), int(argv[6])
    deadline = None if argv[1] == "-" else float(argv[1])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("stopped"))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked across the exec
    status: int | None = None
    why = None

    def alive() -> bool:
        nonlocal status
        if status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = raw
        return status is None

    exited = _exit_notifier(pid)
    while alive():
        if stop:
            why = "stopped"
        elif deadline is not None and time.time() > deadline:
            why = "timeout"
        if why:
            kill_group(pid, alive)
            break
        exited(0.1)
    if status is None:
        _, status = os.waitpid(pid, 0)
    kill_group(pid, None)  # strays the agent left in its group
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the end is recorded, whatever comes
    os.close(slot_fd)  # free the slot now; the record follows in a moment
    from . import wake

    wake.poke(os.path.join(argv[2], "envoy"))  # the queue runner starts the next worker meanwhile
    from .ending import finish

    return finish({"common_dir": argv[2], "name": argv[3], "run": run, "worker_fd": worker_fd,
                   "exit_code": os.waitstatus_to_exitcode(status), "why": why})


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
