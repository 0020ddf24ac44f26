"""worker/lookup.py: finding a worker by name or branch, and a record whose supervisor
is gone turned `lost` (liveness is the worker lock, never a PID)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import hold, kill, wait_until
from envoy.errors import EnvoyError
from envoy.worker import locks, lookup, store


@pytest.fixture
def state(tmp_path: Path) -> store.State:
    state = store.State(tmp_path)
    state.ensure()
    return state


def add(records: store.State, name: str, branch: str | None = None, now: str = "succeeded", **fields) -> dict:
    record = {"name": name, "branch": branch or name, "state": now, "path": f"/tmp/wt-{name}",
              "started_at": "2026-01-01T00:00:00Z", **fields}
    records.write(record)
    return record


def test_a_worker_is_found_by_name_and_by_branch(state):
    add(state, "feat-x", branch="feat/x")
    add(state, "y")
    assert lookup.find(state, "feat-x")["branch"] == "feat/x"
    assert lookup.find(state, "feat/x")["name"] == "feat-x"
    assert lookup.find(state, "y")["name"] == "y"


@pytest.mark.parametrize("key", ["nope", "../workers/y", "feat", "", ".", "x" * 300])
def test_not_found_names_the_workers_there_are(state, key):
    add(state, "feat-x", branch="feat/x")
    add(state, "y")
    with pytest.raises(EnvoyError) as caught:
        lookup.find(state, key)
    assert caught.value.kind == "not_found"
    assert "feat-x" in caught.value.suggestion and "y" in caught.value.suggestion


def test_not_found_with_no_workers_points_at_status(state):
    with pytest.raises(EnvoyError) as caught:
        lookup.find(state, "w")
    assert "envoy parallel status" in caught.value.suggestion


def test_a_running_worker_whose_lock_is_free_is_lost(state):
    add(state, "w", now="running")
    found = lookup.find(state, "w")
    assert (found["state"], found["reason"]) == ("lost", "lost")
    assert found["error"] == lookup.LOST_ERROR and found["finished_at"]
    assert state.read("w")["state"] == "lost"  # written, not only returned


def test_a_checkout_cut_short_is_lost_with_its_own_reason(state):
    add(state, "w", now="starting", checking_out=True)
    found = lookup.find(state, "w")
    assert found["state"] == "lost" and found["error"] == lookup.CUT_SHORT_ERROR


def test_a_running_worker_whose_supervisor_holds_the_lock_stays_running(state):
    add(state, "w", now="running")
    supervisor = hold(state, locks.worker("w"))
    try:
        assert lookup.find(state, "w")["state"] == "running"
        assert state.read("w")["state"] == "running"
    finally:
        kill(supervisor)  # killed -9: the kernel frees the lock, and the worker is lost
    assert lookup.find(state, "w")["state"] == "lost"


def test_a_starting_worker_is_left_alone_while_a_launcher_holds_the_launch_mutex(state):
    add(state, "w", now="starting")
    launcher = hold(state, locks.LAUNCH)
    try:
        assert lookup.find(state, "w")["state"] == "starting"
    finally:
        kill(launcher)
    assert lookup.find(state, "w")["state"] == "lost"


@pytest.mark.parametrize("now", ["queued", "succeeded", "failed"])
def test_a_queued_or_finished_record_is_never_turned_lost(state, now):
    add(state, "w", now=now)
    assert [r["state"] for r in lookup.all_refreshed(state)] == [now]
    assert state.read("w")["state"] == now


def test_turning_lost_ends_the_runs_stray_processes(state):
    run_id = "a1b2c3d4e5f6"
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env={**os.environ, "ENVOY_RUN_ID": run_id})
    try:
        add(state, "w", now="running", run_id=run_id)
        assert lookup.find(state, "w")["state"] == "lost"
        wait_until(lambda: stray.poll() is not None, timeout=10)
    finally:
        if stray.poll() is None:
            kill(stray)
    assert stray.returncode != 0


def test_duration_counts_on_while_active_and_is_the_recorded_one_after(state):
    running = add(state, "w", now="running")
    assert lookup.duration(running) > 3600  # started in 2026-01-01, still running
    assert lookup.duration(add(state, "v", now="succeeded", duration_s=12.5)) == 12.5
