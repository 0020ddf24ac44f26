"""The cap under races, and exact state when processes die."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path


from conftest import ENVOY_SOURCE, git, max_overlap, spawn_many, wait_finished, wait_until


def test_forty_simultaneous_spawns_with_cap_three(repo, envoy, tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    results = spawn_many(repo, 40, f"@stamp {stamps}\n@wait-for {tmp_path / 'release'}", env={"PARALLEL_MAX_WORKERS": "3"})
    started = [r for r in results if r.code == 0]
    refused = [r for r in results if r.code != 0]
    assert len(started) == 3, [r.stdout for r in results]
    assert len(refused) == 37
    for r in refused:
        error = r.error
        assert error["type"] == "limit_exceeded", error
        assert len(error["running"]) == 3 and error["max_workers"] == 3
        assert "status" in error["suggestion"] and "stop --worker" in error["suggestion"]
    running = {r.data["name"] for r in started}
    assert set(refused[0].error["running"]) == running
    # Nothing was created for the refused ones.
    branches = git(repo, "branch", "--list", "race/*", "--format=%(refname:short)").split()
    assert sorted(branches) == sorted(r.data["branch"] for r in started)
    (tmp_path / "release").touch()  # the agents held their slots through the whole race
    for name in running:
        wait_finished(envoy, name)
    assert len(list(stamps.glob("*.start"))) == 3
    assert max_overlap(stamps) <= 3


def test_finished_workers_do_not_count_against_the_cap(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    assert envoy("parallel", "spawn", "--branch", "one", "--task", "@result ok", env=env).code == 0
    wait_finished(envoy, "one")
    assert envoy("parallel", "spawn", "--branch", "two", "--task", "@sleep 5", env=env).code == 0
    refused = envoy("parallel", "spawn", "--branch", "three", "--task", "@result ok", env=env)
    assert refused.error["type"] == "limit_exceeded"
    assert refused.error["running"] == ["two"]


def agent_pid(repo: Path, name: str) -> int:
    def pid():
        record = json.loads((repo / ".git" / "envoy" / "workers" / f"{name}.json").read_text())
        return record.get("agent_pid")
    return wait_until(pid)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_kill_9_of_the_agent_fails_the_worker_and_frees_the_slot(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    record = envoy("parallel", "spawn", "--branch", "victim", "--task", "@write a.txt a\n@sleep 60", env=env).data
    wait_until(lambda: (Path(record["path"]) / "a.txt").exists())
    os.kill(agent_pid(repo, "victim"), signal.SIGKILL)
    final = wait_finished(envoy, "victim")
    assert final["state"] == "failed" and final["reason"] == "killed"
    assert "signal 9" in final["error"]
    assert (Path(record["path"]) / "a.txt").exists()  # worktree intact
    assert envoy("parallel", "spawn", "--branch", "next", "--task", "@result ok", env=env).code == 0


def test_kill_9_of_the_supervisor_is_lost_and_takes_the_agent_down(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    record = envoy("parallel", "spawn", "--branch", "victim", "--task", "@write a.txt a\n@sleep 60", env=env).data
    agent = agent_pid(repo, "victim")
    wait_until(lambda: (Path(record["path"]) / "a.txt").exists())
    supervisor = json.loads((repo / ".git" / "envoy" / "workers" / "victim.json").read_text())["supervisor_pid"]
    os.kill(supervisor, signal.SIGKILL)
    final = wait_finished(envoy, "victim")
    assert final["state"] == "lost" and "supervisor" in final["error"]
    wait_until(lambda: not alive(agent), timeout=10)
    assert Path(record["path"]).is_dir() and (Path(record["path"]) / "a.txt").exists()
    assert envoy("parallel", "spawn", "--branch", "next", "--task", "@result ok", env=env).code == 0
    # lost is terminal: a later status does not flip it back.
    assert envoy("parallel", "status", "--worker", "victim").data["workers"][0]["state"] == "lost"


def test_status_is_running_while_the_agent_runs(repo, envoy):
    envoy("parallel", "spawn", "--branch", "slow", "--task", "@sleep 60")
    view = envoy("parallel", "status").data
    assert view["workers"][0]["state"] == "running"
    assert view["summary"]["running"] == 1


def test_worker_survives_its_caller_being_killed(repo, envoy, tmp_path):
    """Claude Code ends a Bash tool call by killing its process group; the worker lives on."""
    caller = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; subprocess.run(sys.argv[1:]); time.sleep(60)",
         sys.executable, str(ENVOY_SOURCE), "parallel", "spawn", "--branch", "detached",
         "--task", "@sleep 2\n@write survived.txt yes\n@commit survived"],
        cwd=repo, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: (repo / ".git" / "envoy" / "workers" / "detached.json").exists())
    wait_until(lambda: json.loads((repo / ".git" / "envoy" / "workers" / "detached.json").read_text())["state"] == "running")
    os.killpg(caller.pid, signal.SIGHUP)
    os.killpg(caller.pid, signal.SIGKILL)
    caller.wait()
    final = wait_finished(envoy, "detached")
    assert final["state"] == "succeeded"
    assert git(repo, "log", "-1", "--format=%s", "detached").strip() == "survived"
