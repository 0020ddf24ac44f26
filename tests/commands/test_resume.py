"""resume: continue a finished worker's session as a new run."""
from __future__ import annotations

import json

from conftest import spawn_done, wait_finished


def test_resume_continues_the_session_as_a_new_run(repo, envoy, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"FAKE_CLAUDE_RECORD": str(runs)}
    record = envoy("parallel", "spawn", "--branch", "r", "--task", "@write a.txt a\n@commit first", env=env).data
    wait_finished(envoy, "r")
    resumed = envoy("parallel", "resume", "--worker", "r", "--wait", "--task", "@write b.txt b\n@commit second\n@result more",
                    env=env)
    assert resumed.code == 0, resumed.stdout
    assert resumed.data["runs"] == 2 and resumed.data["result"] == "more"
    assert resumed.data["session_id"] == record["session_id"]
    first_run, second_run = (json.loads(p.read_text()) for p in sorted(runs.iterdir()))
    assert "--session-id" in first_run["argv"] and "--resume" not in first_run["argv"]
    assert second_run["argv"][second_run["argv"].index("--resume") + 1] == record["session_id"]
    assert second_run["cwd"] == record["path"] and second_run["task"].startswith("@write b.txt")
    results = envoy("parallel", "results", "--worker", "r").data
    r = results["results"][0]
    assert [c["subject"] for c in r["commits"]] == ["second", "first"]
    assert r["num_turns"] == 6 and abs(r["cost_usd"] - 6 * 0.0011) < 1e-9  # both runs counted


def test_resume_is_refused_while_running_and_for_unknown(repo, envoy):
    envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60")
    busy = envoy("parallel", "resume", "--worker", "busy", "--task", "more")
    assert busy.code == 1 and busy.error["type"] == "still_running"
    assert envoy("parallel", "resume", "--worker", "nobody", "--task", "x").error["type"] == "not_found"
    spawn_done(envoy, "done", "@result ok")
    assert envoy("parallel", "resume", "--worker", "done", "--task", "  ").error["type"] == "invalid_input"


def test_resume_respects_the_cap(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "done", "--task", "@result ok", env=env)
    wait_finished(envoy, "done")
    envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60", env=env)
    result = envoy("parallel", "resume", "--worker", "done", "--task", "more", env=env)
    assert result.code == 1 and result.error["type"] == "limit_exceeded"


def test_resume_timeout_0_lifts_the_limit_for_that_run(repo, envoy):
    env = {"PARALLEL_TIMEOUT": "0.5"}
    spawn_done(envoy, "w", "@result first", "--timeout", "0.5")
    result = envoy("parallel", "resume", "--worker", "w", "--timeout", "0", "--wait", "--task", "@sleep 1.5\n@result second",
                   env=env)
    assert result.code == 0, result.stdout
    assert result.data["state"] == "succeeded" and result.data["result"] == "second"
