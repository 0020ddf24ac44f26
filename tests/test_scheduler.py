"""The launch hand-off: a forked, detached supervisor that reports ready."""
from __future__ import annotations

import pytest

from envoy import scheduler, supervisor
from envoy.errors import EnvoyError
from envoy.state import State


def test_a_supervisor_that_dies_before_ready_is_start_failed(tmp_path, monkeypatch):
    state = State(tmp_path)
    state.ensure()
    monkeypatch.setattr(supervisor, "main", lambda *args: 3)  # runs in the forked child
    record = {"name": "w", "run": 0, "state": "starting"}
    state.write(record)
    with pytest.raises(EnvoyError) as exc:
        scheduler.start(state, record, 0)
    assert exc.value.kind == "start_failed"


def test_self_command_runs_this_source_tree():
    command = scheduler.self_command()
    assert command[1].endswith("envoy.pyz.d")
    assert scheduler.self_command(bare=True)[1:3] == ["-I", "-S"]
