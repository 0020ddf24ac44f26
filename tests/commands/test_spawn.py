"""spawn: the worktree, the branch, the detached agent and what it is given."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ENVOY_SOURCE, git, wait_finished, wait_until


def recorded_runs(directory: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def test_side_fix_from_main_while_on_a_feature_branch(repo, envoy, tmp_path):
    git(repo, "switch", "-qc", "feature")
    (repo / "feature.txt").write_text("wip\n")
    git(repo, "add", "feature.txt")
    git(repo, "commit", "-qm", "feature work")

    spawned = envoy("parallel", "spawn", "--branch", "quick/hook-fix", "--from", "main",
                    "--task", "@write fix.txt fixed\n@commit fix the hook\n@result Fixed it.")
    assert spawned.code == 0, spawned.stderr
    record = spawned.data
    assert record["name"] == "quick-hook-fix"
    assert record["branch"] == "quick/hook-fix"
    assert record["base"] == "main"
    assert record["state"] in ("running", "succeeded")
    worktree = tmp_path / "repo-claude-worker-quick-hook-fix"
    assert record["path"] == str(worktree)

    final = wait_finished(envoy, "quick-hook-fix")
    assert final["state"] == "succeeded"
    assert final["session_id"] == record["session_id"]
    assert "exit_code" not in final  # 0 is implied by succeeded: status leaves it out
    assert final["num_turns"] == 3 and final["cost_usd"] > 0
    assert final["result"] == "Fixed it."
    # The worker branched from main, not from the feature branch the caller is on.
    assert not (worktree / "feature.txt").exists()
    assert (worktree / "fix.txt").read_text() == "fixed\n"
    assert git(repo, "log", "-1", "--format=%s", "quick/hook-fix").strip() == "fix the hook"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "feature"  # caller untouched


def test_default_base_is_the_current_branch(repo, envoy):
    git(repo, "switch", "-qc", "feature")
    record = envoy("parallel", "spawn", "--branch", "w1", "--task", "@result ok").data
    assert record["base"] == "feature"


def test_agent_gets_task_on_stdin_and_the_expected_command_line(repo, envoy, tmp_path):
    record_dir = tmp_path / "runs"
    record_dir.mkdir()
    claude_dir = repo / ".claude"
    claude_dir.mkdir()
    (claude_dir / "settings.json").write_text(json.dumps({"permissions": {"allow": ["Bash(npm test:*)", "Edit"]}}))
    (claude_dir / "settings.local.json").write_text(json.dumps({"permissions": {"allow": ["Bash(make:*)"]}}))
    task = ("quote ' \" `backtick` $(rm -rf /) ${HOME} \\ \n" + "naïve 日本語 🚀\n" * 25000 + "-- --help\n")
    assert len(task.encode()) > 500_000
    task_file = tmp_path / "task.txt"
    task_file.write_text(task, encoding="utf-8")

    result = envoy("parallel", "spawn", "--branch", "feat/x", "--task-file", str(task_file),
                   "--model", "sonnet", "--max-turns", "7", "--budget", "1.5", "--allowed-tools", "Bash(pytest:*)",
                   env={"FAKE_CLAUDE_RECORD": str(record_dir), "CLAUDECODE": "1", "CLAUDE_CODE_ENTRYPOINT": "cli"})
    assert result.code == 0, result.stdout
    wait_finished(envoy, "feat-x")
    (run,) = recorded_runs(record_dir)
    assert run["task"] == task  # byte for byte, through stdin
    argv = run["argv"]
    assert task not in " ".join(argv)
    assert argv[:4] == ["-p", "--output-format", "stream-json", "--verbose"]
    assert argv[argv.index("--session-id") + 1] == result.data["session_id"]
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert argv[argv.index("--model") + 1] == "sonnet"
    assert argv[argv.index("--max-turns") + 1] == "7"
    assert argv[argv.index("--max-budget-usd") + 1] == "1.5"
    allowed = argv[argv.index("--allowedTools") + 1:]
    for rule in ("Bash(npm test:*)", "Edit", "Bash(make:*)", "Bash(pytest:*)", "Bash(git commit:*)", "Bash(git add:*)"):
        assert rule in allowed
    prompt = argv[argv.index("--append-system-prompt") + 1]
    assert str(result.data["path"]) in prompt and "feat/x" in prompt and "commit" in prompt
    assert "spawn" in prompt  # nested spawning is forbidden
    assert run["cwd"] == result.data["path"]
    assert run["env"]["ENVOY_WORKER"] == "feat-x"
    assert run["env"]["PARALLEL_WORKER_DEPTH"] == "1"
    assert "CLAUDECODE" not in run["env"] and "CLAUDE_CODE_ENTRYPOINT" not in run["env"]


def test_task_from_stdin(repo, envoy, tmp_path):
    record_dir = tmp_path / "runs"
    record_dir.mkdir()
    result = envoy("parallel", "spawn", "--branch", "w", "--task-file", "-", input="from stdin ✓\n@result ok",
                   env={"FAKE_CLAUDE_RECORD": str(record_dir)})
    assert result.code == 0, result.stdout
    wait_finished(envoy, "w")
    assert recorded_runs(record_dir)[0]["task"] == "from stdin ✓\n@result ok"


def test_permission_mode_from_settings_and_flag(repo, envoy, tmp_path):
    record_dir = tmp_path / "runs"
    record_dir.mkdir()
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text(json.dumps({"env": {"PARALLEL_PERMISSION_MODE": "dontAsk"}}))
    env = {"FAKE_CLAUDE_RECORD": str(record_dir)}
    envoy("parallel", "spawn", "--branch", "a", "--task", "@result ok", env=env)
    envoy("parallel", "spawn", "--branch", "b", "--task", "@result ok", "--permission-mode", "plan", env=env)
    wait_finished(envoy, "a"), wait_finished(envoy, "b")
    modes = sorted(r["argv"][r["argv"].index("--permission-mode") + 1] for r in recorded_runs(record_dir))
    assert modes == ["dontAsk", "plan"]


def test_env_and_worktreeinclude_files_are_copied(repo, envoy, tmp_path):
    (repo / ".gitignore").write_text(".env\nconfig/local.json\nbuild/\n")
    (repo / ".worktreeinclude").write_text("config/local.json\n")
    git(repo, "add", ".gitignore", ".worktreeinclude")
    git(repo, "commit", "-qm", "ignore")
    (repo / ".env").write_text("SECRET=1\n")
    os.chmod(repo / ".env", 0o600)
    (repo / "config").mkdir()
    (repo / "config" / "local.json").write_text("{}\n")
    (repo / "build").mkdir()
    (repo / "build" / "big.bin").write_text("not wanted\n")

    record = envoy("parallel", "spawn", "--branch", "w", "--task", "@run cat .env config/local.json").data
    worktree = Path(record["path"])
    assert (worktree / ".env").read_text() == "SECRET=1\n"
    assert stat.S_IMODE((worktree / ".env").stat().st_mode) == 0o600
    assert (worktree / "config" / "local.json").read_text() == "{}\n"
    assert not (worktree / "build").exists()
    assert wait_finished(envoy, "w")["state"] == "succeeded"
    # Copied files do not make the worker dirty.
    assert envoy("parallel", "results", "--worker", "w").data["results"][0]["dirty"] is False


def test_worktree_dir_and_prefix_settings(repo, envoy, tmp_path):
    elsewhere = tmp_path / "trees"
    result = envoy("parallel", "spawn", "--branch", "w", "--task", "@result ok",
                   env={"PARALLEL_WORKTREE_DIR": str(elsewhere), "PARALLEL_WORKER_PREFIX": "wt-"})
    assert result.data["path"] == str(elsewhere / "wt-w")
    assert (elsewhere / "wt-w" / "README").exists()


@pytest.mark.parametrize("env", [{"ENVOY_WORKER": "other"}, {"PARALLEL_WORKER_DEPTH": "1"}])
def test_spawn_inside_a_worker_is_refused(repo, envoy, env):
    result = envoy("parallel", "spawn", "--branch", "nested", "--task", "x", env=env)
    assert result.code == 1
    assert result.error["type"] == "nesting_blocked"
    assert "suggestion" in result.error
    assert not git(repo, "branch", "--list", "nested").strip()


def test_missing_agent_is_a_clear_error_and_creates_nothing(repo, envoy, tmp_path):
    result = envoy("parallel", "spawn", "--branch", "w", "--task", "x", env={"ENVOY_CLAUDE": "no-such-claude"})
    assert result.code == 1
    assert result.error["type"] == "agent_missing"
    assert "ENVOY_CLAUDE" in result.error["message"]
    assert not git(repo, "branch", "--list", "w").strip()
    assert not (tmp_path / "repo-claude-worker-w").exists()


def test_spawn_wait_exit_status(repo, envoy):
    ok = envoy("parallel", "spawn", "--branch", "ok", "--wait", "--task", "@result fine")
    assert ok.code == 0
    assert ok.data["state"] == "succeeded" and ok.data["result"] == "fine"
    assert "ok: succeeded" in ok.stderr  # progress on stderr

    crash = envoy("parallel", "spawn", "--branch", "crash", "--wait", "--task", "@crash 3")
    assert crash.code == 1
    assert crash.error["type"] == "worker_failed"
    assert crash.json["data"]["state"] == "failed"
    assert crash.json["data"]["reason"] == "no_result"
    assert crash.json["data"]["exit_code"] == 3

    turns = envoy("parallel", "spawn", "--branch", "turns", "--wait", "--task", "@fail error_max_turns")
    assert turns.code == 1 and turns.json["data"]["reason"] == "max_turns"

    api = envoy("parallel", "spawn", "--branch", "api", "--wait", "--task", "@api-error 500")
    assert api.code == 1 and api.json["data"]["reason"] == "api_error"
    assert "500" in api.json["data"]["error"]


def test_timeout_kills_the_worker(repo, envoy):
    result = envoy("parallel", "spawn", "--branch", "slow", "--wait", "--timeout", "1", "--task", "@sleep 60")
    assert result.code == 1
    data = result.json["data"]
    assert data["state"] == "failed" and data["reason"] == "timeout"
    assert data["duration_s"] < 15


def test_spawn_and_status_work_from_a_subdirectory(repo, envoy):
    sub = repo / "a" / "b"
    sub.mkdir(parents=True)
    assert envoy("parallel", "spawn", "--branch", "w", "--task", "@result ok", cwd=sub).code == 0
    wait_finished(envoy, "w")
    assert [w["name"] for w in envoy("parallel", "status", cwd=sub).data["workers"]] == ["w"]


def test_verbs_work_from_inside_a_worker_worktree(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "w", "--task", "@write x.txt x\n@commit x").data
    wait_finished(envoy, "w")
    inside = Path(record["path"])
    status = envoy("parallel", "status", cwd=inside).data
    assert [w["name"] for w in status["workers"]] == ["w"]
    results = envoy("parallel", "results", "--worker", "w", cwd=inside).data["results"][0]
    assert [c["subject"] for c in results["commits"]] == ["x"]
    # envoy's bookkeeping lives in the common git dir, never in a worktree.
    assert not list(inside.rglob("*.lock"))
    assert git(inside, "status", "--porcelain").strip() == ""


def test_human_text_output(repo, envoy):
    envoy("parallel", "spawn", "--branch", "w", "--task", "@result hi there")
    wait_finished(envoy, "w")
    text = envoy("parallel", "status", "--text")
    assert text.code == 0 and "w" in text.stdout and "succeeded" in text.stdout
    assert not text.stdout.startswith("{")
    results = envoy("parallel", "results", "--text").stdout
    assert "hi there" in results and "transcript" in results


# -- a checkout that fails or is cut short (issue 11, item 5) -------------------
# Rule: it leaves a record saying what happened, or nothing at all; never an
# orphaned worktree or branch that no verb knows about.

def hooks_dir(repo: Path, body: str) -> Path:
    """A post-checkout hook, through core.hooksPath (as the issue found it)."""
    hooks = repo.parent / "hooks"
    hooks.mkdir(exist_ok=True)
    hook = hooks / "post-checkout"
    hook.write_text("#!/bin/sh\n" + body + "\n")
    hook.chmod(0o755)
    git(repo, "config", "core.hooksPath", str(hooks))
    return hooks


def leftovers(repo: Path, branch: str) -> tuple[str, str, list[str]]:
    """What a spawn of `branch` left: the branch, any linked worktree, any record."""
    worktrees = [line for line in git(repo, "worktree", "list", "--porcelain").splitlines()
                 if line.startswith("worktree ") and line != f"worktree {repo}"]
    records = [p.name for p in (repo / ".git" / "envoy" / "workers").glob("*.json")]
    return git(repo, "branch", "--list", branch).strip(), "\n".join(worktrees), records


def test_a_failing_post_checkout_hook_leaves_nothing_behind(repo, envoy, tmp_path):
    hooks_dir(repo, "exit 1")
    failed = envoy("parallel", "spawn", "--branch", "w", "--task", "@result ok")
    assert failed.code == 1 and failed.error["type"] == "git_error"
    assert leftovers(repo, "w") == ("", "", [])
    assert not (tmp_path / "repo-claude-worker-w").exists()
    git(repo, "config", "--unset", "core.hooksPath")
    again = envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok")
    assert again.code == 0, again.stdout


def spawn_in_checkout(repo: Path, hooks: Path, branch: str) -> subprocess.Popen[str]:
    """A spawn held inside its checkout (the post-checkout hook sleeps), in its own
    process group, once the hook has started."""
    started = hooks / "started"
    started.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "spawn", "--branch", branch,
                             "--task", "@result ok"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    wait_until(started.exists, timeout=60, interval=0.02)
    return proc


SLOW_HOOK = 'if [ -e "$(dirname "$0")/slow" ]; then touch "$(dirname "$0")/started"; sleep 5; fi'


@pytest.mark.parametrize("to_group", [False, True], ids=["kill -INT pid", "Ctrl-C (the whole group)"])
def test_sigint_mid_checkout_undoes_it(repo, envoy, to_group):
    hooks = hooks_dir(repo, SLOW_HOOK)
    (hooks / "slow").touch()
    for branch in ("a", "b", "c"):  # the issue saw three orphan branches from three interrupts
        proc = spawn_in_checkout(repo, hooks, branch)
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (out, err)
        assert "Traceback" not in err
        assert leftovers(repo, branch) == ("", "", []), branch
    (hooks / "slow").unlink()
    assert envoy("parallel", "spawn", "--branch", "a", "--wait", "--task", "@result ok").code == 0


def test_kill_9_mid_checkout_is_recorded_and_cleanup_removes_it(repo, envoy, tmp_path):
    hooks = hooks_dir(repo, SLOW_HOOK)
    (hooks / "slow").touch()
    proc = spawn_in_checkout(repo, hooks, "w")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    (hooks / "slow").unlink()
    # git goes on without its parent: the worktree it makes is known to a record.
    view = envoy("parallel", "status", "--worker", "w").data["workers"][0]
    assert view["state"] == "lost" and "checkout" in view["error"]
    refused = envoy("parallel", "spawn", "--branch", "w", "--task", "@result ok")
    assert refused.error["type"] == "already_exists" and "cleanup --worker w" in refused.error["suggestion"]
    cleaned = envoy("parallel", "cleanup", "--worker", "w")
    assert cleaned.code == 0, cleaned.stdout
    assert [r["name"] for r in cleaned.data["removed"]] == ["w"]
    wait_until(lambda: leftovers(repo, "w") == ("", "", []), timeout=10)  # git's own exit, after its hook
    assert not (tmp_path / "repo-claude-worker-w").exists()
    again = envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok")
    assert again.code == 0, again.stdout


def test_cleanup_reports_removed_only_what_is_gone(repo, envoy, tmp_path):
    """A record that says a checkout was under way when its spawn died (state as
    kill -9 leaves it): cleanup removes the worktree and branch it made."""
    spawned = envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok").data
    record_file = repo / ".git" / "envoy" / "workers" / "w.json"
    record = json.loads(record_file.read_text())
    for key in ("worktree_created", "supervisor_pid", "started_at", "finished_at"):
        record.pop(key, None)
    record.update(state="starting", run=0, runs=[], checking_out=True)
    record_file.write_text(json.dumps(record))
    cleaned = envoy("parallel", "cleanup", "--worker", "w")
    assert cleaned.code == 0 and [r["name"] for r in cleaned.data["removed"]] == ["w"]
    assert leftovers(repo, "w") == ("", "", [])
    assert not Path(spawned["path"]).exists()


def small_disk() -> None:
    """A full disk, as a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored, so a
    write fails with EFBIG the way it fails with ENOSPC): no root or mount needed."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, 512 * 1024))


