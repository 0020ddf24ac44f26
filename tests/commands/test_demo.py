"""envoy demo: the main job end to end, no account, no claude, no git identity."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from conftest import build, git, run_envoy


def no_identity(tmp_path: Path) -> dict[str, str]:
    """A fresh machine: no git identity anywhere, no claude on PATH."""
    empty = tmp_path / "empty.gitconfig"
    empty.write_text("")
    return {"GIT_CONFIG_GLOBAL": str(empty), "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
            "EMAIL": "", "ENVOY_CLAUDE": ""}


def test_demo_runs_the_main_job_from_the_built_pyz_on_a_fresh_machine(tmp_path):
    pyz = build(tmp_path, "0")
    where = tmp_path / "demo"
    result = run_envoy("demo", "--dir", str(where), "--keep", cwd=tmp_path, command=[sys.executable, str(pyz)],
                       env=no_identity(tmp_path), timeout=300)
    assert result.code == 0, result.stdout + result.stderr
    data = result.data
    assert data["agent"] == "stand-in" and data["kept"] is True
    assert sorted(data["landed"]) == ["docs-usage", "feat-farewell", "fix-greeting-hi"] or \
        sorted(data["landed"]) == ["docs-usage", "feat-farewell", "fix-greeting-hey"]
    assert sorted(n["reason"] for n in data["not_landed"]) == ["check_failed", "conflict"]
    commands = [s["command"] for s in data["steps"]]
    refused = [s for s in data["steps"] if s.get("error") == "limit_exceeded"]
    assert len(refused) == 1 and refused[0]["exit_code"] == 1
    assert sum("--queue" in c for c in commands) == 3
    assert any(c.startswith("envoy parallel land --check") for c in commands)
    # What landed is in main's history, made by the stand-in as real commits.
    repo = Path(data["repository"])
    assert (repo / ".git").is_dir()
    subjects = git(repo, "log", "--format=%s", "main")
    assert "Add farewell()" in subjects and "Document greet()" in subjects and "Add shout()" not in subjects
    assert git(repo, "config", "user.name").strip() == "envoy demo"  # for this repository only
    # The stand-in is a real executable, run where claude would be, and said to be one.
    standin = where / "bin" / "claude-stand-in"
    assert os.access(standin, os.X_OK) and "stand-in" in standin.read_text()
    # Kept work that did not land stays for the user; what landed was cleaned up.
    assert sorted(data["kept_workers"]) == sorted(n["name"] for n in data["not_landed"])
    assert sorted(data["removed"]) == sorted(data["landed"])


def test_demo_narrates_on_a_terminal_and_removes_everything_without_keep(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = run_envoy("demo", "--text", cwd=tmp_path, env={**no_identity(tmp_path), "TMPDIR": str(scratch)},
                       timeout=300)
    assert result.code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "SCRIPTED STAND-IN" in out and "not Claude" in out
    assert "$ envoy parallel spawn --branch fix/greeting-hey" in out and "--queue" in out
    assert "refused: 2 of 2 workers are running" in out
    assert "$ envoy parallel land --check 'python3 -m unittest -q'" in out
    assert "did not land (conflict in app.py, test_app.py)" in out
    assert "\033[" not in out  # not a terminal: no colour
    assert list(scratch.iterdir()) == []


def test_demo_refuses_a_directory_with_something_in_it(tmp_path):
    where = tmp_path / "busy"
    where.mkdir()
    (where / "mine.txt").write_text("keep me\n")
    result = run_envoy("demo", "--dir", str(where), cwd=tmp_path)
    assert result.code == 1 and result.error["type"] == "invalid_input"
    assert [p.name for p in where.iterdir()] == ["mine.txt"]


def test_demo_with_the_real_agent_needs_claude(tmp_path):
    where = tmp_path / "d"
    result = run_envoy("demo", "--agent", "claude", "--dir", str(where), cwd=tmp_path,
                       env={"ENVOY_CLAUDE": "/nonexistent/claude"})
    assert result.code == 1 and result.error["type"] == "agent_missing"
    assert not where.exists()


def test_demo_with_agent_claude_gives_the_same_tasks_to_the_cli_and_no_gate(tmp_path):
    """--agent claude runs the CLI ENVOY_CLAUDE names (here the test's stand-in for the real
    one, which does nothing but answer): the same five tasks, in words, and no stand-in."""
    runs = tmp_path / "runs"
    runs.mkdir()
    result = run_envoy("demo", "--agent", "claude", "--dir", str(tmp_path / "d"), cwd=tmp_path,
                       env={"FAKE_CLAUDE_RECORD": str(runs)}, timeout=300)
    assert result.code == 0, result.stdout + result.stderr
    assert result.data["agent"] == "claude"
    told = sorted(json.loads(p.read_text())["task"] for p in runs.glob("*.json"))
    assert len(told) == 5 and all("Commit your work." in t for t in told)
    assert not any("ENVOY_DEMO_GATE" in json.loads(p.read_text())["env"] for p in runs.glob("*.json"))
    assert not (tmp_path / "d").exists()  # made by the demo, removed by it (no --keep)
