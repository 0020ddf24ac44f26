"""The light middle of a worker's life: waiting for its agent.

The supervisor (supervisor.py) takes the locks and starts the agent, then
execs this module in a bare interpreter (`python3 -I -S`), keeping the lock
file descriptors (flock locks survive exec) and its PID, so the agent stays
its child. Here only os, _signal, sys, time and select are loaded: the process
that sits beside each agent for hours costs a few MiB, not the tens that
sh and filelock would. When the agent ends (or the timeout passes, or
cleanup asks it to stop with SIGTERM) it kills what the agent left (its group,
and the run's orphans that came to this subreaper: processes.py), frees the
slot, pokes the queue runner (wake.py), and only then loads the finisher
(ending.py), which records the end.
"""
from __future__ import annotations

import os
import sys
import time

from envoy import processes

TYPE_CHECKING = False  # typing itself is not loaded at run time: each MiB here is paid per agent
if TYPE_CHECKING:
    import signal
    from typing import Callable
else:
    try:  # the C module behind signal.py, without its enum wrappers (5 ms less beside every agent)
        import _signal as signal
    except ImportError:  # not CPython
        import signal

def has_exited(pid: int) -> bool:
    """Whether our child `pid` has ended, leaving it unreaped: while it is a zombie its
    pid, and so the id of the process group it led, cannot be reused, so killing that
    group cannot hit another's."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def reap(pid: int) -> int | None:
    """The exit code of our ended child `pid` (negative: killed by that signal)."""
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:
        return None


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
    worker lock fd, slot lock fd, run id. Plain words, not JSON: even the json module
    costs memory here."""
    pid, run, worker_fd, slot_fd = int(argv[0]), int(argv[4]), int(argv[5]), int(argv[6])
    deadline = None if argv[1] == "-" else float(argv[1])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("stopped"))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked across the exec
    ended = False
    why = None

    def alive() -> bool:
        """False once the agent has ended (left unreaped). Orphans of its tools that came
        to us as subreaper are reaped meanwhile: they would stay zombies."""
        nonlocal ended
        while not ended:
            try:
                child = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # cannot happen: nothing else here waits for children
                ended = True
                break
            if child is None:
                break
            if child.si_pid == pid:
                ended = True
            else:
                os.waitpid(child.si_pid, 0)
        return not ended

    exited = _exit_notifier(pid)
    while alive():
        if stop:
            why = "stopped"
        elif deadline is not None and time.time() > deadline:
            why = "timeout"
        if why:
            processes.kill_group(pid, alive)
            break
        exited(0.1)
    while alive():  # killed: it goes at once
        time.sleep(0.01)
    processes.kill_group(pid, None)  # strays the agent left in its group
    exit_code = reap(pid)
    processes.end_strays(argv[7] if len(argv) > 7 else "", {str(pid)})  # and those it left elsewhere, orphaned to us
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the end is recorded, whatever comes
    os.close(slot_fd)  # free the slot now; the record follows in a moment
    from envoy.worker import wake

    wake.poke(os.path.join(argv[2], "envoy"))  # the queue runner starts the next worker meanwhile
    from envoy.worker.finish import finish

    return finish({"common_dir": argv[2], "name": argv[3], "run": run, "worker_fd": worker_fd,
                   "exit_code": exit_code, "why": why})


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
