"""Bad input gets a clear error, a suggestion, and changes nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ENVOY_SOURCE, Result, git, run_envoy, wait_finished, wait_until


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
    (tmp_path / "repo-claude-worker-w").mkdir()
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
    # A bug (here: status's summary, in commands/common.py, made to divide by zero) must not print a traceback.
    source = ENVOY_SOURCE
    crash = (f"import sys; sys.path[:0] = [{str(source)!r}, {str(source / 'vendor')!r}]\n"
             "import envoy.commands.common\nenvoy.commands.common.summary = lambda *a: 1 / 0\n"
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
    assert (tmp_path / "repo-claude-worker-w").is_dir()
    forced = envoy("parallel", "cleanup", "--worker", "w", "--force").data
    [removed] = forced["removed"]
    assert git(repo, "rev-parse", removed["trash_ref"]).strip() == tip
    assert not git(repo, "branch", "--list", "w").strip()
    assert not (tmp_path / "repo-claude-worker-w").exists()
    assert not (records_dir(repo) / "w.json").exists()
    assert envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok").code == 0


def test_an_unparseable_record_is_cleaned_by_plain_cleanup(repo, envoy, tmp_path):
    envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok")
    (records_dir(repo) / "w.json").write_text("[1, 2, 3]")
    cleaned = envoy("parallel", "cleanup")
    assert cleaned.code == 0 and [r["name"] for r in cleaned.data["removed"]] == ["w"]
    assert not git(repo, "branch", "--list", "w").strip()
    assert not (tmp_path / "repo-claude-worker-w").exists()


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
    {"path": "VICTIM"}, {"path": "VICTIM/../repo-claude-worker-w"}, {"path": "REPO"},
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

    def settled() -> int | None:
        """The supervisor's pid once it has written the record for the last time before
        the end (with agent_pid): an edit made earlier could be written over."""
        record = json.loads(file.read_text())
        return record.get("agent_pid") and record.get("supervisor_pid")
    real = wait_until(settled)
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
# -- exit codes: only 0, 1, 2 and 130; every refusal one JSON document --------------

def run_as_user(*args: str, cwd: Path, env: dict | None = None, input: str | None = None) -> Result:
    """envoy as a user runs it; unlike run_envoy, a traceback is returned, not asserted."""
    proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), *args], cwd=cwd, input=input, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=60)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_refusal(result: Result, kind: str | None = None) -> None:
    """Exit 1, no traceback, stdout exactly one JSON error with type, message and suggestion."""
    assert result.code == 1, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    document = json.loads(result.stdout)  # one document: json.loads refuses trailing text
    error = document["error"]
    assert document["status"] == "error" and error["type"] and error["message"] and error["suggestion"]
    if kind is not None:
        assert error["type"] == kind, error


def test_from_a_reflog_entry_that_does_not_exist_is_not_found(repo, envoy):
    result = envoy("parallel", "spawn", "--branch", "w", "--from", "HEAD@{1}", "--task", "x")
    assert_refusal(result, "not_found")


def test_branch_under_an_existing_branch_is_refused_before_git(repo, envoy):
    git(repo, "branch", "x")
    before = snapshot(repo)
    assert_refusal(envoy("parallel", "spawn", "--branch", "x/y", "--task", "x"), "already_exists")
    git(repo, "branch", "p/q")
    assert_refusal(envoy("parallel", "spawn", "--branch", "p", "--task", "x"), "already_exists")
    git(repo, "branch", "-D", "p/q")
    assert snapshot(repo) == before


def test_worktree_dir_that_is_a_file_is_a_config_error(repo, envoy):
    before = snapshot(repo)
    result = envoy("parallel", "spawn", "--branch", "w", "--task", "x", env={"PARALLEL_WORKTREE_DIR": "/dev/null"})
    assert_refusal(result, "invalid_config")
    assert "PARALLEL_WORKTREE_DIR" in result.error["message"]
    assert snapshot(repo) == before


def test_bare_repository_is_not_a_work_tree(tmp_path):
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    for verb in (["status"], ["spawn", "--branch", "x", "--task", "y"]):
        assert_refusal(run_as_user("parallel", *verb, cwd=bare), "not_a_repo")


def test_git_failure_exits_1_whatever_git_exited_with():
    from envoy.git import GitError

    assert GitError(("x",), "fatal: no", 128).exit_code == 1
    assert GitError(("x",), "fatal: no", 255).git_exit_code == 255


@pytest.mark.parametrize("branch", ["b" * 250, "a/" + "c" * 240, "é" * 120])
def test_overlong_branch_name_is_invalid_input(repo, envoy, branch):
    before = snapshot(repo)
    assert_refusal(envoy("parallel", "spawn", "--branch", branch, "--task", "x"), "invalid_input")
    assert snapshot(repo) == before


def test_deeply_nested_settings_are_a_config_error(repo, envoy):
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text("[" * 100_000 + "]" * 100_000)
    assert_refusal(envoy("parallel", "status"), "invalid_config")
    assert_refusal(envoy("init"), "invalid_config")


def read_only(path: Path, *args: str, cwd: Path) -> Result:
    """envoy with `path` read-only: a read-only bind mount in a private mount namespace
    (as root, which ignores file modes), else the directory's mode."""
    if os.geteuid() == 0:
        script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(path), sys.executable,
                               str(ENVOY_SOURCE), *args], cwd=cwd, capture_output=True, text=True, timeout=60)
        assert "mount" not in proc.stderr, proc.stderr  # could not make it read-only: say so, loudly
        return Result(proc.returncode, proc.stdout, proc.stderr)
    modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")] if p.is_dir()}
    for p in modes:
        p.chmod(0o500)
    try:
        return run_as_user(*args, cwd=cwd)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_read_only_state_directory_is_a_typed_refusal(repo, envoy):
    assert envoy("parallel", "status").code == 0
    (repo / ".git" / "envoy" / "workers").mkdir(parents=True, exist_ok=True)
    before = snapshot(repo)
    result = read_only(repo / ".git" / "envoy", "parallel", "spawn", "--branch", "w", "--task", "x", cwd=repo)
    assert_refusal(result, "state_unwritable")
    assert ".git/envoy" in result.error["message"]
    assert snapshot(repo) == before


