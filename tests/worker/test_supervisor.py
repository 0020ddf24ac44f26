"""A worker's setup step, its environment (index, port), and budgets."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import wait_finished


def test_setup_runs_in_the_worktree_before_the_agent(repo, envoy, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    result = envoy("parallel", "spawn", "--branch", "s", "--wait", "--setup", "echo installing; pwd > setup-ran.txt",
                   "--task", "@run cat setup-ran.txt", env={"FAKE_CLAUDE_RECORD": str(runs)})
    assert result.code == 0, result.stdout
    path = Path(result.data["path"])
    assert (path / "setup-ran.txt").read_text().strip() == str(path)
    log = (repo / ".git" / "envoy" / "logs" / "s" / "1.err").read_text()
    assert "== setup: echo installing" in log and "installing" in log


def test_setup_from_settings_and_its_failure(repo, envoy, tmp_path):
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text(json.dumps({"env": {"PARALLEL_SETUP": "echo broken >&2; exit 3"}}))
    runs = tmp_path / "runs"
    runs.mkdir()
    result = envoy("parallel", "spawn", "--branch", "s", "--wait", "--task", "@result never",
                   env={"FAKE_CLAUDE_RECORD": str(runs)})
    assert result.code == 1
    data = result.json["data"]
    assert data["state"] == "failed" and data["reason"] == "setup_failed"
    assert "exited 3" in data["error"] and "broken" in data["error"]
    assert list(runs.iterdir()) == []  # the agent never started


def test_setup_is_bounded_by_the_timeout(repo, envoy):
    result = envoy("parallel", "spawn", "--branch", "s", "--wait", "--timeout", "1", "--setup", "sleep 60",
                   "--task", "@result never")
    assert result.json["data"]["reason"] == "timeout"


def test_each_running_worker_gets_its_own_index_and_port(repo, envoy, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"FAKE_CLAUDE_RECORD": str(runs), "PARALLEL_MAX_WORKERS": "3"}
    for name in ("a", "b", "c"):
        envoy("parallel", "spawn", "--branch", name, "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    from conftest import wait_until
    wait_until(lambda: len(list(runs.iterdir())) == 3)
    seen = [json.loads(p.read_text())["env"] for p in runs.iterdir()]
    assert sorted(e["ENVOY_WORKER_INDEX"] for e in seen) == ["0", "1", "2"]
    ports = {int(e["ENVOY_PORT"]) for e in seen}
    assert len(ports) == 3 and all(1024 < p < 65536 for p in ports)
    (tmp_path / "go").touch()


def test_budget_and_turn_limits_are_reported(repo, envoy):
    result = envoy("parallel", "spawn", "--branch", "b", "--wait", "--budget", "0.01", "--task", "@fail error_max_budget_usd")
    assert result.json["data"]["reason"] == "budget"


def test_parallel_budget_refuses_spawn_past_the_total(repo, envoy):
    for name in ("a", "b"):
        envoy("parallel", "spawn", "--branch", name, "--task", "@run true\n@run true\n@result ok")
        wait_finished(envoy, name)
    status = envoy("parallel", "status").data
    assert abs(status["summary"]["total_cost_usd"] - 2 * 3 * 0.0011) < 1e-9
    assert abs(envoy("parallel", "results").data["total_cost_usd"] - 2 * 3 * 0.0011) < 1e-9
    refused = envoy("parallel", "spawn", "--branch", "c", "--task", "x", env={"PARALLEL_BUDGET_USD": "0.005"})
    assert refused.code == 1 and refused.error["type"] == "budget_exceeded" and "0.0066" in refused.error["message"]
    allowed = envoy("parallel", "spawn", "--branch", "c", "--task", "@result ok", env={"PARALLEL_BUDGET_USD": "1"})
    assert allowed.code == 0
