"""envoy parallel land end to end: three workers of the real claude CLI (fake model
server), one of which conflicts; landed with --repair, where the conflicting worker
is resumed in its own session, told the conflicting file, and fixes it."""
from __future__ import annotations

from pathlib import Path

from fake_model import FakeModel, bash, text, tool, write

from conftest import git  # tests/conftest.py
from conftest import Envoy


def commit(name: str, content: str, message: str) -> list:
    return [write(name, content), bash(f"git add {name} && git commit -qm '{message}'")]


def test_three_workers_land_one_after_its_repair(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    api = fake_model.script("api", [*commit("api.py", "ROUTES = []\n", "api"), text("api done")])
    level = fake_model.script("level", [*commit("config.py", "LEVEL = 1\n", "level 1"), text("level done")])
    # Its first run conflicts with `level` in config.py; the rest of its script is the
    # repair run, in the same session: bring main in, resolve, commit.
    debug = fake_model.script("debug", [
        *commit("config.py", "DEBUG = True\n", "debug flag"), text("debug done"),
        bash("git merge main"),
        tool("Read", {"file_path": "config.py"}),
        write("config.py", "LEVEL = 1\nDEBUG = True\n"),
        bash("git add config.py && git commit -qm 'merge main, keep both settings'"),
        text("resolved the conflict in config.py"),
    ])
    for branch, marker in (("feat/api", api), ("feat/level", level), ("feat/debug", debug)):
        assert envoy("parallel", "spawn", "--branch", branch, "--task", f"{marker} go").code == 0
    assert envoy("parallel", "wait", timeout=180).code == 0
    for branch in ("feat/api", "feat/level", "feat/debug"):
        assert git(repo, "log", "--format=%s", f"main..{branch}").strip(), f"{branch} committed nothing"
    git(repo, "switch", "-qc", "mine")  # the user works elsewhere, with an uncommitted edit
    (repo / "README").write_text("my own edit\n")

    check = "python3 -m py_compile *.py"  # conflict markers would not compile
    landed = envoy("parallel", "land", "--order", "fifo", "--repair", "--check", check, timeout=300)
    assert landed.code == 0, landed.stdout + landed.stderr
    data = landed.data
    assert [(d["name"], d["repairs"]) for d in data["landed"]] == [("feat-api", 0), ("feat-level", 0),
                                                                   ("feat-debug", 1)]
    assert data["repairs"][0]["name"] == "feat-debug" and data["repair_cost_usd"] > 0

    # What the model was told in the repair run: the conflicting file and the new target tip.
    repair = [r for r in fake_model.requests_for("debug") if "envoy land could not land" in r.user_text]
    assert repair, [r.user_text for r in fake_model.requests_for("debug")]
    told = repair[0].user_text
    assert "config.py" in told and data["landed"][1]["sha"] in told
    assert len({r.session_id for r in fake_model.requests_for("debug")}) == 1  # its own session, resumed
    merged = [t for t in fake_model.tool_results("debug") if "CONFLICT" in t.content and "config.py" in t.content]
    assert merged, "the repair run's git merge did not run (denied?)"

    # What landed in git: all three, the resolution on top, the user's checkout untouched.
    assert git(repo, "show", "main:config.py") == "LEVEL = 1\nDEBUG = True\n"
    assert git(repo, "show", "main:api.py") == "ROUTES = []\n"
    assert git(repo, "rev-parse", "main").strip() == data["landed"][-1]["sha"]
    assert git(repo, "branch", "--show-current").strip() == "mine"
    assert (repo / "README").read_text() == "my own edit\n"
    cleaned = envoy("parallel", "cleanup")
    assert sorted(r["name"] for r in cleaned.data["removed"]) == ["feat-api", "feat-debug", "feat-level"]