def test_merge_with_a_read_only_state_directory_moves_nothing(repo, envoy):
    assert envoy("parallel", "spawn", "--branch", "feat", "--wait", "--task", "@write f.txt hi\n@commit add f").code == 0
    main_before = git(repo, "rev-parse", "main")
    for mode in ([], ["--squash"], ["--rebase"]):
        result = read_only(repo / ".git" / "envoy", "parallel", "merge", "--worker", "feat", *mode, cwd=repo)
        assert_refusal(result)
        assert result.error["type"] in ("state_unwritable", "io_error"), result.error
        assert git(repo, "rev-parse", "main") == main_before
    assert envoy("parallel", "merge", "--worker", "feat").data["merged"]  # and once writable, it merges


@pytest.mark.parametrize("settings,what", [({"env": []}, "env"), ({"env": "x"}, "env"),
                                           ({"permissions": []}, "permissions"),
                                           ({"permissions": {"allow": "Bash"}}, "permissions.allow"),
                                           ({"hooks": []}, "hooks"), ({"hooks": {"PreToolUse": {}}}, "hooks.PreToolUse"),
                                           ({"hooks": {"PreToolUse": ["x"]}}, "hooks.PreToolUse")])
def test_init_refuses_settings_of_the_wrong_shape(repo, envoy, settings, what):
    path = repo / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps(settings))
    result = envoy("init")
    assert_refusal(result, "invalid_config")
    assert what in result.error["message"]
    assert json.loads(path.read_text()) == settings


@pytest.mark.parametrize("text", ['{"a": 1e999}', '{"a": NaN}', '{"a": -Infinity}'])
def test_init_never_writes_json_claude_code_cannot_parse(repo, envoy, text):
    path = repo / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(text)
    assert_refusal(envoy("init"), "invalid_config")
    assert path.read_text() == text