def spawn_on_a_small_disk(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ENVOY_SOURCE), "parallel", "spawn", *args], cwd=repo,
                          capture_output=True, text=True, preexec_fn=small_disk, timeout=120)


def test_a_checkout_that_runs_out_of_space_leaves_nothing_behind(repo, envoy, tmp_path):
    (repo / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    git(repo, "add", "big.bin")
    git(repo, "commit", "-qm", "big")
    proc = spawn_on_a_small_disk(repo, "--branch", "w", "--task", "x")
    # != 0: 1 once git's own exit code no longer leaks (issue 11, item 9)
    assert proc.returncode != 0 and json.loads(proc.stdout)["error"]["type"] == "git_error", proc.stdout
    assert "Traceback" not in proc.stderr
    assert leftovers(repo, "w") == ("", "", [])
    assert not (tmp_path / "repo-claude-worker-w").exists()
    assert envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok").code == 0


def test_copying_untracked_files_onto_a_full_disk_is_a_clear_error(repo, envoy, tmp_path):
    (repo / ".env").write_bytes(os.urandom(1024 * 1024))  # copied into every worktree
    proc = spawn_on_a_small_disk(repo, "--branch", "w", "--task", "x")
    assert proc.returncode == 1 and json.loads(proc.stdout)["error"]["type"] == "copy_failed", proc.stdout
    assert ".env" in json.loads(proc.stdout)["error"]["message"]
    assert leftovers(repo, "w") == ("", "", [])
    # Queued: the queue runner (started by this spawn, so on the same small disk) fails it, and lives on.
    envoy("parallel", "spawn", "--branch", "busy", "--task", f"@wait-for {tmp_path / 'go'}",
          env={"PARALLEL_MAX_WORKERS": "1"})
    queued = spawn_on_a_small_disk(repo, "--queue", "--branch", "q", "--task", "@result ok")
    assert queued.returncode == 0, queued.stdout
    final = wait_finished(envoy, "q")
    assert final["state"] == "failed" and ".env" in final["error"]
    assert not git(repo, "branch", "--list", "q").strip() and not (tmp_path / "repo-claude-worker-q").exists()
    (tmp_path / "go").touch()


def test_cleanup_waits_for_a_checkout_git_is_still_making(repo, envoy, tmp_path):
    """kill -9 of spawn leaves its `git worktree add` running (its own process): a
    cleanup meanwhile says so and removes nothing; once git is done, it removes all.
    A smudge filter that sleeps holds git inside the checkout."""
    marks = tmp_path / "marks"
    marks.mkdir()
    (repo / ".gitattributes").write_text("README filter=slow\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-qm", "attributes")
    git(repo, "config", "filter.slow.smudge", f"touch {marks}/started; sleep 4; cat; touch {marks}/done")
    proc = subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "spawn", "--branch", "w",
                             "--task", "@result ok"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    wait_until((marks / "started").exists, timeout=60, interval=0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    early = envoy("parallel", "cleanup", "--worker", "w")
    assert early.code == 1 and early.error["type"] == "still_running", early.stdout
    wait_until((marks / "done").exists, timeout=60)
    wait_until(lambda: "initializing" not in git(repo, "worktree", "list", "--porcelain"), timeout=30)
    cleaned = envoy("parallel", "cleanup", "--worker", "w")
    assert cleaned.code == 0 and [r["name"] for r in cleaned.data["removed"]] == ["w"], cleaned.stdout
    assert leftovers(repo, "w") == ("", "", [])
    git(repo, "config", "--unset", "filter.slow.smudge")
    assert envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok").code == 0


def test_budget_and_turn_limits_are_reported(repo, envoy):
    result = envoy("parallel", "spawn", "--branch", "b", "--wait", "--budget", "0.01", "--task", "@fail error_max_budget_usd")
    assert result.json["data"]["reason"] == "budget"


def test_parallel_budget_refuses_spawn_past_the_total(repo, envoy):
    for name in ("a", "b"):
        envoy("parallel", "spawn", "--branch", name, "--task", "@run true\n@run true\n@result ok")
        wait_finished(envoy, name)
    status = envoy("parallel", "status").data
    assert abs(status["summary"]["total_cost_usd"] - 2 * 3 * 0.0011) < 1e-9
    assert abs(envoy("parallel", "results").data["total_cost_usd"] - 2 * 3 * 0.0011) < 1e-9
    refused = envoy("parallel", "spawn", "--branch", "c", "--task", "x", env={"PARALLEL_BUDGET_USD": "0.005"})
    assert refused.code == 1 and refused.error["type"] == "budget_exceeded" and "0.0066" in refused.error["message"]
    allowed = envoy("parallel", "spawn", "--branch", "c", "--task", "@result ok", env={"PARALLEL_BUDGET_USD": "1"})
    assert allowed.code == 0


def no_identity(tmp_path: Path) -> dict[str, str]:
    """An environment in which git has no identity to commit with (as in a fresh CI
    home): user.useConfigOnly, so no guess from the host name makes one up."""
    config = tmp_path / "no-identity.gitconfig"
    config.write_text("[user]\n\tuseConfigOnly = true\n[init]\n\tdefaultBranch = main\n")
    return {"GIT_CONFIG_GLOBAL": str(config), "EMAIL": ""}


def disowned(repo: Path) -> dict[str, str]:
    """Make git refuse `repo` as owned by another user (safe.directory): truly, by giving
    it to another uid, when the tests run as root; else by git's own switch for that."""
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "54321:54321", str(repo)], check=True)
        return {}
    return {"GIT_TEST_ASSUME_DIFFERENT_OWNER": "1"}


