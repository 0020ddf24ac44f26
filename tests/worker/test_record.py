"""worker/record.py: a worker's name from its branch, its state machine (transition() as
the one place a record's state changes), and the checks of a record read from disk."""
from __future__ import annotations

import pytest

from envoy.worker.record import STATES, TRANSITIONS, TransitionError, problem_with, transition, worker_name

# The state machine as the design states it, written out here and never built from
# TRANSITIONS (a test built from the table under test passes for any table). A state
# added to record.py fails test_the_table_here_names_every_state until it is listed
# here with the moves it allows.
EXPECTED: dict[str | None, set[str]] = {
    None: {"queued", "starting"},  # spawn --queue / --after, or spawn at once
    "queued": {"starting", "failed", "stopped"},  # the queue starts it, or it can never start, or `stop`
    "starting": {"starting", "running", "failed", "lost", "stopped"},  # launching (again); a start failed; `stop`
    "running": {"succeeded", "failed", "lost", "stopped"},  # the run ended, or its supervisor vanished, or `stop`
    "succeeded": {"starting"},  # resume, land --repair
    "failed": {"starting"},  # resume
    "lost": {"starting"},  # resume
    "stopped": {"starting"},  # resume (or cleanup)
}
PAIRS = [(now, to) for now in EXPECTED for to in EXPECTED if to is not None]


def record_in(state: str | None) -> dict:
    return {"name": "w"} if state is None else {"name": "w", "state": state}


def test_the_table_here_names_every_state():
    assert set(STATES) == set(EXPECTED) - {None}
    assert set(TRANSITIONS) == set(EXPECTED)


@pytest.mark.parametrize("now,to", PAIRS)
def test_each_change_is_made_or_refused_as_the_design_says(now, to):
    record = record_in(now)
    if to in EXPECTED[now]:
        assert transition(record, to, {"reason": "why"}) is record
        assert record == {"name": "w", "state": to, "reason": "why"}
    else:
        with pytest.raises(TransitionError, match=f"{now} -> {to}"):
            transition(record, to, {"reason": "why"})
        assert record == record_in(now)  # refused: nothing changed


@pytest.mark.parametrize("now,to", [("running", "queued"), ("succeeded", "running"), ("queued", "running"),
                                    (None, "running"), ("failed", "succeeded"), ("lost", "running")])
def test_the_moves_a_bug_would_make_are_each_refused(now, to):
    with pytest.raises(TransitionError):
        transition(record_in(now), to)


def test_the_state_changes_only_through_to():
    with pytest.raises(TransitionError):
        transition(record_in("running"), "failed", {"state": "succeeded"})



@pytest.mark.parametrize("branch,name", [("quick/hook-fix", "quick-hook-fix"), ("feat/api//v2", "feat-api-v2"),
                                         ("Fix_it.now", "Fix_it.now"), ("a/ü/b", "a-b"), ("-x-", "x")])
def test_worker_name(branch, name):
    assert worker_name(branch) == name


def a_record(**fields) -> dict:
    return {"name": "w", "branch": "w", "state": "succeeded", "path": "/tmp/repo-w", **fields}


def test_a_plain_record_has_no_problem():
    assert problem_with(a_record(), "w") is None


@pytest.mark.parametrize("path", ["/tmp/x/../repo-w", "/tmp/./repo-w", "/tmp//repo-w", "/tmp/repo-w/"])
def test_a_worktree_path_that_is_not_normalised_is_refused(path):
    """A path with `..`, `.` or doubled slashes could name a directory other than the one
    it seems to (and end in the worker's name all the same): a record saying so is broken."""
    assert "path" in (problem_with(a_record(path=path), "w") or "")


@pytest.mark.parametrize("path", ["repo-w", "/tmp/repo-other", None, 3])
def test_a_path_that_is_no_worktree_of_the_worker_is_refused(path):
    assert "path" in (problem_with(a_record(path=path), "w") or "")


@pytest.mark.parametrize("key", ["created_at", "started_at", "finished_at", "merged_at"])
@pytest.mark.parametrize("stamp", ["yesterday", "2026-13-01T00:00:00Z", 5])
def test_a_malformed_timestamp_is_refused(key, stamp):
    assert key in (problem_with(a_record(**{key: stamp}), "w") or "")


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


# Each field read from disk is checked (its value is used as a path, handed to git, or
# summed): what a hand-edited record may hold, and what makes it broken. Found by the
# mutation run (tests/mutation/run record): these checks could be loosened unnoticed.
@pytest.mark.parametrize("field,good,bad", [
    ("base", ["main", ":/a b", "feat/x"], ["-x", "", 5, "a\x1fb", "a\x7fb"]),
    ("merged_into", ["main"], ["-x", "a b", "a..b", "a\x1fb", "", 7]),
    ("max_workers", [1, 3], [0, -1, True, "3", 2.5]),
    ("cost_usd", [0, 0.5, 12], [float("nan"), float("inf"), True, "0.5"]),
    ("duration_s", [1.5], [float("-inf"), False]),
    ("runs", [[], [{"run": 1, "cost_usd": 0.1}]], ["runs", [1], [{"cost_usd": "free"}], [{"run": float("nan")}]]),
    ("after", [["a", "b-c"]], [["../x"], ["-x"], "a", [3]]),
    ("run_id", ["abc123"], ["abc-123", "", 5]),
    ("options", [{"max_turns": 5, "allowed_tools": ["Read"]}],
     [{"max_turns": "5"}, {"allowed_tools": "Read"}, {"model": 3}, []]),
    ("trash", [{"trash_ref": "refs/envoy/trash/w", "sha": "a" * 40, "restore": "git branch w " + "a" * 40}],
     [{"trash_ref": "refs/heads/w", "sha": "a" * 40, "restore": "x"}, {"trash_ref": "refs/envoy/trash/w"}]),
    ("base_sha", ["a" * 40, "b" * 64], ["a" * 39, "A" * 40, "HEAD"]),
])
def test_each_field_read_from_disk_is_checked(field, good, bad):
    for value in good:
        assert problem_with(a_record(**{field: value}), "w") is None, (field, value)
    for value in bad:
        assert field in (problem_with(a_record(**{field: value}), "w") or ""), (field, value)


def test_elapsed_is_in_tenths_of_a_second_and_never_negative():
    from envoy.worker.record import elapsed

    assert elapsed({"started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01.26Z"}) == 1.3
    assert elapsed({"started_at": "2026-01-01T00:00:05Z", "finished_at": "2026-01-01T00:00:00Z"}) == 0.0
    assert elapsed({"finished_at": "2026-01-01T00:00:00Z"}) is None


@pytest.mark.parametrize("name,ok", [("w", True), ("feat-x.2", True), ("b..", False), ("-x", False), (".x", False),
                                     ("a--b", False), ("a/b", False), ("", False), (3, False)])
def test_a_worker_name_is_what_worker_name_makes(name, ok):
    from envoy.worker.record import is_worker_name

    assert is_worker_name(name) is ok


def test_a_record_whose_branch_is_another_workers_is_broken():
    assert "branch" in (problem_with(a_record(branch="other"), "w") or "")
