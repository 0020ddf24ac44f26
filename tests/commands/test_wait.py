"""wait: join unfinished workers, exit 1 on a failure, time out, and a heartbeat while waiting."""
from __future__ import annotations

import pytest


def test_wait_joins_all_unfinished_workers(repo, envoy):
    for name in ("a", "b"):
        envoy("parallel", "spawn", "--branch", name, "--task", "@sleep 1\n@result ok")
    result = envoy("parallel", "wait")
    assert result.code == 0
    assert sorted(w["name"] for w in result.data["workers"]) == ["a", "b"]
    assert all(w["state"] == "succeeded" for w in result.data["workers"])
    assert "a: succeeded" in result.stderr


def test_wait_exits_1_when_one_fails(repo, envoy):
    envoy("parallel", "spawn", "--branch", "good", "--task", "@result ok")
    envoy("parallel", "spawn", "--branch", "bad", "--task", "@crash 4")
    result = envoy("parallel", "wait", "--worker", "good", "--worker", "bad")
    assert result.code == 1 and result.error["type"] == "worker_failed" and "bad" in result.error["message"]
    assert {w["name"]: w["state"] for w in result.json["data"]["workers"]} == {"good": "succeeded", "bad": "failed"}


def test_wait_timeout(repo, envoy):
    envoy("parallel", "spawn", "--branch", "slow", "--task", "@sleep 60")
    result = envoy("parallel", "wait", "--timeout", "0.5")
    assert result.code == 1 and result.error["type"] == "timeout" and result.error["unfinished"] == ["slow"]
    assert result.json["data"]["workers"][0]["state"] == "running"


def test_wait_with_nothing_to_wait_for(repo, envoy):
    result = envoy("parallel", "wait")
    assert result.code == 0 and result.data["workers"] == []


def test_wait_heartbeat(repo, envoy, monkeypatch, capsys):
    """While waiting, a progress line at least every HEARTBEAT seconds (30 s in CI logs)."""
    from envoy.worker import join
    from envoy.errors import EnvoyError
    from envoy.worker.workspace import open_workspace

    envoy("parallel", "spawn", "--branch", "beat", "--task", "@sleep 1.5")
    monkeypatch.setattr(join, "HEARTBEAT", 0.3)
    monkeypatch.setattr(join, "REREAD", 0.05)  # the heartbeat is checked on each full look
    ws = open_workspace(repo)
    (final,) = join.wait_for(ws, ["beat"], timeout=30)
    assert final["state"] == "succeeded"
    err = capsys.readouterr().err
    assert err.count("waiting for beat (running") >= 2
    assert "beat: succeeded" in err
    with pytest.raises(EnvoyError) as exc:
        envoy("parallel", "spawn", "--branch", "beat2", "--task", "@sleep 5")
        join.wait_for(ws, ["beat2"], timeout=0.5)
    assert exc.value.kind == "timeout"


def test_waiting_on_a_lost_worker_is_no_success(repo, envoy):
    """A worker whose supervisor died without recording an end is `lost`: wait says it
    did not succeed (exit 1, worker_failed), as it does for `failed`."""
    import json
    import os
    import signal
    from pathlib import Path

    from conftest import wait_until

    envoy("parallel", "spawn", "--branch", "doomed", "--task", "@sleep 60")
    record_file = repo / ".git" / "envoy" / "workers" / "doomed.json"
    record = wait_until(lambda: (lambda r: r if r.get("agent_pid") and r["state"] == "running" else None)(
        json.loads(record_file.read_text())))
    watcher = Path(f"/proc/{record['supervisor_pid']}/cmdline")
    wait_until(lambda: b"_watch" in watcher.read_bytes())  # the supervisor became the watcher beside the agent
    os.kill(record["supervisor_pid"], signal.SIGKILL)  # killed -9: no end is recorded
    result = envoy("parallel", "wait", "--worker", "doomed", "--timeout", "30")
    assert result.code == 1 and result.error["type"] == "worker_failed" and "doomed" in result.error["message"]
    assert [(w["name"], w["state"]) for w in result.json["data"]["workers"]] == [("doomed", "lost")]


def test_wait_over_a_fleet_answers_in_4_kb(repo, envoy, tmp_path):
    import json

    names = []
    for i in range(40):
        names += ["--worker", f"f{i}"]
    lines = "".join(json.dumps({"branch": f"f{i}", "task": "@fail error_max_turns" if i % 10 == 0 else
                                "@result " + "done and said so at length " * 6}) + "\n" for i in range(40))
    assert envoy("parallel", "spawn", "--batch", "-", input=lines, env={"PARALLEL_MAX_WORKERS": "8"}).code == 0
    result = envoy("parallel", "wait", *names, timeout=300)
    assert result.code == 1 and len(result.stdout.encode()) <= 4096, len(result.stdout.encode())
    data = result.json["data"]
    assert data["summary"]["failed"] == 4 and data["summary"]["succeeded"] == 36
    assert [w["state"] for w in data["workers"][:4]] == ["failed"] * 4
    assert data["folded"]["rows"] + len(data["workers"]) == 40
    assert "4 of 40" in result.error["message"]