def test_spawn_without_a_git_identity_is_refused_and_creates_nothing(repo, envoy, tmp_path):
    result = envoy("parallel", "spawn", "--branch", "w", "--task", "@write a.txt a\n@commit a",
                   env=no_identity(tmp_path))
    assert result.code == 1
    assert result.error["type"] == "git_identity_missing"
    assert "identity" in result.error["message"]
    assert 'git config --global user.name "Your Name"' in result.error["suggestion"]
    assert "user.email" in result.error["suggestion"]
    assert not git(repo, "branch", "--list", "w").strip()
    assert not (tmp_path / "repo-claude-worker-w").exists()
    assert not list((repo / ".git").glob("envoy/workers/*.json"))


def test_spawn_in_a_repository_git_refuses_says_so_with_gits_fix(repo, envoy, tmp_path):
    env = disowned(repo)
    result = envoy("parallel", "spawn", "--branch", "w", "--task", "@result ok", env=env)
    assert result.code == 1
    assert result.error["type"] == "unsafe_repository", result.error
    assert "owned by another user" in result.error["message"]
    assert f"git config --global --add safe.directory {repo}" in result.error["suggestion"]
    assert not (tmp_path / "repo-claude-worker-w").exists()
    assert not (repo / ".git" / "envoy" / "workers").exists()
    # Told as asked, the same spawn works.
    git(repo.parent, "config", "--global", "--add", "safe.directory", str(repo))
    assert envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok", env=env).code == 0


