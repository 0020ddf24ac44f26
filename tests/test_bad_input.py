"""Bad input gets a clear error, a suggestion, and changes nothing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git, run_envoy, wait_finished, wait_until


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
    # A bug (here: status's summary made to divide by zero) must not print a traceback.
    source = Path(__file__).resolve().parent.parent / "envoy.pyz.d"
    crash = (f"import sys; sys.path[:0] = [{str(source)!r}, {str(source / 'vendor')!r}]\n"
             "import envoy.status\nenvoy.status.summary = lambda *a: 1 / 0\n"
             "from envoy.entry import main\nraise SystemExit(main())")
    result = envoy("parallel", "status", command=[sys.executable, "-c", crash])
    assert result.code == 1
    assert result.error["type"] == "internal_error"
    assert "envoy.log" in result.error["suggestion"]
    assert "Traceback" in (repo / ".git" / "envoy" / "envoy.log").read_text()


# -- records on disk are untrusted (issue 11, item 7) ---------------------------

def records_dir(repo: Path) -> Path:
    workers = repo / ".git" / "envoy" / "workers"
    workers.mkdir(parents=True, exist_ok=True)
    return workers


def edit_record(repo: Path, stem: str, /, **changes: object) -> Path:
    file = records_dir(repo) / f"{stem}.json"
    record = json.loads(file.read_text())
    record.update(changes)
    file.write_text(json.dumps(record))
    return file


NOT_RECORDS = ["[1, 2, 3]", "{}", "{not json", '"text"', '{"name": "odd"}', "",
               '{"name": "odd", "branch": "odd", "state": "dreaming", "path": "/x/odd"}']


@pytest.mark.parametrize("content", NOT_RECORDS)
def test_a_broken_record_is_shown_and_every_verb_still_answers(repo, envoy, content):
    assert envoy("parallel", "spawn", "--branch", "good", "--wait", "--task", "@result ok").code == 0
    file = records_dir(repo) / "odd.json"
    file.write_text(content)
    status = envoy("parallel", "status")
    assert status.code == 0, status.stdout
    assert [w["name"] for w in status.data["workers"]] == ["good"]
    [broken] = status.data["broken"]
    assert broken["file"] == str(file) and broken["problem"]
    text = envoy("parallel", "status", "--text").stdout
    assert str(file) in text and "cleanup --worker odd" in text
    assert envoy("parallel", "results").code == 0
    assert envoy("parallel", "wait").code == 0
    assert envoy("parallel", "spawn", "--branch", "other", "--wait", "--task", "@result ok").code == 0
    named = envoy("parallel", "results", "--worker", "odd")
    assert named.code == 1 and named.error["type"] == "broken_record"
    cleaned = envoy("parallel", "cleanup", "--all", "--force")
    assert cleaned.code == 0, cleaned.stdout
    assert not file.exists()
    assert "broken" not in envoy("parallel", "status").data


def test_a_corrupted_record_of_a_real_worker_is_cleaned_up_with_its_worktree(repo, envoy, tmp_path):
    envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@write x.txt x\n@commit x")
    tip = git(repo, "rev-parse", "w").strip()
    (records_dir(repo) / "w.json").write_text("{not json")
    status = envoy("parallel", "status").data
    assert status["workers"] == [] and [b["file"] for b in status["broken"]] == [str(records_dir(repo) / "w.json")]
    waited = envoy("parallel", "wait", "--worker", "w")
    assert waited.code == 1 and waited.error["type"] == "broken_record"
    # Its branch holds a commit found nowhere else: kept unless --force, and then in a trash ref.
    refused = envoy("parallel", "cleanup", "--worker", "w")
    assert refused.code == 1 and refused.error["type"] == "unmerged"
    assert (tmp_path / "claude-worker-w").is_dir()
    forced = envoy("parallel", "cleanup", "--worker", "w", "--force").data
    [removed] = forced["removed"]
    assert git(repo, "rev-parse", removed["trash_ref"]).strip() == tip
    assert not git(repo, "branch", "--list", "w").strip()
    assert not (tmp_path / "claude-worker-w").exists()
    assert not (records_dir(repo) / "w.json").exists()
    assert envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok").code == 0


def test_an_unparseable_record_is_cleaned_by_plain_cleanup(repo, envoy, tmp_path):
    envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok")
    (records_dir(repo) / "w.json").write_text("[1, 2, 3]")
    cleaned = envoy("parallel", "cleanup")
    assert cleaned.code == 0 and [r["name"] for r in cleaned.data["removed"]] == ["w"]
    assert not git(repo, "branch", "--list", "w").strip()
    assert not (tmp_path / "claude-worker-w").exists()


def victims(repo: Path, tmp_path: Path) -> list[Path]:
    """Directories a hostile record might aim cleanup at, each holding a file."""
    found = []
    for place in (repo / "victim", tmp_path / "victim", repo / ".git" / "victim"):
        place.mkdir()
        (place / "precious.txt").write_text("keep me\n")
        found.append(place)
    return found


@pytest.mark.parametrize("changes", [
    {"name": "../../../victim"}, {"name": "../../victim"}, {"name": ".."},
    {"path": "VICTIM"}, {"path": "VICTIM/../claude-worker-w"}, {"path": "REPO"},
], ids=["name ../../../victim", "name ../../victim", "name ..", "path victim", "path via ..", "path repo"])
def test_a_record_aimed_elsewhere_deletes_nothing_outside(repo, envoy, tmp_path, changes):
    envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok")
    targets = victims(repo, tmp_path)
    changes = {k: v.replace("VICTIM", str(tmp_path / "victim")).replace("REPO", str(repo)) if isinstance(v, str) else v
               for k, v in changes.items()}
    edit_record(repo, "w", **changes)
    for args in (["cleanup"], ["cleanup", "--worker", "w"], ["cleanup", "--worker", "w", "--force"],
                 ["cleanup", "--all", "--force"]):
        result = envoy("parallel", *args)
        assert result.code in (0, 1) and result.json["status"] in ("success", "error")
        assert result.json.get("error", {}).get("type") != "internal_error", (args, result.stdout)
    for target in targets:
        assert (target / "precious.txt").read_text() == "keep me\n", target
    assert (repo / "README").exists()
    assert git(repo, "status", "--porcelain") == "?? victim/\n"


@pytest.mark.parametrize("branch", ["--force", "-D", "--output=/tmp/envoy-x"])
def test_a_branch_field_never_becomes_a_git_option(repo, envoy, branch):
    envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok")
    edit_record(repo, "w", branch=branch)
    status = envoy("parallel", "status").data
    assert status["workers"] == [] and "branch" in status["broken"][0]["problem"]
    for args in (["results"], ["diff", "--worker", "w"], ["merge", "--worker", "w"], ["cleanup", "--all", "--force"]):
        result = envoy("parallel", *args)
        assert result.json["status"] in ("success", "error"), args
    assert not Path("/tmp/envoy-x").exists()
    # The worktree git lists where envoy put w's, and the branch git says is checked out there, went.
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/heads") == "refs/heads/main\n"
    assert not list(records_dir(repo).glob("*.json"))


@pytest.mark.parametrize("content", ["[1, 2]", "{not json", '{"PATH": 5}'])
def test_a_broken_saved_environment_fails_its_queued_worker_clearly(repo, envoy, tmp_path, content):
    """spawn-env.json (a queued worker's environment) is read from disk too."""
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "busy", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    envoy("parallel", "spawn", "--queue", "--branch", "next", "--task", "@result ok", env=env)
    (repo / ".git" / "envoy" / "logs" / "next" / "spawn-env.json").write_text(content)
    (tmp_path / "go").touch()
    final = wait_finished(envoy, "next")
    assert final["state"] == "failed" and "environment" in final["error"]
    assert envoy("parallel", "status").code == 0


def test_cleanup_signals_only_the_process_that_holds_the_workers_lock(repo, envoy):
    """supervisor_pid is read from the record: edited to another process's pid, cleanup
    --force must not signal that process."""
    envoy("parallel", "spawn", "--branch", "w", "--task", "@sleep 60")
    file = records_dir(repo) / "w.json"
    real = wait_until(lambda: json.loads(file.read_text()).get("supervisor_pid"))
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        edit_record(repo, "w", supervisor_pid=bystander.pid)
        result = envoy("parallel", "cleanup", "--worker", "w", "--force")
        assert result.code == 1 and result.error["type"] == "still_running"
        assert bystander.poll() is None
    finally:
        bystander.kill()
        edit_record(repo, "w", supervisor_pid=real)
    assert envoy("parallel", "cleanup", "--worker", "w", "--force").code == 0


def test_a_valid_record_is_not_taken_for_a_broken_one(repo, envoy):
    """Validation rejects what envoy never writes, nothing that spawn accepts: an
    unassigned code point in a branch, a base that is a revision expression."""
    git(repo, "commit", "-q", "--allow-empty", "-m", "second commit")
    for branch in ("0\U000a3d2f", "fix/ü-naïve"):
        spawned = envoy("parallel", "spawn", "--branch", branch, "--from", "HEAD@{0}~1", "--wait",
                        "--task", "@result ok")
        assert spawned.code == 0, spawned.stdout
    status = envoy("parallel", "status").data
    assert "broken" not in status and len(status["workers"]) == 2


def test_resume_runs_an_agent_only_in_a_worktree_git_confirms(repo, envoy, tmp_path):
    """The worktree path is read from the record: an agent must not be started in
    some other directory the record was edited to name."""
    envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok")
    elsewhere = tmp_path / "elsewhere-w"
    elsewhere.mkdir()
    edit_record(repo, "w", path=str(elsewhere))
    result = envoy("parallel", "resume", "--worker", "w", "--wait", "--task", "@write touched.txt x\n@result ok")
    assert result.code == 1 and result.error["type"] == "unverified_worktree", result.stdout
    assert list(elsewhere.iterdir()) == []
