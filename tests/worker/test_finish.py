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
