"""How a run ends is recorded exactly, however fast the agent exits.

An agent that exits within milliseconds used to race envoy's own reaping of
it: the watcher found no child to wait for and the worker was recorded `lost`.
Each case runs a few times: the race did not lose every time."""
from __future__ import annotations

from pathlib import Path

import pytest

RESULT_LINE = ('{"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"quick answer",'
               '"total_cost_usd":0.25,"session_id":"fast-session"}')


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "agent.sh"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("attempt", range(4))
def test_an_agent_that_prints_its_result_and_exits_at_once_succeeded(repo, envoy, tmp_path, attempt):
    agent = script(tmp_path, f"echo '{RESULT_LINE}'")
    done = envoy("parallel", "spawn", "--branch", f"fast{attempt}", "--wait", "--task", "x",
                 env={"ENVOY_CLAUDE": agent})
    assert done.code == 0, done.stdout
    assert done.data["state"] == "succeeded"
    assert done.data["result"] == "quick answer"
    assert done.data["cost_usd"] == 0.25 and done.data["num_turns"] == 2


@pytest.mark.parametrize("attempt", range(3))
@pytest.mark.parametrize("agent, code", [("/bin/true", 0), ("/bin/false", 1)])
def test_an_agent_that_exits_at_once_without_a_result_failed(repo, envoy, agent, code, attempt):
    done = envoy("parallel", "spawn", "--branch", f"quick{attempt}", "--wait", "--task", "x",
                 env={"ENVOY_CLAUDE": agent})
    assert done.code == 1
    data = done.json["data"]
    assert (data["state"], data["reason"], data["exit_code"]) == ("failed", "no_result", code)


def test_an_agent_that_exits_at_once_after_a_setup_command(repo, envoy, tmp_path):
    agent = script(tmp_path, f"echo '{RESULT_LINE}'")
    done = envoy("parallel", "spawn", "--branch", "after-setup", "--wait", "--setup", "true", "--task", "x",
                 env={"ENVOY_CLAUDE": agent})
    assert done.code == 0, done.stdout
    assert done.data["state"] == "succeeded"


@pytest.mark.parametrize("agent", ["/bin/true", "/bin/false"])
def test_discovery_streams_that_exit_at_once_fail_with_a_reason(repo, envoy, agent):
    done = envoy("discover", "anything", env={"ENVOY_CLAUDE": agent})
    assert done.code == 1 and done.error["type"] == "discovery_failed"
    assert {s["reason"] for s in done.error["streams"]} == {"no_result"}


@pytest.mark.parametrize("attempt", range(2))
def test_a_resumed_run_that_ends_at_once_is_recorded(repo, envoy, tmp_path, attempt):
    agent = script(tmp_path, f"echo '{RESULT_LINE}'")
    env = {"ENVOY_CLAUDE": agent}
    assert envoy("parallel", "spawn", "--branch", "r", "--wait", "--task", "x", env=env).code == 0
    again = envoy("parallel", "resume", "--worker", "r", "--wait", "--task", "more", env=env)
    assert again.code == 0, again.stdout
    assert again.data["state"] == "succeeded" and again.data["runs"] == 2
    assert again.data["cost_usd"] == 0.5 and again.data["num_turns"] == 4


# -- agent_ending and record_end, unit by unit, on real Claude Code output --------------
import shutil  # noqa: E402

from conftest import SAMPLES  # noqa: E402
from envoy.worker import finish, store  # noqa: E402
from envoy.worker.record import transition  # noqa: E402


def running_state(tmp_path: Path, **fields) -> store.State:
    state = store.State(tmp_path)
    state.ensure()
    state.write({"name": "w", "branch": "w", "path": "/tmp/wt-w", "state": "running", "run": 1,
                 "session_id": "recorded-session", "started_at": "2026-01-01T00:00:00Z", **fields})
    return state


def with_log(state: store.State, run: int, sample: str | None, err: str = "") -> None:
    state.run_dir("w")
    if sample:
        shutil.copy(SAMPLES / sample, state.run_file("w", run, "jsonl"))
    state.run_file("w", run, "err").write_text(err)


@pytest.mark.parametrize("sample, exit_code, outcome, reason, in_error", [
    ("success.jsonl", 0, "succeeded", None, None),
    ("permission-denied.jsonl", 0, "succeeded", None, None),  # a refused tool is not a failed run
    ("hook-blocked.jsonl", 0, "succeeded", None, None),
    ("max-turns.jsonl", 1, "failed", "max_turns", "Reached maximum number of turns"),
    ("api-error-500.jsonl", 1, "failed", "api_error", "API Error: 500"),
    ("success.jsonl", 3, "failed", "exit_code", "exit 3"),  # a result, then a bad exit
    (None, 1, "failed", "no_result", "the last stderr line"),
    (None, -9, "failed", "killed", "signal 9"),
])
def test_the_ending_of_a_run_follows_its_result_and_exit(tmp_path, sample, exit_code, outcome, reason, in_error):
    state = running_state(tmp_path)
    with_log(state, 1, sample, err="noise\nthe last stderr line\n")
    ending, result = finish.agent_ending(state, "w", 1, exit_code, None)
    assert (ending["state"], ending["reason"], ending["exit_code"]) == (outcome, reason, exit_code)
    if in_error:
        assert in_error in ending["error"]
    else:
        assert ending["error"] is None
    if sample:
        first = (SAMPLES / sample).read_text().split('"session_id":"', 1)[1].split('"', 1)[0]
        assert ending["session_id"] == first and result["session_id"] == first
    else:
        assert ending["session_id"] == "recorded-session" and result == {}


