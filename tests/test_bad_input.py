"""Bad input gets a clear error, a suggestion, and changes nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import git, run_envoy


def snapshot(repo: Path) -> tuple[str, list[str], list[str]]:
    branches = git(repo, "branch", "--list", "--format=%(refname)")
    worktrees = git(repo, "worktree", "list", "--porcelain")
    records = sorted(p.name for p in (repo / ".git" / "envoy" / "workers").glob("*"))
    siblings = sorted(p.name for p in repo.parent.iterdir())
    return branches + worktrees, records, siblings


BAD_SPAWNS = [
    (["--branch", "bad..name", "--task", "x"], "invalid_input"),
    (["--branch=-rf", "--task", "x"], "invalid_input"),
    (["--branch=--upload-pack=evil", "--task", "x"], "invalid_input"),
    (["--branch", "has space", "--task", "x"], "invalid_input"),
    (["--branch", "ends.lock", "--task", "x"], "invalid_input"),
    (["--branch", "trailing/", "--task", "x"], "invalid_input"),
    (["--branch", "a~1", "--task", "x"], "invalid_input"),
    (["--branch", "", "--task", "x"], "invalid_input"),
    (["--branch", "ok", "--task", ""], "invalid_input"),
    (["--branch", "ok", "--task", "   \n\t "], "invalid_input"),
    (["--branch", "ok"], "invalid_input"),
    (["--branch", "ok", "--task", "x", "--task-file", "t.txt"], "invalid_input"),
    (["--branch", "ok", "--task-file", "/no/such/file"], "invalid_input"),
    (["--branch", "ok", "--task", "x", "--from", "no-such-ref"], "not_found"),
    (["--branch", "ok", "--task", "x", "--from=--all"], "invalid_input"),
    (["--branch", "main", "--task", "x"], "already_exists"),
    (["--branch", "ok", "--task", "x", "--max-turns", "0"], "invalid_input"),
    (["--branch", "ok", "--task", "x", "--timeout", "-5"], "invalid_input"),
    (["--branch", "ok", "--task", "x", "--budget", "0"], "invalid_input"),
]


@pytest.mark.parametrize("args,kind", BAD_SPAWNS, ids=[" ".join(a) for a, _ in BAD_SPAWNS])
def test_bad_spawn_is_refused_and_creates_nothing(repo, envoy, args, kind):
    before = snapshot(repo)
    result = envoy("parallel", "spawn", *args)
    assert result.code == 1, result.stdout
    assert result.error["type"] == kind
    assert result.error["message"] and result.error["suggestion"]
    assert snapshot(repo) == before


@pytest.mark.parametrize("args", [["parallel", "spawn", "--task", "x"], ["parallel", "nope"],
                                  ["parallel", "status", "--bogus"], ["parallel", "results", "--tail", "many"]])
def test_usage_errors_exit_2_with_json(envoy, args):
    result = envoy(*args)
    assert result.code == 2
    assert result.error["type"] == "invalid_usage"
    assert "--help" in result.error["suggestion"]


def test_usage_errors_on_a_terminal_are_text(envoy):
    result = envoy("parallel", "status", "--bogus", "--text")
    assert result.code == 2
    assert result.stdout == "" and "envoy: error:" in result.stderr


def test_worker_path_traversal_is_not_found(repo, envoy):
    for key in ("../../x", "..", "/etc/passwd", "a/../../b"):
        for verb in ("status", "results", "cleanup"):
            result = envoy("parallel", verb, "--worker", key)
            assert result.code == 1 and result.error["type"] == "not_found", (verb, key)


def test_existing_worktree_path_is_refused(repo, envoy, tmp_path):
    (tmp_path / "claude-worker-w").mkdir()
    result = envoy("parallel", "spawn", "--branch", "w", "--task", "x")
    assert result.error["type"] == "already_exists"
    assert "claude-worker-w" in result.error["message"]


def test_same_worker_name_twice_is_refused(repo, envoy):
    assert envoy("parallel", "spawn", "--branch", "fix/a", "--task", "@result ok").code == 0
    again = envoy("parallel", "spawn", "--branch", "fix-a", "--task", "x")
    assert again.error["type"] == "already_exists"
    assert "cleanup" in again.error["suggestion"]


def test_not_a_repository(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for verb in (["spawn", "--branch", "x", "--task", "y"], ["status"], ["results"], ["cleanup"]):
        result = run_envoy("parallel", *verb, cwd=plain)
        assert result.code == 1 and result.error["type"] == "not_a_repo"


def test_repository_without_commits(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    result = run_envoy("parallel", "spawn", "--branch", "x", "--task", "y", cwd=empty)
    assert result.code == 1 and result.error["type"] == "no_commits"
    assert "commit" in result.error["suggestion"]
    assert run_envoy("parallel", "status", cwd=empty).data["workers"] == []


@pytest.mark.parametrize("value,where", [("abc", "env"), ("0", "env"), ("-1", "settings"), ("2.5", "local")])
def test_bad_setting_names_the_setting_and_its_source(repo, envoy, value, where):
    env = {}
    if where == "env":
        env["PARALLEL_MAX_WORKERS"] = value
        source = "the environment"
    else:
        (repo / ".claude").mkdir()
        name = "settings.json" if where == "settings" else "settings.local.json"
        (repo / ".claude" / name).write_text(json.dumps({"env": {"PARALLEL_MAX_WORKERS": value}}))
        source = f".claude/{name}"
    result = envoy("parallel", "spawn", "--branch", "w", "--task", "x", env=env)
    assert result.code == 1 and result.error["type"] == "invalid_config"
    assert "PARALLEL_MAX_WORKERS" in result.error["message"] and source in result.error["message"]
    assert not git(repo, "branch", "--list", "w").strip()


def test_broken_settings_json_is_reported(repo, envoy):
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text("{not json")
    result = envoy("parallel", "status")
    assert result.code == 1 and result.error["type"] == "invalid_config"
    assert "settings.json" in result.error["message"]


def test_settings_precedence_env_then_local_then_shared(repo, envoy):
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text(json.dumps({"env": {"PARALLEL_MAX_WORKERS": "5"}}))
    assert envoy("parallel", "status").data["summary"]["max_workers"] == 5
    (repo / ".claude" / "settings.local.json").write_text(json.dumps({"env": {"PARALLEL_MAX_WORKERS": 4}}))
    assert envoy("parallel", "status").data["summary"]["max_workers"] == 4
    assert envoy("parallel", "status", env={"PARALLEL_MAX_WORKERS": "2"}).data["summary"]["max_workers"] == 2


def test_unexpected_errors_are_one_line_and_logged(repo, envoy):
    # A record that is valid JSON but not a record: envoy must not print a traceback.
    workers = repo / ".git" / "envoy" / "workers"
    workers.mkdir(parents=True)
    (workers / "odd.json").write_text(json.dumps({"name": "odd"}))
    result = envoy("parallel", "status")
    assert result.code == 1
    assert result.error["type"] == "internal_error"
    assert "envoy.log" in result.error["suggestion"]
    assert "Traceback" in (repo / ".git" / "envoy" / "envoy.log").read_text()