def test_a_closed_pipe_is_not_a_traceback(repo, envoy):
    for i in range(3):
        assert envoy("parallel", "spawn", "--branch", f"w{i}", "--wait", "--task", "@result " + "long " * 3000).code == 0
    read, write = os.pipe()
    os.close(read)  # the reader is gone before envoy writes a byte, as with `| head -c0`
    try:
        proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), "parallel", "results"], cwd=repo, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "utf-8:strict"}, {"PYTHONIOENCODING": "ascii"},
                                 {"PYTHONUTF8": "1"}, {"LC_ALL": "C"}])
@pytest.mark.parametrize("name", ["validate-skill", "enforce-limits"])
def test_hook_on_undecodable_stdin_fails_open(repo, name, env):
    payload = b'{"tool_name": "Bash", "cwd": "' + str(repo).encode() + b'", "tool_input": {"command": "echo \xff\xfe"}}'
    proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), "hook", name], cwd=repo, input=payload,
                          capture_output=True, env={**os.environ, **env}, timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr


BAD_INPUTS = [
    ["parallel", "spawn", "--branch", "w", "--from", "HEAD@{5}", "--task", "x"],
    ["parallel", "spawn", "--branch", "main/x", "--task", "x"],
    ["parallel", "spawn", "--branch", "x" * 300, "--task", "x"],
    ["parallel", "spawn", "--branch", "w", "--task-file", "/dev/null"],
    ["parallel", "spawn", "--branch", "w", "--task-file", "/"],
    ["parallel", "spawn", "--branch", "w", "--task", "x", "--from", "\udcff"],
    ["parallel", "spawn", "--branch", "\udcff", "--task", "x"],
    ["parallel", "status", "--worker", "nope"],
    ["parallel", "results", "--worker", "nope"],
    ["parallel", "results", "--tail", "-5"],
    ["parallel", "cleanup", "--worker", "nope"],
    ["parallel", "merge", "--worker", "nope"],
    ["parallel", "merge", "--worker", "nope", "--squash", "--rebase"],
    ["parallel", "diff", "--worker", "nope"],
    ["parallel", "resume", "--worker", "nope", "--task", "x"],
    ["parallel", "wait", "--worker", "nope"],
    ["parallel", "wait", "--timeout", "-1"],
    ["discover", "--roles", "nope,other", "x"],
    ["discover", "--roles", "explorer", "x"],
    ["discover"],
    ["hook", "bogus"],
    ["parallel", "bogus"],
    ["bogus"],
    ["parallel", "spawn"],
    ["parallel", "spawn", "--branch", "w", "--task", "x", "--max-turns", "1e9"],
    ["parallel", "spawn", "--branch", "w", "--task", "x", "--timeout", "nan"],
    ["parallel", "spawn", "--branch", "w", "--task", "x", "--timeout", "inf"],
    ["parallel", "spawn", "--branch", "w", "--task", "x", "--budget", "1e999"],
    ["parallel", "wait", "--timeout", "nan"],
    ["discover", "--timeout", "inf", "x"],
    *(["parallel", verb, "--worker", "x" * 300] for verb in ("status", "results", "cleanup", "diff", "merge")),
    *(["parallel", verb, "--worker", name] for verb in ("status", "results", "cleanup", "diff", "merge", "wait")
      for name in ("", " ")),
    ["parallel", "merge", "--worker", "w", "--into", ""],
    ["parallel", "spawn", "--branch", "w", "--task", "x", "--after", ""],
    ["parallel", "spawn", "--branch", "w", "--task", "x", "--model", ""],
]


