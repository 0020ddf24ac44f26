"""worker/locks.py: liveness and the cap are held flocks, seen across processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ENVOY_SOURCE, hold, kill
from envoy.errors import EnvoyError
from envoy.worker import locks, store


@pytest.fixture
def state(tmp_path: Path) -> store.State:
    state = store.State(tmp_path)
    state.ensure()
    return state


def test_a_lock_is_held_while_a_child_holds_it_and_free_once_it_is_killed(state):
    assert not locks.is_held(state, locks.worker("w"))
    child = hold(state, locks.worker("w"))
    try:
        assert locks.is_held(state, locks.worker("w"))
        assert not locks.is_held(state, locks.worker("other"))
        assert locks.is_held(state, locks.worker("w"))  # probing did not take it away
    finally:
        kill(child)
    assert not locks.is_held(state, locks.worker("w"))  # the kernel freed it with the process
    assert state.lock_path(locks.worker("w")).exists()  # lock files are never deleted


def test_probing_a_free_lock_leaves_it_free_for_others(state):
    assert not locks.is_held(state, "x")
    child = hold(state, "x")  # would time out (and fail) if the probe had kept it
    kill(child)


def test_free_slot_is_the_lowest_free_one_and_none_at_the_cap(state):
    assert locks.held_slots(state) == [] and locks.free_slot(state, 2) == 0
    first = hold(state, locks.slot(0), locks.slot(2))
    try:
        assert locks.held_slots(state) == [0, 2]
        assert locks.free_slot(state, 3) == 1
        assert locks.free_slot(state, 2) is None  # two held: the cap of two is reached
        second = hold(state, locks.slot(1))
        try:
            assert locks.free_slot(state, 3) is None
            assert locks.free_slot(state, 4) == 3
        finally:
            kill(second)
        assert locks.free_slot(state, 3) == 1
    finally:
        kill(first)
    assert locks.held_slots(state) == [] and locks.free_slot(state, 1) == 0


def test_held_slots_ignores_other_lock_files(state):
    for name in ("slot-x.lock", "slot-.lock", "slot-1.txt", "worker-slot-2.lock"):
        (state.locks / name).write_text("")
    child = hold(state, "slot-x", locks.worker("slot-2"))
    try:
        assert locks.held_slots(state) == []
    finally:
        kill(child)


def test_held_slots_with_no_locks_directory(tmp_path):
    assert locks.held_slots(store.State(tmp_path)) == []


def test_launch_mutex_times_out_as_busy_while_another_process_holds_it(state):
    child = hold(state, locks.LAUNCH)
    try:
        start = time.monotonic()
        with pytest.raises(EnvoyError) as caught:
            with locks.launch_mutex(state, timeout=0.3):
                pytest.fail("entered a mutex another process holds")
        assert 0.3 <= time.monotonic() - start < 5
        assert caught.value.kind == "busy" and "launch.lock" in caught.value.message
        with locks.launch_mutex(state, locks.BRANCHES, timeout=0.3):  # another mutex is free
            pass
    finally:
        kill(child)
    with locks.launch_mutex(state, timeout=1):  # free again once the holder died
        pass


def test_launch_mutex_is_exclusive_across_processes_and_released_on_exit(state):
    with locks.launch_mutex(state):
        probe = subprocess.run([sys.executable, "-c", f"""
import sys; sys.path[:0] = [{str(ENVOY_SOURCE)!r}, {str(ENVOY_SOURCE / 'vendor')!r}]
from pathlib import Path
from envoy.worker import locks, store
print(locks.is_held(store.State(Path({str(state.root.parent)!r})), locks.LAUNCH))
"""], capture_output=True, text=True, timeout=30)
        assert probe.stdout.strip() == "True", probe.stderr
    assert not locks.is_held(state, locks.LAUNCH)


def test_launch_mutex_is_released_when_the_block_raises(state):
    with pytest.raises(RuntimeError):
        with locks.launch_mutex(state):
            raise RuntimeError("boom")
    child = hold(state, locks.LAUNCH)  # takes it within its 5 s, or fails
    kill(child)


def test_opened_by_names_only_the_process_that_has_the_lock_file_open(state):
    child = hold(state, locks.worker("w"))
    try:
        assert locks.opened_by(state, locks.worker("w"), child.pid)
        assert not locks.opened_by(state, locks.worker("other"), child.pid)
        assert not locks.opened_by(state, locks.worker("w"), os.getpid())
    finally:
        kill(child)
    assert not locks.opened_by(state, locks.worker("w"), child.pid)  # gone
    assert not locks.opened_by(state, locks.worker("w"), 1 << 30)  # never was


def test_descriptor_of_is_this_processes_open_lock(state):
    lock = locks.lock(state, "mine")
    with pytest.raises(RuntimeError):
        locks.descriptor_of(state, "mine")
    lock.acquire()
    try:
        fd = locks.descriptor_of(state, "mine")
        assert os.readlink(f"/proc/self/fd/{fd}") == str(state.lock_path("mine"))
    finally:
        lock.release()
