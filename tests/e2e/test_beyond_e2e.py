"""Queue, dependencies, wait, resume, review and merge, conflicts, setup and
budgets: the main path of each with the real claude CLI."""
from __future__ import annotations

import threading
from pathlib import Path

from fake_model import FakeModel, bash, delay, text, write

from conftest import git  # tests/conftest.py (the e2e conftest does not define git)
from conftest import Envoy


def commit_file(name: str, content: str, message: str) -> list:
    return [write(name, content), bash(f"git add {name} && git commit -qm '{message}'")]


def test_queue_after_and_wait(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    env = {"PARALLEL_MAX_WORKERS": "1"}
    release = threading.Event()
    db = fake_model.script("db", [delay(30.0, until=release), *commit_file("models.py", "class User: ...\n", "db models"),
                                  text("models done")])
    api = fake_model.script("api", [bash("test -f models.py && echo models-present"),
                                    *commit_file("api.py", "from models import User\n", "api"), text("api done")])
    docs = fake_model.script("docs", [*commit_file("DOCS.md", "docs\n", "docs"), text("docs done")])
    assert envoy("parallel", "spawn", "--branch", "feat/db", "--task", f"{db} models", env=env).code == 0
    queued = envoy("parallel", "spawn", "--queue", "--branch", "feat/docs", "--task", f"{docs} docs", env=env).data
    after = envoy("parallel", "spawn", "--after", "feat-db", "--branch", "feat/api", "--task", f"{api} api", env=env).data
    assert queued["state"] == "queued" and after["state"] == "queued"
    positions = {w["name"]: w.get("queue_position") for w in envoy("parallel", "status", env=env).data["workers"]}
    assert positions == {"feat-db": None, "feat-docs": 1, "feat-api": 2}
    release.set()
    joined = envoy("parallel", "wait", env=env, timeout=120)
    assert joined.code == 0, joined.stdout
    assert {w["name"]: w["state"] for w in joined.data["workers"]} == {
        "feat-db": "succeeded", "feat-docs": "succeeded", "feat-api": "succeeded"}
    (check,) = [r for r in fake_model.tool_results("api") if "models-present" in r.content]
    assert not check.is_error  # feat/api started from feat/db's work
    assert git(repo, "log", "--format=%s", "feat/api").split("\n")[:2] == ["api", "db models"]


def test_resume_review_merge_and_cleanup(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    script = fake_model.script("fix", [*commit_file("fix.py", "x = 1\n", "first pass"), text("first pass done"),
                                       *commit_file("fix.py", "x = 2\n", "follow-up"), text("follow-up done")])
    first = envoy("parallel", "spawn", "--branch", "fix/x", "--wait", "--task", f"{script} fix it")
    assert first.code == 0 and first.data["result"] == "first pass done"
    resumed = envoy("parallel", "resume", "--worker", "fix-x", "--wait", "--task", "now the follow-up")
    assert resumed.code == 0, resumed.stdout
    assert resumed.data["result"] == "follow-up done" and resumed.data["runs"] == 2
    assert resumed.data["session_id"] == first.data["session_id"]
    sessions = {r.session_id for r in fake_model.requests_for("fix")}
    assert sessions == {first.data["session_id"]}  # the same Claude Code session, continued
    assert resumed.data["cost_usd"] > first.data["cost_usd"]

    diff = envoy("parallel", "diff", "--worker", "fix-x").data
    assert [c["subject"] for c in diff["commits"]] == ["follow-up", "first pass"]
    assert "+x = 2" in diff["diff"]
    git(repo, "switch", "-qc", "elsewhere")
    (repo / "README").write_text("dirty\n")
    merged = envoy("parallel", "merge", "--worker", "fix-x", "--squash")
    assert merged.code == 0 and merged.data["merged"] is True
    assert git(repo, "show", "main:fix.py") == "x = 2\n"
    assert (repo / "README").read_text() == "dirty\n"
    assert envoy("parallel", "cleanup", "--worker", "fix-x").code == 0


def test_conflicts_are_predicted(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    one = fake_model.script("one", [*commit_file("shared.py", "a = 1\n", "one"), text("ok")])
    two = fake_model.script("two", [*commit_file("shared.py", "a = 2\n", "two"), text("ok")])
    three = fake_model.script("three", [*commit_file("other.py", "b = 1\n", "three"), text("ok")])
    for name, marker in (("one", one), ("two", two), ("three", three)):
        assert envoy("parallel", "spawn", "--branch", name, "--task", f"{marker} go").code == 0
    assert envoy("parallel", "wait").code == 0
    data = envoy("parallel", "conflicts").data
    pairs = {frozenset((p["a"], p["b"])): p["files"] for p in data["conflicts"]}
    assert pairs == {frozenset(("one", "two")): ["shared.py"]}
    assert (data["pairs"], data["pairs_merged"], data["pairs_pruned"]) == (3, 1, 2)
    assert data["conflicting_with_base"] == []


def test_setup_port_and_budget(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    marker = fake_model.script("env", [bash("cat setup.txt"), bash("printenv ENVOY_WORKER_INDEX ENVOY_PORT"),
                                       text("checked")])
    result = envoy("parallel", "spawn", "--branch", "env", "--wait", "--setup", "echo ready > setup.txt",
                   "--allowed-tools", "Bash(cat:*)", "--allowed-tools", "Bash(printenv:*)", "--task", f"{marker} go")
    # What setup wrote is left untracked in the worktree: a success that needs a look.
    assert result.code == 3 and result.data["attention"] == ["uncommitted: setup.txt"], result.stdout
    setup, environment = fake_model.tool_results("env")
    assert not setup.is_error and "ready" in setup.content
    index, port = environment.content.split()
    assert index == "0" and 1024 < int(port) < 65536
    spent = envoy("parallel", "status").data["summary"]["total_cost_usd"]
    assert spent > 0
    refused = envoy("parallel", "spawn", "--branch", "more", "--task", "x",
                    env={"PARALLEL_BUDGET_USD": str(spent / 2)})
    assert refused.code == 1 and refused.error["type"] == "budget_exceeded"