def test_every_bad_input_exits_1_or_2_with_one_json_error(repo, envoy):
    assert envoy("parallel", "spawn", "--branch", "keep", "--wait", "--task", "x").code == 0
    codes = set()
    for args in BAD_INPUTS:
        result = run_as_user(*args, cwd=repo)
        codes.add(result.code)
        assert result.code in (1, 2), (args, result.code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        document = json.loads(result.stdout)
        assert document["status"] == "error", args
        assert {"type", "message", "suggestion"} <= set(document["error"]), (args, document)
        assert document["error"]["type"] != "internal_error", (args, document)
    assert codes <= {1, 2}
    assert [w["name"] for w in envoy("parallel", "status").data["workers"]] == ["keep"]  # nothing was cleaned up
    settings = repo / ".claude" / "settings.json"
    settings.parent.mkdir()
    # What each verb does with each bad settings file, stated here: refused as invalid_config,
    # or (None) read around: an `env` that is not a mapping holds no setting for status and
    # spawn, and init does not read the cap (it merges its hooks, leaving env values be).
    status, spawn, init = ("parallel", "status"), ("parallel", "spawn", "--branch", "w", "--task", "x"), ("init",)
    expected = {
        "{": {status: "invalid_config", spawn: "invalid_config", init: "invalid_config"},
        "[" * 50_000: {status: "invalid_config", spawn: "invalid_config", init: "invalid_config"},
        '{"env": {"PARALLEL_MAX_WORKERS": "0"}}': {status: "invalid_config", spawn: "invalid_config", init: None},
        '{"env": []}': {status: None, spawn: None, init: "invalid_config"},
    }
    for text, outcomes in expected.items():
        for args, refusal in outcomes.items():
            settings.write_text(text)  # as it was: init may rewrite it
            result = run_as_user(*args, cwd=repo)
            if refusal is None:
                assert result.code == 0, (text[:20], args, result.stdout)
            else:
                assert_refusal(result, refusal)
                assert "settings.json" in result.error["message"] or "PARALLEL_MAX_WORKERS" in result.error["message"]


# -- hostile repository files: read regular files only, and only so much ------------

def hostile(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:  # a regular file far larger than any settings file
        path.write_text('{"env": {"PARALLEL_MAX_WORKERS": "3"}, "pad": "' + "x" * (5 << 20) + '"}')


@pytest.mark.parametrize("kind", ["device", "fifo", "huge"])
@pytest.mark.parametrize("name", ["settings.json", "settings.local.json"])
def test_settings_that_are_not_a_regular_file_are_refused_at_once(repo, kind, name):
    hostile(repo / ".claude" / name, kind)
    for verb in (["parallel", "status"], ["parallel", "spawn", "--branch", "w", "--task", "x"]):
        result = run_as_user(*verb, cwd=repo)  # its timeout (60 s) is the hang this catches
        assert_refusal(result, "invalid_config")
        assert name in result.error["message"]


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_init_refuses_a_settings_file_that_is_not_regular_and_leaves_it(repo, kind):
    path = repo / ".claude" / "settings.json"
    hostile(path, kind)
    # "device" is a symlink to one: init refuses every symlink it would write through (unsafe_path)
    assert_refusal(run_as_user("init", cwd=repo), "unsafe_path" if kind == "device" else "invalid_config")
    assert path.is_symlink() if kind == "device" else path.is_fifo()


def test_init_force_replaces_a_fifo_instead_of_writing_into_it(repo):
    agent = repo / ".claude" / "agents" / "explorer.md"
    hostile(agent, "fifo")
    assert "kept" in run_as_user("init", cwd=repo).stdout  # differs: kept, without hanging
    assert run_as_user("init", "--force", cwd=repo).code == 0
    assert agent.is_file() and "name: explorer" in agent.read_text()


@pytest.mark.parametrize("kind", ["device", "fifo", "huge"])
def test_discover_refuses_an_agent_file_that_is_not_regular(repo, kind):
    hostile(repo / ".claude" / "agents" / "spec.md", kind)
    result = run_as_user("discover", "--roles", "explorer,spec", "find x", cwd=repo)
    assert_refusal(result, "invalid_input")
    assert "spec.md" in result.error["message"]


def test_a_worktree_whose_git_files_are_fifos_does_not_hang_status(repo, envoy, tmp_path):
    assert envoy("parallel", "spawn", "--branch", "keep", "--wait", "--task", "@result ok").code == 0
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    commondir = repo / ".git" / "worktrees" / "wt" / "commondir"
    commondir.unlink()
    os.mkfifo(commondir)
    proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), "parallel", "status"], cwd=tmp_path / "wt",
                          capture_output=True, text=True, timeout=20)  # its timeout is the hang this catches
    # Not "no workers" from a state dir guessed wrong (the repository has worker keep): a refusal.
    assert_refusal(Result(proc.returncode, proc.stdout, proc.stderr), "not_a_repo")
    assert "commondir" in proc.stdout


