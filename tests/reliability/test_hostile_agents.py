"""Agents that misbehave (agents/): too fast, slow, silent, hanging, printing
garbage or megabytes, leaving processes behind. Agent output is untrusted input:
each run ends with a true, recorded state (never `lost`: its supervisor saw it
end), the verbs keep answering for every worker, and nothing of it survives."""
from __future__ import annotations

import time

import pytest

from invariants import ask, assert_invariants, assert_no_strays, cmdline, processes_of, settle, snapshot, status
from rig import AGENTS, Rig, rig  # noqa: F401 (rig: a fixture)

USER = {"main"}


def run_agent(rig: Rig, agent: str, task: str, branch: str, *extra: str) -> dict:
    data = ask(rig.repo, "parallel", "spawn", "--branch", branch, "--task", task, *extra,
               env={"ENVOY_CLAUDE": agent}).data()
    workers = {w["name"]: w for w in settle(rig.repo, 60)}
    return workers[data["name"]]


@pytest.mark.parametrize("agent, expected", [
    ("fast.sh", "succeeded"),   # one valid result line, gone within milliseconds
    ("/bin/true", "failed"),    # exit 0, no result
    ("/bin/false", "failed"),   # exit 1, no result
])
def test_agent_that_ends_at_once(rig, agent, expected):
    """Three at once: whether the watcher sees such an agent end depends on timing."""
    before = snapshot(rig.repo)
    env = {"ENVOY_CLAUDE": str(AGENTS / agent) if "/" not in agent else agent}
    for i in range(3):
        ask(rig.repo, "parallel", "spawn", "--branch", f"quick{i}", "--task", "anything", env=env).data()
    workers = settle(rig.repo, 60)
    assert [w["state"] for w in workers] == [expected] * 3, workers
    if expected == "succeeded":
        results = ask(rig.repo, "parallel", "results").data()
        assert str(results).count("fast") >= 3, results
    assert_invariants(rig.repo, before, USER)


def test_silent_agent(rig):
    before = snapshot(rig.repo)
    worker = run_agent(rig, str(AGENTS / "hostile.py"), "silent", "mute")
    assert worker["state"] == "failed" and worker.get("reason") not in (None, "lost"), worker
    assert_invariants(rig.repo, before, USER)


def test_hanging_agent_is_timed_out(rig):
    before = snapshot(rig.repo)
    worker = run_agent(rig, str(AGENTS / "hostile.py"), "hang", "stuck", "--timeout", "1")
    assert (worker["state"], worker.get("reason")) == ("failed", "timeout"), worker
    assert_no_strays({worker["name"]})
    assert_invariants(rig.repo, before, USER)


def test_slow_agent_is_running_then_succeeds(rig):
    before = snapshot(rig.repo)
    data = ask(rig.repo, "parallel", "spawn", "--branch", "slowpoke", "--task", "slow 2",
               env={"ENVOY_CLAUDE": str(AGENTS / "hostile.py")}).data()
    assert [w["state"] for w in status(rig.repo)] == ["running"]
    workers = settle(rig.repo, 60)
    assert [w["state"] for w in workers] == ["succeeded"], workers
    assert_invariants(rig.repo, before, USER)
    assert data["name"] == "slowpoke"


def test_garbage_output_is_recorded_and_breaks_no_verb(rig):
    """Junk bytes, JSON that is not a message, and a result whose numbers are words:
    the end is recorded (not `lost`), and results still answers for every worker."""
    good = ask(rig.repo, "parallel", "spawn", "--branch", "good", "--wait", "--task", "@result all good").data()
    before = snapshot(rig.repo)
    worker = run_agent(rig, str(AGENTS / "hostile.py"), "garbage", "junk")
    assert worker["state"] in ("succeeded", "failed") and worker.get("reason") != "lost", worker
    everyone = ask(rig.repo, "parallel", "results").data()
    assert "all good" in str(everyone), everyone
    ask(rig.repo, "parallel", "results", "--worker", "junk").data()
    assert good["state"] == "succeeded"
    assert_invariants(rig.repo, before, USER | {"good"})


def test_huge_output(rig):
    """20 MB of transcript (a 10 MB line among it): the run is recorded, and what status
    and results print stays small (an agent reads every byte of it)."""
    before = snapshot(rig.repo)
    worker = run_agent(rig, str(AGENTS / "hostile.py"), "huge 20", "big")
    assert worker["state"] == "succeeded", worker
    log = next((rig.state / "logs" / "big").glob("*.jsonl"))
    assert log.stat().st_size > 20_000_000
    for args in (("status",), ("results",), ("results", "--worker", "big")):
        answer = ask(rig.repo, "parallel", *args)
        answer.data()
        assert len(answer.stdout) < 1_000_000, (args, len(answer.stdout))
    assert_invariants(rig.repo, before, USER)


@pytest.mark.parametrize("which", ["its-group", "new-session"])
def test_grandchildren_do_not_outlive_the_worker(rig, which):
    """The agent answers and exits, leaving a sleeper in its process group, or one that
    escaped into a new session: once the worker has ended, it does not survive."""
    before = snapshot(rig.repo)
    worker = run_agent(rig, str(AGENTS / "hostile.py"), f"grandchildren {which}", "parent")
    assert worker["state"] == "succeeded", worker
    answer = ask(rig.repo, "parallel", "results", "--worker", "parent").data()["results"][0]["result"]
    assert answer.startswith("left a sleeper behind: pid "), answer  # the grandchild was started
    sleeper = int(answer.rsplit(" ", 1)[1])
    wanted = "sleep 300" if which == "its-group" else "sleep 301"

    def survivors() -> dict[int, str]:
        return {pid: line for pid, line in processes_of({"parent"}).items() if line == wanted}
    deadline = time.monotonic() + 10  # the same grace as assert_no_strays
    while survivors() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = survivors()
    assert not left, f"{which} grandchild outlived its finished worker: {left}"
    assert cmdline(sleeper) != wanted  # that very process is gone (its pid free, or reused by another)
    assert_invariants(rig.repo, before, USER)
