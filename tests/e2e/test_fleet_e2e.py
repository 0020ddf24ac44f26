"""A fleet with the real claude CLI: a batch of real sessions (dependencies and
declared footprints), and stop and resume of a real session."""
from __future__ import annotations

import json
import os
from pathlib import Path

from fake_model import FakeModel, bash, delay, text, write

from conftest import git  # tests/conftest.py (the e2e conftest does not define git)
from conftest import Envoy, wait_until


def commit_file(name: str, content: str, message: str) -> list:
    return [write(name, content), bash(f"git add {name} && git commit -qm '{message}'")]


def test_a_batch_of_real_sessions(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    one = fake_model.script("one", [*commit_file("lib/a.py", "a = 1\n", "one"), text("one done")])
    two = fake_model.script("two", [bash("test -f lib/a.py && echo a-present"),
                                    *commit_file("b.py", "b = 1\n", "two"), text("two done")])
    three = fake_model.script("three", [*commit_file("lib/c.py", "c = 1\n", "three"), text("three done")])
    lines = [{"branch": "feat/one", "task": f"{one} write a", "touches": ["lib/**"]},
             {"branch": "feat/two", "task": f"{two} write b", "after": "feat/one", "allowed_tools": ["Bash(test:*)"]},
             {"branch": "feat/three", "task": f"{three} write c", "touches": "lib/c.py"}]
    batch = envoy("parallel", "spawn", "--batch", "-", input="".join(json.dumps(e) + "\n" for e in lines),
                  env={"PARALLEL_MAX_WORKERS": "3"})
    assert batch.code == 0, batch.stdout
    states = {r["name"]: r["state"] for r in batch.data["workers"]}
    assert states["feat-two"] == "queued" and states["feat-three"] == "queued"  # after; touches overlap
    joined = envoy("parallel", "wait", timeout=180)
    assert joined.code == 0, joined.stdout
    assert {w["name"]: w["state"] for w in joined.data["workers"]} == {
        "feat-one": "succeeded", "feat-two": "succeeded", "feat-three": "succeeded"}
    (check,) = [r for r in fake_model.tool_results("two") if "a-present" in r.content]
    assert not check.is_error  # feat/two started from feat/one's work
    assert git(repo, "log", "--format=%s", "feat/two").split("\n")[:2] == ["two", "one"]
    first, third = fake_model.requests_for("one"), fake_model.requests_for("three")
    assert not any(a.overlaps(b) for a in first for b in third)  # overlapping footprints never ran at once


def test_stop_and_resume_a_real_session(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    script = fake_model.script("loop", [*commit_file("work.py", "w = 1\n", "first part"),
                                        delay(300.0, then=text("never said")),  # a run that goes on and on
                                        *commit_file("more.py", "m = 1\n", "second part"), text("finished after resume")])
    spawned = envoy("parallel", "spawn", "--branch", "feat/loop", "--task", f"{script} work")
    assert spawned.code == 0, spawned.stdout
    wait_until(lambda: git(repo, "log", "-1", "--format=%s", "feat/loop").strip() == "first part", timeout=120)
    fake_model.wait_for(lambda rs: sum(r.script == "loop" for r in rs) >= 3, timeout=60)  # held mid-turn
    record = json.loads((repo / ".git/envoy/workers/feat-loop.json").read_text())
    stopped = envoy("parallel", "stop", "--worker", "feat-loop", timeout=60)
    assert stopped.code == 0, stopped.stdout
    assert stopped.data["state"] == "stopped" and stopped.data["reason"] == "stopped"
    for pid in (record["agent_pid"], record["supervisor_pid"]):
        assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
    assert Path(spawned.data["path"], "work.py").exists()  # worktree and branch kept
    assert (repo / ".git/envoy/logs/feat-loop/1.jsonl").stat().st_size > 0  # and the transcript
    resumed = envoy("parallel", "resume", "--worker", "feat-loop", "--wait", "--task", "carry on", timeout=180)
    assert resumed.code == 0, resumed.stdout
    assert resumed.data["result"] == "finished after resume" and resumed.data["runs"] == 2
    assert {r.session_id for r in fake_model.requests_for("loop")} == {spawned.data["session_id"]}
    assert git(repo, "log", "--format=%s", "feat/loop").split("\n")[:2] == ["second part", "first part"]
