"""worker/record.py: a worker's name from its branch, and its state machine: the allowed
changes as data, and transition() as the one place a record's state changes."""
from __future__ import annotations

import itertools

import pytest

from envoy.worker.record import STATES, TRANSITIONS, TransitionError, transition, worker_name

ALLOWED = [(now, to) for now, targets in TRANSITIONS.items() for to in targets]
REFUSED = [(now, to) for now, to in itertools.product([None, *STATES], STATES) if (now, to) not in ALLOWED]


def record_in(state: str | None) -> dict:
    return {"name": "w"} if state is None else {"name": "w", "state": state}


@pytest.mark.parametrize("now,to", ALLOWED)
def test_every_allowed_change_is_made_with_its_other_fields(now, to):
    record = record_in(now)
    assert transition(record, to, {"reason": "why"}) is record
    assert record == {"name": "w", "state": to, "reason": "why"}


@pytest.mark.parametrize("now,to", REFUSED)
def test_every_other_change_is_refused_and_changes_nothing(now, to):
    record = record_in(now)
    with pytest.raises(TransitionError, match=f"{now} -> {to}"):
        transition(record, to, {"reason": "why"})
    assert record == record_in(now)


def test_the_table_names_only_states_and_reaches_every_state():
    assert set(TRANSITIONS) == {None, *STATES}
    assert {to for targets in TRANSITIONS.values() for to in targets} == set(STATES)
    assert set(REFUSED) & {("running", "queued"), ("succeeded", "running"), ("queued", "running"), (None, "running")}


def test_the_state_changes_only_through_to():
    with pytest.raises(TransitionError):
        transition(record_in("running"), "failed", {"state": "succeeded"})



@pytest.mark.parametrize("branch,name", [("quick/hook-fix", "quick-hook-fix"), ("feat/api//v2", "feat-api-v2"),
                                         ("Fix_it.now", "Fix_it.now"), ("a/ü/b", "a-b"), ("-x-", "x")])
def test_worker_name(branch, name):
    assert worker_name(branch) == name


@pytest.mark.parametrize("field, value, ok", [
    ("attention", ["denied: Bash(sed -i x)", "uncommitted: a.txt"], True),
    ("attention", [], True),
    ("attention", "denied: everything", False),
    ("attention", [{"reason": 1}], False),
    ("left", {"commits": 2, "uncommitted": None, "commit_failed": False}, True),
    ("left", {"commits": "many"}, False),
    ("left", ["commits", 2], False),
])
def test_what_a_worker_left_is_checked_when_read(field, value, ok):
    """attention and left come from disk, untrusted, like every other field."""
    from envoy.worker.record import problem_with

    record = {"name": "w", "branch": "w", "state": "succeeded", "path": "/tmp/claude-worker-w", field: value}
    assert (problem_with(record, "w") is None) is ok
