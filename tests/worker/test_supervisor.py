"""worker/supervisor.py: a worker's setup step and the environment (index, port) its agent is given."""
from __future__ import annotations

import json
from pathlib import Path


def test_setup_runs_in_the_worktree_before_the_agent(repo, envoy, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    result = envoy("parallel", "spawn", "--branch", "s", "--wait", "--setup", "echo installing; pwd > setup-ran.txt",
                   "--task", "@run cat setup-ran.txt", env={"FAKE_CLAUDE_RECORD": str(runs)})
    # What setup wrote is an untracked file the worker left: it succeeded, needing attention.
    assert result.code == 3 and result.data["attention"] == ["uncommitted: setup-ran.txt"], result.stdout
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