def test_without_a_setting_three_workers_run_and_a_fourth_is_refused(repo, envoy):
    """The documented default cap, 3, with PARALLEL_MAX_WORKERS set nowhere (the
    hermetic fixture removes it from the environment; the repo has no settings)."""
    assert "PARALLEL_MAX_WORKERS" not in os.environ
    for i in range(3):
        started = envoy("parallel", "spawn", "--branch", f"cap/{i}", "--task", "@sleep 60")
        assert started.code == 0, started.stderr
    refused = envoy("parallel", "spawn", "--branch", "cap/3", "--task", "@sleep 60")
    assert refused.code == 1 and refused.error["type"] == "limit_exceeded"
    assert refused.error["max_workers"] == 3
    assert sorted(refused.error["running"]) == ["cap-0", "cap-1", "cap-2"]
    assert [w["name"] for w in envoy("parallel", "status").data["workers"]] == ["cap-0", "cap-1", "cap-2"]


def test_a_dirty_checkout_is_said_at_spawn_with_what_the_worker_will_not_see(repo, envoy):
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore logs")
    (repo / "README").write_text("an edit not yet committed\n")
    (repo / "notes.md").write_text("a new file, untracked\n")
    (repo / "build.log").write_text("ignored: nobody expects it in a worktree\n")
    record = envoy("parallel", "spawn", "--branch", "w", "--task", "@result ok").data
    assert len(record["warnings"]) == 1
    warning = record["warnings"][0]
    assert "README" in warning and "notes.md" in warning and "build.log" not in warning
    assert "will not see" in warning
    worktree = Path(record["path"])
    assert (worktree / "README").read_text() == "hello\n" and not (worktree / "notes.md").exists()
    wait_finished(envoy, "w")
    text = envoy("parallel", "spawn", "--branch", "w2", "--task", "@result ok", "--text")
    assert "will not see" in text.stdout + text.stderr
    wait_finished(envoy, "w2")


