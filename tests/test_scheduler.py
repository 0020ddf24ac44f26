"""The launch hand-off, with the supervisor's process launch faked (pytest-subprocess)."""
from __future__ import annotations

import pytest

from envoy import scheduler
from envoy.errors import EnvoyError
from envoy.state import State


def test_a_supervisor_that_dies_before_ready_is_start_failed(tmp_path, fp):
    state = State(tmp_path)
    state.ensure()
    fp.register([*scheduler.self_command(), "_supervise", fp.any()], returncode=1)
    record = {"name": "w", "run": 0}
    with pytest.raises(EnvoyError) as exc:
        scheduler.start(state, record, 0)
    assert exc.value.kind == "start_failed"
    call = fp.calls[0]
    assert call[call.index("--name") + 1] == "w" and call[call.index("--run") + 1] == "1"
    assert call[call.index("--slot") + 1] == "0"


def test_self_command_runs_this_source_tree():
    command = scheduler.self_command()
    assert command[1].endswith("envoy.pyz.d")