def test_task_file_that_never_ends_is_capped(repo, envoy):
    assert_refusal(envoy("parallel", "spawn", "--branch", "w", "--task-file", "/dev/zero"), "invalid_input")


def test_task_file_may_be_a_pipe(repo, envoy):
    # bash's `--task-file <(make-task)` hands envoy a pipe: an explicit choice of the user, read to its end
    read, write = os.pipe()
    os.write(write, b"@result piped\n")
    os.close(write)
    proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), "parallel", "spawn", "--branch", "w", "--wait",
                           "--task-file", f"/dev/fd/{read}"], cwd=repo, pass_fds=(read,), capture_output=True,
                          text=True, timeout=60)
    os.close(read)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["data"]["result"] == "piped"


# -- secrets at rest: everything under .git/envoy is private --------------------------

def loose_modes(root: Path) -> list[str]:
    """Paths under `root` (itself included) that group or others may read or enter."""
    return [f"{p} {oct(p.lstat().st_mode & 0o777)}" for p in [root, *root.rglob("*")]
            if not p.is_symlink() and p.lstat().st_mode & 0o077]


def test_state_files_are_0600_in_0700_directories(repo, envoy):
    os.umask(0o022)
    assert envoy("parallel", "spawn", "--branch", "a", "--wait", "--setup", "echo secret-setup >&2",
                 "--task", "@result secret").code == 0
    assert envoy("parallel", "spawn", "--branch", "b", "--after", "a", "--task", "secret too").code == 0
    assert envoy("parallel", "wait").code == 0
    assert envoy("parallel", "resume", "--worker", "a", "--wait", "--task", "more").code == 0
    assert envoy("parallel", "status", "--worker", "nope").code == 1  # something in envoy.log too
    run_as_user("hook", "enforce-limits", cwd=repo, input="not json")
    root = repo / ".git" / "envoy"
    kinds = {p.suffix for p in root.rglob("*") if p.is_file()}
    assert {".task", ".jsonl", ".err", ".json", ".lock", ".log"} <= kinds, kinds
    assert loose_modes(root) == []


def test_an_older_install_is_made_private_when_envoy_next_writes(repo, envoy):
    root = repo / ".git" / "envoy"
    for d in ("workers", "logs/old", "locks"):
        (root / d).mkdir(parents=True)
    (root / "logs" / "old" / "1.task").write_text("an old secret")
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    assert envoy("parallel", "spawn", "--branch", "a", "--wait", "--task", "x").code == 0
    assert [p for p in loose_modes(root) if "/logs/old" not in p] == []  # unreachable below a 0700 logs/
    assert (root / "logs").stat().st_mode & 0o777 == 0o700


# -- nesting: a worker's checkout cannot spawn, whatever its environment says --------

def test_spawn_from_a_workers_worktree_is_refused_without_the_environment(repo, envoy):
    assert envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@run mkdir -p sub").code == 0
    worktree = Path(envoy("parallel", "status", "--worker", "w").data["workers"][0]["path"])
    before = snapshot(repo)
    for cwd in (worktree, worktree / "sub"):
        for verb in (["spawn", "--branch", "nested", "--task", "x"], ["spawn", "--queue", "--branch", "n2", "--task", "x"],
                     ["resume", "--worker", "w", "--task", "x"]):
            result = run_as_user("parallel", *verb, cwd=cwd)  # no ENVOY_WORKER, no PARALLEL_WORKER_DEPTH
            assert_refusal(result, "nesting_blocked")
            assert "w" in result.error["message"]
    assert snapshot(repo) == before
    assert envoy("parallel", "spawn", "--branch", "fine", "--task", "x").code == 0  # from the main checkout: allowed


def test_the_hook_denies_a_spawn_from_a_workers_worktree_without_the_environment(repo, envoy):
    from envoy.commands import hook

    assert envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "x").code == 0
    worktree = envoy("parallel", "status", "--worker", "w").data["workers"][0]["path"]
    payload = {"tool_name": "Bash", "cwd": worktree,
               "tool_input": {"command": "envoy parallel spawn --branch n --task x"}}
    out = json.loads(hook.enforce_limits(payload, {}).stdout)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny" and "w" in out["permissionDecisionReason"]
    payload["cwd"] = str(repo)
    assert hook.enforce_limits(payload, {}) == hook.ALLOW