def test_a_clean_checkout_has_no_warnings(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "w", "--task", "@result ok").data
    assert "warnings" not in record
    wait_finished(envoy, "w")


def test_worktreeinclude_copies_only_gitignored_files_as_claude_code_does(repo, envoy):
    (repo / ".gitignore").write_text("local.ini\n")
    (repo / ".worktreeinclude").write_text("local.ini\ndraft.txt\n")
    git(repo, "add", ".gitignore", ".worktreeinclude")
    git(repo, "commit", "-qm", "include")
    (repo / "local.ini").write_text("ignored and included: copied\n")
    (repo / "draft.txt").write_text("included but not ignored: a file to commit, not to copy\n")
    record = envoy("parallel", "spawn", "--branch", "w", "--task", "@result ok").data
    worktree = Path(record["path"])
    assert (worktree / "local.ini").exists() and not (worktree / "draft.txt").exists()
    assert "draft.txt" in record["warnings"][0] and "local.ini" not in record["warnings"][0]
    wait_finished(envoy, "w")


def test_timeout_0_means_no_limit_as_parallel_timeout_0_does(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "w", "--timeout", "0", "--task", "@sleep 1.5\n@result ok",
                   env={"PARALLEL_TIMEOUT": "0.5"}).data  # the flag, not the setting, decides
    final = wait_finished(envoy, "w")
    assert final["state"] == "succeeded", final
    stored = json.loads((repo / ".git" / "envoy" / "workers" / "w.json").read_text())
    assert stored["options"]["timeout_s"] is None
    same = envoy("parallel", "spawn", "--branch", "w2", "--task", "@result ok", env={"PARALLEL_TIMEOUT": "0"}).data
    wait_finished(envoy, "w2")
    assert json.loads((repo / ".git" / "envoy" / "workers" / "w2.json").read_text())["options"]["timeout_s"] is None
    assert record["name"] == "w" and same["name"] == "w2"


def test_two_repositories_side_by_side_spawn_the_same_branch(repo, envoy, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    (other / "README").write_text("other\n")
    git(other, "add", "README")
    git(other, "commit", "-qm", "init")
    first = envoy("parallel", "spawn", "--branch", "fix/same", "--task", "@result ok")
    second = envoy("parallel", "spawn", "--branch", "fix/same", "--task", "@result ok", cwd=other)
    assert first.code == 0 and second.code == 0, second.stdout
    assert first.data["path"] != second.data["path"]
    assert Path(second.data["path"]).name == "other-claude-worker-fix-same"
    wait_finished(envoy, "fix-same")
    wait_finished(lambda *a, **k: envoy(*a, cwd=other, **k), "fix-same")