@pytest.mark.parametrize("why, outcome, reason, in_error", [("timeout", "failed", "timeout", "90s timeout"),
                                                            ("stopped", "stopped", "stopped", "cleanup")])
def test_a_stopped_or_timed_out_run_ends_for_that_reason_even_with_a_result(tmp_path, why, outcome, reason, in_error):
    state = running_state(tmp_path, options={"timeout_s": 90})
    with_log(state, 1, "success.jsonl")
    ending, result = finish.agent_ending(state, "w", 1, -15, why)
    assert (ending["state"], ending["reason"]) == (outcome, reason)
    assert in_error in ending["error"]
    assert result["total_cost_usd"] == 0.0011  # what it spent before the stop still counts


def end_run(state: store.State, run: int, sample: str, exit_code: int = 0) -> dict:
    with_log(state, run, sample)
    ending, result = finish.agent_ending(state, "w", run, exit_code, None)
    finish.record_end(state, "w", run, ending, result)
    return state.read("w")


def resume(state: store.State, run: int) -> None:
    record = state.read("w")
    transition(record, "starting", {"run": run, "started_at": "2026-01-01T01:00:00Z", "finished_at": None})
    transition(record, "running")
    state.write(record)


def test_record_end_appends_each_run_and_sums_cost_and_turns(tmp_path):
    state = running_state(tmp_path)
    first = end_run(state, 1, "success.jsonl")
    assert first["state"] == "succeeded" and first["result"] == "Added hi.txt and committed it."
    assert [r["run"] for r in first["runs"]] == [1]
    assert (first["cost_usd"], first["num_turns"]) == (0.0011, 2)
    assert first["finished_at"] and first["duration_s"] is not None
    resume(state, 2)
    second = end_run(state, 2, "max-turns.jsonl", exit_code=1)
    assert second["state"] == "failed" and second["reason"] == "max_turns"
    assert [(r["run"], r["state"], r["reason"]) for r in second["runs"]] == \
        [(1, "succeeded", None), (2, "failed", "max_turns")]
    assert second["cost_usd"] == round(0.0011 + 0.00055, 6) and second["num_turns"] == 4
    assert second["result"] is None  # the latest run's answer, not the first one's


def test_record_end_of_a_run_recorded_twice_replaces_it(tmp_path):
    state = running_state(tmp_path, runs=[{"run": 1, "state": "running", "cost_usd": 5.0, "num_turns": 9}])
    record = end_run(state, 1, "success.jsonl")
    assert len(record["runs"]) == 1 and record["cost_usd"] == 0.0011 and record["num_turns"] == 2


def test_record_end_clears_an_earlier_runs_reason_and_error(tmp_path):
    state = running_state(tmp_path, reason="timeout", error="killed after the 5s timeout")
    record = end_run(state, 1, "success.jsonl")
    assert (record["state"], record["reason"], record["error"]) == ("succeeded", None, None)


def test_record_end_cuts_a_huge_answer_and_points_at_the_log(tmp_path):
    state = running_state(tmp_path)
    huge = (SAMPLES / "success.jsonl").read_text().replace("Added hi.txt and committed it.", "y" * 200_000)
    state.run_dir("w")
    state.run_file("w", 1, "jsonl").write_text(huge)
    ending, result = finish.agent_ending(state, "w", 1, 0, None)
    finish.record_end(state, "w", 1, ending, result)
    answer = state.read("w")["result"]
    assert answer.startswith("y" * finish.MAX_RESULT) and len(answer) < finish.MAX_RESULT + 300
    assert str(state.run_file("w", 1, "jsonl")) in answer


def test_record_end_of_a_removed_worker_writes_nothing(tmp_path):
    state = running_state(tmp_path)
    state.delete("w")
    finish.record_end(state, "w", 1, {"state": "succeeded"})
    assert state.read("w") is None


def test_a_stop_asked_for_is_recorded_with_its_reason(tmp_path):
    from envoy.worker import stop_request

    state = running_state(tmp_path)
    with_log(state, 1, "success.jsonl")
    stop_request.ask(state, "w", "budget", "over the budget")
    ending, _ = finish.agent_ending(state, "w", 1, -15, "stopped")
    assert (ending["state"], ending["reason"], ending["error"]) == ("stopped", "budget", "over the budget")
    assert stop_request.asked(state, "w") is None  # read once: a later stop is not taken for this one
