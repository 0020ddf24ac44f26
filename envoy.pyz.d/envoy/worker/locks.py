"""The cap, and liveness, decided by held locks (filelock, flock underneath).

- `locks/launch.lock`: held while a launcher decides whether a worker may
  start and hands it a slot, so the count and the take are one atomic step.
- `locks/slot-<i>.lock`: held by a running worker's supervisor; the number
  of held slots is the number of running workers. `i` is also the worker's
  index (distinct among running workers).
- `locks/worker-<name>.lock`: held by that worker's supervisor for its whole
  life. Held means a live process; the kernel frees it however the process
  dies, so no PID file is ever trusted for liveness.

Lock files are never deleted and never hold data.
"""
from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

from envoy.errors import EnvoyError
from envoy.worker import wake
from envoy.worker.store import FILE_MODE, State

LAUNCH = "launch"
# Held while envoy decides a branch's work is safe elsewhere and deletes it (cleanup),
# and while it moves a branch and records a merge (merge): "merged" is a fact about
# other refs, which must not change between the decision and the deletion.
BRANCHES = "branches"
# filelock never blocks in flock: it retries every poll_interval, 50 ms by default.
# envoy's locks are held for milliseconds, so a waiter that sleeps 50 ms delays
# every handoff it meets (seen in a trace: a queue runner waiting 50 ms on a spawn
# that released the mutex 1 ms later). A try costs one flock call.
POLL = 0.002


def worker(name: str) -> str:
    return f"worker-{name}"


def slot(index: int) -> str:
    return f"slot-{index}"


def lock(state: State, what: str) -> FileLock:
    """The lock `what`. Its file is made (or checked) first as envoy's own (files.py):
    filelock opens it with O_TRUNC, following a symlink, and a worker's shell could put
    one there pointing at any file of the user's."""
    path = state.lock_path(what)
    try:
        os.close(state.private_fd(path, os.O_RDONLY))
    except OSError as exc:
        from envoy.worker.store import unwritable

        raise unwritable(state.root, exc) from None
    return FileLock(str(path), mode=FILE_MODE, thread_local=False)


def is_held(state: State, what: str) -> bool:
    """Whether some live process holds the lock (probing takes it for an instant)."""
    probe = lock(state, what)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False


def held_slots(state: State) -> list[int]:
    held = []
    try:
        names = os.listdir(state.locks)
    except FileNotFoundError:
        return []
    for file in names:
        if file.startswith("slot-") and file.endswith(".lock"):
            index = file[len("slot-"):-len(".lock")]
            if index.isdigit() and is_held(state, slot(int(index))):
                held.append(int(index))
    return sorted(held)


def free_slot(state: State, cap: int) -> int | None:
    """The lowest free slot below the cap, or None when `cap` workers run."""
    held = held_slots(state)
    if len(held) >= cap:
        return None
    return next(i for i in range(cap) if i not in held)


def descriptor_of(state: State, what: str) -> int:
    """This process's descriptor of a lock file (Linux /proc), to keep it across exec."""
    fd = _descriptor("self", str(state.lock_path(what)))
    if fd is None:
        raise RuntimeError(f"{state.lock_path(what)} is not open in this process")
    return fd


def opened_by(state: State, what: str, pid: int) -> bool:
    """Whether process `pid` has the lock file open: a pid read from a record is
    signalled only once this says it is the process holding the worker's lock."""
    return _descriptor(str(pid), str(state.lock_path(what))) is not None


def _descriptor(pid: str, target: str) -> int | None:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # gone, or not ours to look at
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return int(fd)
        except OSError:
            continue
    return None


def close_inherited(state: State) -> None:
    """In a forked child: drop every descriptor of a lock file, and the queue runner's
    end of the wake FIFO. Closing a copy does not unlock the parent's lock, but keeping
    it would hold the lock until the child exits; and a copy of the FIFO would answer
    pokes for a runner that may be dead (say, while a long setup command runs)."""
    prefix = str(state.locks) + os.sep
    fifo = str(state.root / wake.NAME)
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(prefix) or target == fifo:
                os.close(int(fd))
        except OSError:
            continue


class launch_mutex:
    """`with launch_mutex(state):` serialises the decisions to start workers;
    `launch_mutex(state, BRANCHES)`, cleanup's and merge's decisions about branches.
    Whoever takes both takes BRANCHES first."""

    def __init__(self, state: State, what: str = LAUNCH, timeout: float = 120.0) -> None:
        self._lock = lock(state, what)
        self._timeout = timeout

    def __enter__(self) -> None:
        try:
            self._lock.acquire(timeout=self._timeout, poll_interval=POLL)
        except Timeout:
            raise EnvoyError("busy", f"another envoy process has held {Path(self._lock.lock_file).name} "
                             f"for over {self._timeout:.0f}s", "retry in a moment") from None

    def __exit__(self, *_: object) -> None:
        self._lock.release()