def test_a_plain_git_worktree_is_not_a_worker(repo, envoy, tmp_path):
    git(repo, "worktree", "add", "-q", "-b", "mine", str(tmp_path / "mine"))
    assert envoy("parallel", "spawn", "--branch", "w", "--task", "x", cwd=tmp_path / "mine").code == 0


@pytest.mark.parametrize("name", ["PARALLEL_WORKTREE_DIR", "PARALLEL_SETUP", "PARALLEL_WORKER_PREFIX", "ENVOY_CLAUDE"])
def test_a_setting_that_is_not_utf8_is_a_config_error(repo, name):
    before = snapshot(repo)
    env = {**os.environ, name: os.fsdecode(b"/tmp/\xff")}
    proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), "parallel", "spawn", "--branch", "w", "--task", "x"],
                          cwd=repo, capture_output=True, text=True, env=env, timeout=60)
    assert_refusal(Result(proc.returncode, proc.stdout, proc.stderr), "invalid_config")
    assert name in json.loads(proc.stdout)["error"]["message"]
    (repo / ".claude").mkdir(exist_ok=True)
    (repo / ".claude" / "settings.json").write_text('{"env": {"%s": "\\udcff"}}' % name)
    env = {k: v for k, v in os.environ.items() if k != name}  # the environment would win over the file
    proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), "parallel", "spawn", "--branch", "w", "--task", "x"],
                          cwd=repo, capture_output=True, text=True, env=env, timeout=60)
    assert_refusal(Result(proc.returncode, proc.stdout, proc.stderr), "invalid_config")
    assert snapshot(repo) == before


def test_a_closed_stdout_is_not_a_traceback(repo):
    for args in (["parallel", "status"], ["parallel", "status", "--worker", "nope"], ["bogus"]):
        proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), *args], cwd=repo, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=60,
                              preexec_fn=lambda: os.close(1))  # `envoy ... >&-`
        assert "Traceback" not in proc.stderr and proc.returncode in (0, 1, 2), proc.stderr


@pytest.mark.parametrize("args", [["parallel", "status"], ["parallel", "status", "--worker", "nope"],
                                  ["parallel", "bogus"], ["hook", "enforce-limits"]])
def test_a_stdout_that_cannot_be_written_is_not_a_traceback(repo, args):
    payload = json.dumps({"tool_name": "Bash", "cwd": str(repo), "tool_input": {"command": "envoy parallel spawn"}})
    with open("/dev/full", "w") as full:  # every write fails: No space left on device
        proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), *args], cwd=repo, stdout=full, input=payload,
                              stderr=subprocess.PIPE, text=True, timeout=60, env={**os.environ, "ENVOY_WORKER": "w"})
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1, 2), proc.stderr


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_record_that_is_not_a_regular_file_does_not_hang_any_verb(repo, envoy, kind):
    assert envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "x").code == 0
    evil = repo / ".git" / "envoy" / "workers" / "evil.json"
    hostile(evil, kind)
    try:
        answers_at_once(repo)
    finally:
        evil.unlink()  # conftest's teardown reads every record as a plain file


def answers_at_once(repo: Path) -> None:
    """Every verb answers (one JSON document) within 20 s and 1 GiB: no hang, no reading forever."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    payload = json.dumps({"tool_name": "Bash", "cwd": str(repo), "tool_input": {"command": "envoy parallel spawn"}})
    for verb in (["parallel", "status"], ["parallel", "status", "--worker", "evil"], ["parallel", "results"],
                 ["parallel", "spawn", "--branch", "v", "--task", "x"], ["hook", "enforce-limits"]):
        proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), *verb], cwd=repo, input=payload, timeout=20,
                              capture_output=True, text=True, preexec_fn=cap)
        assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), (verb, proc)
        assert "MemoryError" not in proc.stdout, (verb, proc.stdout)
        if verb[0] != "hook":
            json.loads(proc.stdout)
