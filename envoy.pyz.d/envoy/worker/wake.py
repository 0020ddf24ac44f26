"""Waking the queue runner: a FIFO, `<git common dir>/envoy/queue.wake`.

The runner (queueing.py) sleeps in select() on it. Whatever may let a queued
worker start pokes it: a spawn that queued one, a watcher that freed a slot,
a finisher that recorded how a dependency ended. A poke is one byte written
without blocking, and it tells the poker whether a runner is listening, so a
finishing worker loads the queue machinery only when no runner is there.

Only os, select, stat and time: the watcher beside every agent imports this.
"""
from __future__ import annotations

import os
import select
import stat
import time

NAME = "queue.wake"


def poke(root: str | os.PathLike[str]) -> bool:
    """Wake the runner of the state directory `root`; False if no runner listens."""
    try:  # O_NOFOLLOW: a symlink planted there must not have us write into the file it names
        fd = os.open(os.path.join(root, NAME), os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:  # ENXIO: a FIFO without a reader; ENOENT: there never was a runner; ELOOP: a symlink
        return False
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False  # a plain file put there: not a runner's, and not ours to write
        os.write(fd, b".")
    except BlockingIOError:  # the FIFO is full of pokes the runner has not read: it will look
        pass
    finally:
        os.close(fd)
    return True


FALLBACK_POLL = 0.05  # without a FIFO, the runner looks this often


def listen(root: str | os.PathLike[str]) -> int | None:
    """The runner's end of the FIFO (made if missing), or None where the filesystem
    has no FIFOs (some network and host-shared mounts): the runner then polls. Opened
    read-write, so the runner is a writer too: the FIFO never reads as closed
    between pokes."""
    path = os.path.join(root, NAME)
    try:
        if not stat.S_ISFIFO(os.lstat(path).st_mode):
            os.unlink(path)  # not ours: select() on a plain file would never sleep
    except FileNotFoundError:
        pass
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:  # replaced meanwhile (by a symlink, say): poll instead
        return None
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def wait(fd: int | None, timeout: float) -> None:
    """Sleep until a poke (or `timeout`), then take every poke waiting."""
    if fd is None:
        time.sleep(min(timeout, FALLBACK_POLL))
        return
    select.select([fd], [], [], timeout)
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
