"""stop: a worker's run ends now, its work stays, and it can be resumed or cleaned up."""
from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import git, spawn_done, wait_finished, wait_until


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stop_ends_every_process_of_the_run_and_keeps_the_work(repo, envoy, tmp_path):
    stray = tmp_path / "stray.pid"
    record = envoy("parallel", "spawn", "--branch", "feat/loop",
                   "--task", f"@write a.txt a\n@commit first\n@stray {stray}\n@sleep 120").data
    wait_until(lambda: stray.exists() and stray.read_text().strip())
    stray_pid = int(stray.read_text())
    agent_pid = wait_until(lambda: envoy("parallel", "status", "--worker", "feat-loop").data["workers"][0]
                           .get("state") == "running" and json.loads(
                               (repo / ".git/envoy/workers/feat-loop.json").read_text()).get("agent_pid"))
    result = envoy("parallel", "stop", "--worker", "feat/loop")
    assert result.code == 0, result.stdout
    assert result.data["state"] == "stopped" and result.data["reason"] == "stopped"
    assert not alive(agent_pid) and not alive(stray_pid)
    assert Path(record["path"]).is_dir()  # the worktree stays
    assert git(repo, "log", "-1", "--format=%s", "feat/loop").strip() == "first"  # and the branch
    assert (repo / ".git/envoy/logs/feat-loop/1.jsonl").stat().st_size > 0  # and the transcript
    assert envoy("parallel", "status").data["summary"]["stopped"] == 1


def test_a_stopped_worker_resumes_in_its_session_and_cleans_up_like_a_failed_one(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "r", "--task", "@sleep 120").data
    assert envoy("parallel", "stop", "--worker", "r").data["state"] == "stopped"
    resumed = envoy("parallel", "resume", "--worker", "r", "--wait", "--task", "@result resumed")
    assert resumed.code == 0, resumed.stdout
    assert resumed.data["state"] == "succeeded" and resumed.data["session_id"] == record["session_id"]
    assert resumed.data["runs"] == 2
    envoy("parallel", "spawn", "--branch", "s", "--task", "@sleep 120")
    envoy("parallel", "stop", "--worker", "s")
    cleaned = envoy("parallel", "cleanup", "--worker", "s")
    assert cleaned.code == 0 and cleaned.data["removed"][0]["name"] == "s", cleaned.stdout


def test_a_queued_worker_is_stopped_before_it_starts(repo, envoy, tmp_path):
    env = {"PARALLEL_MAX_WORKERS": "1", "FAKE_CLAUDE_RECORD": str(tmp_path)}
    envoy("parallel", "spawn", "--branch", "busy", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    queued = envoy("parallel", "spawn", "--queue", "--branch", "later", "--task", "@result later", env=env).data
    assert queued["state"] == "queued"
    stopped = envoy("parallel", "stop", "--worker", "later", env=env)
    assert stopped.code == 0 and stopped.data["state"] == "stopped", stopped.stdout
    (tmp_path / "go").write_text("")
    wait_finished(envoy, "busy")
    # wait is a join over every worker not cleaned up: the stopped one did not succeed, and
    # it is not waited for (it ended): the answer comes at once
    joined = envoy("parallel", "wait", "--timeout", "30", env=env)
    assert joined.code == 1 and joined.error["type"] == "worker_failed" and "later" in joined.error["message"]
    assert envoy("parallel", "status", "--worker", "later").data["workers"][0]["state"] == "stopped"
    sessions = [json.loads(p.read_text())["argv"] for p in tmp_path.glob("*.json")]
    assert queued["session_id"] not in json.dumps(sessions)  # its agent never ran
    resumed = envoy("parallel", "resume", "--worker", "later", "--task", "x")
    assert resumed.code == 1 and "stopped before it started" in resumed.error["message"]
    assert envoy("parallel", "cleanup", "--worker", "later").code == 0


def test_stop_all_stops_queued_and_running_workers(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "2"}
    for i in range(3):
        envoy("parallel", "spawn", "--queue", "--branch", f"w{i}", "--task", "@sleep 120", env=env)
    done = spawn_done(envoy, "done", "@result ok")
    result = envoy("parallel", "stop", "--all", env=env)
    assert result.code == 0, result.stdout
    assert sorted(result.data["stopped"]) == ["w0", "w1", "w2"]
    states = {w["name"]: w["state"] for w in envoy("parallel", "status", "--all").data["workers"]}
    assert states == {"w0": "stopped", "w1": "stopped", "w2": "stopped", done["name"]: "succeeded"}


def test_stop_of_a_finished_unknown_or_stopped_worker_is_a_typed_refusal(repo, envoy):
    spawn_done(envoy, "done", "@result ok")
    finished = envoy("parallel", "stop", "--worker", "done")
    assert finished.code == 1 and finished.error["type"] == "not_running"
    assert envoy("parallel", "stop", "--worker", "nobody").error["type"] == "not_found"
    envoy("parallel", "spawn", "--branch", "s", "--task", "@sleep 120")
    envoy("parallel", "stop", "--worker", "s")
    again = envoy("parallel", "stop", "--worker", "s")
    assert again.code == 1 and again.error["type"] == "already_stopped"
    assert envoy("parallel", "stop").error["type"] == "invalid_input"
    assert envoy("parallel", "stop", "--all", "--worker", "s").error["type"] == "invalid_input"


def test_a_dependent_of_a_stopped_worker_never_starts(repo, envoy):
    envoy("parallel", "spawn", "--branch", "first", "--task", "@sleep 120")
    envoy("parallel", "spawn", "--after", "first", "--branch", "second", "--task", "@result x")
    envoy("parallel", "stop", "--worker", "first")
    view = wait_finished(envoy, "second")
    assert view["state"] == "failed" and view["reason"] == "dependency_failed"


def test_the_budget_stops_running_workers(repo, envoy, tmp_path):
    env = {"PARALLEL_BUDGET_USD": "0.001"}  # the fake agent reports $0.0011 a run
    envoy("parallel", "spawn", "--branch", "long", "--task", "@sleep 120", env=env)
    envoy("parallel", "spawn", "--branch", "costly", "--task", "@result ok", env=env)
    view = wait_until(lambda: (lambda v: v if v["state"] == "stopped" else None)(
        envoy("parallel", "status", "--worker", "long", env=env).data["workers"][0]), timeout=60)
    assert view["reason"] == "budget"
    summary = envoy("parallel", "status", env=env).data["summary"]
    assert summary["budget"]["exceeded"] is True
    refused = envoy("parallel", "spawn", "--branch", "more", "--task", "x", env=env)
    assert refused.error["type"] == "budget_exceeded"
    assert os.path.isdir(view["path"])
