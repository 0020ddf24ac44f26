"""worker/stop_request.py: why a stop was asked for, read once by the finisher, never
through a symlink; and the budget's arithmetic."""
from __future__ import annotations

import os
from pathlib import Path

from envoy.worker import stop_request, store


def a_state(tmp_path: Path) -> store.State:
    state = store.State(tmp_path)
    state.ensure()
    state.write({"name": "w", "branch": "w", "path": "/tmp/wt-w", "state": "running", "run": 1,
                 "session_id": "s", "started_at": "2026-01-01T00:00:00Z"})
    return state


def test_a_stop_request_is_read_once(tmp_path):
    state = a_state(tmp_path)
    assert stop_request.asked(state, "w") is None
    stop_request.ask(state, "w", "budget", "over the budget")
    assert stop_request.asked(state, "w") == ("budget", "over the budget")
    assert stop_request.asked(state, "w") is None  # read once: a later stop is not taken for this one


def test_a_request_is_written_whole_never_seen_half_written(tmp_path):
    # Two budget stops can ask at once (two finishers over the budget); the finisher reading
    # the first request must never find the second one truncated to nothing.
    state = a_state(tmp_path)
    stop_request.ask(state, "w", "budget", "over the budget")
    path = state.logs / "w" / "stop.json"
    with open(path, "rb") as reader:  # a finisher that opened the request
        stop_request.ask(state, "w", "budget", "over the budget again")
        assert reader.read() == b'{"reason": "budget", "error": "over the budget"}'
    assert stop_request.asked(state, "w") == ("budget", "over the budget again")


def test_a_planted_request_that_is_a_symlink_is_not_followed(tmp_path):
    state = a_state(tmp_path)
    secret = tmp_path / "secret.json"
    secret.write_text('{"reason": "budget", "error": "planted"}')
    state.run_dir("w")
    os.symlink(secret, state.logs / "w" / "stop.json")
    assert stop_request.asked(state, "w") is None
    assert secret.read_text() == '{"reason": "budget", "error": "planted"}'  # never written or removed through it


def test_a_request_with_odd_fields_is_ignored(tmp_path):
    state = a_state(tmp_path)
    state.run_dir("w")
    (state.logs / "w" / "stop.json").write_text('{"reason": "not a word!", "error": "x"}')
    assert stop_request.asked(state, "w") is None


def test_over_budget_only_past_the_limit():
    records = [{"cost_usd": 0.5}, {"cost_usd": 0.6}]
    assert stop_request.over_budget(records, 1.0) is True
    assert stop_request.over_budget(records, 1.1) is False
    assert stop_request.over_budget(records, None) is False


def test_stoppable_lists_queued_before_running():
    records = [{"name": "r", "state": "running"}, {"name": "q", "state": "queued"}, {"name": "d", "state": "succeeded"}]
    assert stop_request.stoppable(records) == ["q", "r"]
