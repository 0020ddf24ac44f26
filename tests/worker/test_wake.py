"""wake.py: the FIFO that wakes the queue runner."""
from __future__ import annotations

import os
import stat
import time

from envoy.worker import wake


def test_a_poke_without_a_listener_says_so(tmp_path):
    assert wake.poke(tmp_path) is False  # no FIFO at all
    os.close(wake.listen(tmp_path))
    assert wake.poke(tmp_path) is False  # a FIFO, but no runner reading it


def test_a_poke_wakes_the_listener_and_is_taken_once(tmp_path):
    fd = wake.listen(tmp_path)
    try:
        assert stat.S_ISFIFO(os.lstat(tmp_path / wake.NAME).st_mode)
        for _ in range(3):
            assert wake.poke(tmp_path) is True
        start = time.monotonic()
        wake.wait(fd, 30)
        assert time.monotonic() - start < 10  # woken, not timed out
        try:
            leftover = os.read(fd, 10)
        except BlockingIOError:
            leftover = b""
        assert leftover == b""  # all three pokes taken by the one wake
    finally:
        os.close(fd)


def test_many_pokes_never_block_the_poker(tmp_path):
    fd = wake.listen(tmp_path)
    try:
        for _ in range(70_000):  # more than a pipe buffer holds
            assert wake.poke(tmp_path) is True
    finally:
        os.close(fd)


def test_listen_replaces_a_file_that_is_not_a_fifo(tmp_path):
    (tmp_path / wake.NAME).write_text("not a fifo")
    fd = wake.listen(tmp_path)
    try:
        assert stat.S_ISFIFO(os.lstat(tmp_path / wake.NAME).st_mode)
    finally:
        os.close(fd)


def test_without_fifos_the_runner_polls(tmp_path, monkeypatch):
    """A filesystem without FIFOs (some network and host-shared mounts): no FIFO, and
    the runner's wait becomes a short sleep instead of a failure."""
    def no_fifos(*_args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "mkfifo", no_fifos)
    assert wake.listen(tmp_path) is None
    start = time.monotonic()
    wake.wait(None, 30)
    assert time.monotonic() - start < 5
    assert wake.poke(tmp_path) is False  # and pokes find no one, so finishers dispatch themselves
