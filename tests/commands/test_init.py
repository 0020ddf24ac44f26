"""envoy init: installs itself, merges settings, writes the discovery files; twice changes nothing."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import build, git, run_envoy


def init(repo: Path, *args: str, command: list[str] | None = None):
    return run_envoy("init", *args, cwd=repo, command=command)


def commit_all(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "snapshot")


def test_init_from_a_pyz_elsewhere_is_idempotent(repo, tmp_path):
    pyz = build(tmp_path, "315532800")
    first = init(repo, command=[sys.executable, str(pyz)])
    assert first.code == 0, first.stdout
    assert first.data["pyz"] == ".claude/envoy.pyz"
    assert (repo / ".claude" / "envoy.pyz").read_bytes() == pyz.read_bytes()
    settings = json.loads((repo / ".claude" / "settings.json").read_text())
    assert settings["env"] == {"PARALLEL_MAX_WORKERS": "3", "PARALLEL_WORKER_PREFIX": "claude-worker-"}
    post = settings["hooks"]["PostToolUse"][0]
    assert post["matcher"] == "Write|Edit|MultiEdit"
    assert 'python3 -I -S "$f" hook validate-skill' in post["hooks"][0]["command"]
    assert post["hooks"][0]["command"].startswith('f="$CLAUDE_PROJECT_DIR"/.claude/envoy.pyz;')
    pre = settings["hooks"]["PreToolUse"][0]
    assert pre["matcher"] == "Bash" and 'python3 -I -S "$f" hook enforce-limits' in pre["hooks"][0]["command"]
    assert ".claude/envoy.pyz" in git(repo, "check-ignore", ".claude/envoy.pyz")
    assert "Bash(python3 .claude/envoy.pyz parallel:*)" in settings["permissions"]["allow"]
    for name in ("commands/parallel-discovery.md", "agents/explorer.md", "agents/curator.md", "agents/researcher.md"):
        assert (repo / ".claude" / name).is_file(), name
    commit_all(repo)

    again = init(repo, command=[sys.executable, str(pyz)])
    assert again.code == 0 and again.data["changed"] == [] and again.data["kept"] == []
    assert git(repo, "status", "--porcelain") == ""
    # Run from the installed copy, it keeps using itself.
    third = init(repo, command=[sys.executable, str(repo / ".claude" / "envoy.pyz")])
    assert third.data == {"pyz": ".claude/envoy.pyz", "changed": [], "kept": []}


def test_init_from_the_source_tree_builds_the_same_pyz(repo):
    assert init(repo).code == 0
    commit_all(repo)
    assert init(repo).data["changed"] == []
    assert git(repo, "status", "--porcelain") == ""
    version = subprocess.run([sys.executable, str(repo / ".claude" / "envoy.pyz"), "--version"],
                             capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("envoy")


def test_init_merges_into_existing_settings(repo, tmp_path):
    claude = repo / ".claude"
    claude.mkdir()
    existing = {
        "model": "opus",
        "env": {"PARALLEL_MAX_WORKERS": "5", "OTHER": "x"},
        "permissions": {"allow": ["Bash(npm test:*)"], "deny": ["Read(.env)"]},
        "hooks": {"PreToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "mine.sh"}]}],
                  "Stop": [{"hooks": [{"type": "command", "command": "stop.sh"}]}]},
    }
    (claude / "settings.json").write_text(json.dumps(existing, indent=4) + "\n")
    result = init(repo)
    assert result.code == 0
    text = (claude / "settings.json").read_text()
    assert text.startswith('{\n    "model": "opus"')  # the file's own 4-space indent, key order kept
    merged = json.loads(text)
    assert merged["model"] == "opus" and merged["env"]["PARALLEL_MAX_WORKERS"] == "5" and merged["env"]["OTHER"] == "x"
    assert merged["permissions"]["allow"][0] == "Bash(npm test:*)" and merged["permissions"]["deny"] == ["Read(.env)"]
    assert merged["hooks"]["Stop"] == existing["hooks"]["Stop"]
    assert merged["hooks"]["PreToolUse"][0] == existing["hooks"]["PreToolUse"][0]
    assert merged["hooks"]["PreToolUse"][1]["matcher"] == "Bash"
    commit_all(repo)
    assert init(repo).data["changed"] == [] and git(repo, "status", "--porcelain") == ""


def test_init_updates_a_moved_envoy_hook_instead_of_adding_another(repo, tmp_path):
    tools = repo / "tools"
    tools.mkdir()
    shutil.copy(build(tmp_path, "315532800"), tools / "envoy.pyz")
    assert init(repo, command=[sys.executable, str(tools / "envoy.pyz")]).data["pyz"] == "tools/envoy.pyz"
    assert not (repo / ".claude" / "envoy.pyz").exists()
    init(repo)  # now from the source tree: installs .claude/envoy.pyz and repoints the hooks
    hooks = json.loads((repo / ".claude" / "settings.json").read_text())["hooks"]
    for event, names in (("PreToolUse", ["enforce-limits"]), ("PostToolUse", ["validate-skill", "worker-ended"])):
        assert len(hooks[event]) == len(names)  # one group per envoy hook, none added twice
        for group, name in zip(hooks[event], names):
            (command,) = {h["command"] for h in group["hooks"]}
            assert ".claude/envoy.pyz" in command and f"hook {name}" in command


def test_init_keeps_files_that_differ_unless_forced(repo):
    agents = repo / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "explorer.md").write_text("---\nname: explorer\ndescription: mine\n---\nmy own explorer\n")
    result = init(repo)
    assert any(k.startswith(".claude/agents/explorer.md") for k in result.data["kept"])
    assert "my own explorer" in (agents / "explorer.md").read_text()
    forced = init(repo, "--force")
    assert ".claude/agents/explorer.md (replaced)" in forced.data["changed"]
    assert "my own explorer" not in (agents / "explorer.md").read_text()


def test_init_refuses_a_broken_settings_file(repo):
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text("{oops")
    result = init(repo)
    assert result.code == 1 and result.error["type"] == "invalid_config"
    assert (repo / ".claude" / "settings.json").read_text() == "{oops"


def test_written_files_pass_our_own_validator(repo):
    from envoy.hooks import validate_skill
    init(repo)
    for path in (repo / ".claude").rglob("*.md"):
        rel = path.relative_to(repo).as_posix()
        assert validate_skill.problems(rel, path.read_text()) == [], rel


def test_installed_hooks_work_from_the_settings_command(repo, envoy):
    init(repo)
    command = json.loads((repo / ".claude" / "settings.json").read_text())["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    payload = {"tool_name": "Bash", "cwd": str(repo), "tool_input": {"command": "envoy parallel spawn --branch x --task y"}}
    proc = subprocess.run(["sh", "-c", command], input=json.dumps(payload), capture_output=True, text=True,
                          env={"CLAUDE_PROJECT_DIR": str(repo), "ENVOY_WORKER": "w", "PATH": os.environ["PATH"]})
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


OLD_HOOKS = {  # what init wrote before `if` conditions, beside a hook of the user's own
    "PreToolUse": [{"matcher": "Bash", "hooks": [
        {"type": "command", "timeout": 30, "command": 'python3 "$CLAUDE_PROJECT_DIR/.claude/envoy.pyz" hook enforce-limits'},
        {"type": "command", "command": "mine.sh"}]}],
    "PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "lint.sh"}]},
                    {"matcher": "Write|Edit|MultiEdit", "hooks": [{"type": "command", "timeout": 30,
                     "command": 'python3 "$CLAUDE_PROJECT_DIR/.claude/envoy.pyz" hook validate-skill'}]}],
}


def test_init_upgrades_old_hook_entries_to_conditional_ones(repo):
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text(json.dumps({"hooks": OLD_HOOKS}, indent=2))
    assert init(repo).code == 0
    hooks = json.loads((repo / ".claude" / "settings.json").read_text())["hooks"]
    # The user's hooks stay, in their order; envoy's are replaced, not added to.
    assert hooks["PostToolUse"][0] == OLD_HOOKS["PostToolUse"][0]
    assert [h["command"] for g in hooks["PreToolUse"] for h in g["hooks"] if "envoy" not in h["command"]] == ["mine.sh"]
    pre = [h for g in hooks["PreToolUse"] for h in g["hooks"] if "envoy" in h["command"]]
    assert [h["if"] for h in pre] == ["Bash(*spawn*)"]
    post = [h for g in hooks["PostToolUse"] for h in g["hooks"] if "hook validate-skill" in h["command"]]
    assert {h["if"] for h in post} == {f"{tool}({pattern})" for tool in ("Write", "Edit", "MultiEdit")
                                       for pattern in ("**/SKILL.md", "**/.claude/agents/**", "**/.claude/commands/**")}
    assert all("exit 1" in h["command"] for h in pre + post)
    # the worker-ended hook: only on a spawn or resume, in the background, waking the model with exit 2
    told = [h for g in hooks["PostToolUse"] for h in g["hooks"] if "hook worker-ended" in h["command"]]
    assert [h["if"] for h in told] == ["Bash(*parallel spawn*)", "Bash(*parallel resume*)"]
    assert all(h["asyncRewake"] is True and h["timeout"] > 7200 and "exit 2" in h["command"] for h in told)
    commit_all(repo)
    assert init(repo).data["changed"] == [] and git(repo, "status", "--porcelain") == ""


def test_init_ignores_its_copy_once_and_keeps_the_users_gitignore(repo):
    (repo / ".gitignore").write_text("node_modules/\n*.log")  # no final newline
    assert init(repo).code == 0
    text = (repo / ".gitignore").read_text()
    assert text.startswith("node_modules/\n*.log\n") and text.count("/.claude/envoy.pyz") == 1
    assert git(repo, "status", "--porcelain", "--ignored", ".claude/envoy.pyz").startswith("!!")
    commit_all(repo)
    assert init(repo).data["changed"] == [] and (repo / ".gitignore").read_text() == text


def test_init_leaves_a_tracked_or_already_ignored_copy_alone(repo):
    assert init(repo).code == 0
    (repo / ".gitignore").unlink()
    git(repo, "add", "-A")  # the user commits the pyz
    git(repo, "commit", "-qm", "with envoy.pyz")
    assert init(repo).data["changed"] == [] and not (repo / ".gitignore").exists()
    git(repo, "rm", "-q", "--cached", ".claude/envoy.pyz")
    (repo / ".git" / "info" / "exclude").write_text(".claude/*.pyz\n")
    assert init(repo).data["changed"] == [] and not (repo / ".gitignore").exists()


def test_a_worker_has_a_working_envoy_when_the_pyz_is_not_tracked(repo, tmp_path):
    pyz = build(tmp_path, "315532800")
    for launcher in ("source tree", "installed pyz"):
        if launcher == "source tree":
            assert init(repo).code == 0
            commit_all(repo)  # everything but the ignored .claude/envoy.pyz
            assert git(repo, "ls-files", ".claude/envoy.pyz") == ""
            command = None
        else:  # untracked and not even ignored: the copy must still not count as the worker's work
            shutil.copy(pyz, repo / ".claude" / "envoy.pyz")
            git(repo, "rm", "-q", ".gitignore")
            git(repo, "commit", "-qm", "no .gitignore")
            assert git(repo, "status", "--porcelain") == "?? .claude/envoy.pyz\n"
            command = [sys.executable, str(repo / ".claude" / "envoy.pyz")]
        branch = f"w{len(launcher)}"
        task = ("@run python3 .claude/envoy.pyz parallel status > status.json\n"
                "@run git add status.json && git commit -qm 'worker status'")
        spawned = run_envoy("parallel", "spawn", "--branch", branch, "--wait", "--task", task, cwd=repo,
                            command=command)
        assert spawned.code == 0 and spawned.data["state"] == "succeeded", spawned.stdout
        worktree = Path(spawned.data["path"])
        assert (worktree / ".claude" / "envoy.pyz").read_bytes() == (repo / ".claude" / "envoy.pyz").read_bytes()
        # The worker ran its own envoy (status lists it, running) and committed through Bash.
        status = json.loads(git(repo, "show", f"{branch}:status.json"))
        assert [w["state"] for w in status["data"]["workers"] if w["name"] == branch] == ["running"]
        # Its hooks run from the worktree: a spawn there is denied, by envoy.
        hook = json.loads((worktree / ".claude" / "settings.json").read_text())["hooks"]["PreToolUse"][0]["hooks"][0]
        payload = {"tool_name": "Bash", "cwd": str(worktree),
                   "tool_input": {"command": "python3 .claude/envoy.pyz parallel spawn --branch x --task y"}}
        proc = subprocess.run(["sh", "-c", hook["command"]], input=json.dumps(payload), capture_output=True, text=True,
                              env={**os.environ, "CLAUDE_PROJECT_DIR": str(worktree), "ENVOY_WORKER": branch})
        assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
        # The copy is no work of the worker's: once its branch is merged, cleanup needs no --force.
        assert run_envoy("parallel", "results", "--worker", branch, cwd=repo).data["results"][0]["dirty"] is False
        git(repo, "merge", "-q", branch)
        cleaned = run_envoy("parallel", "cleanup", "--worker", branch, cwd=repo)
        assert cleaned.code == 0 and not worktree.exists(), cleaned.stdout


def test_init_refuses_a_claude_directory_that_is_a_symlink(repo, tmp_path):
    """A cloned repository can ship `.claude -> ~/.claude`: init wrote settings, agents,
    commands and envoy.pyz there. It refuses (typed), writing nothing anywhere."""
    home_claude = Path(os.environ["HOME"]) / ".claude"
    home_claude.mkdir()
    (home_claude / "settings.json").write_text('{"mine": true}\n')
    before = sorted((p.relative_to(home_claude), p.read_bytes()) for p in home_claude.rglob("*") if p.is_file())
    (repo / ".claude").symlink_to(home_claude, target_is_directory=True)
    result = init(repo)
    assert result.code == 1 and result.error["type"] == "unsafe_path", result.stdout
    assert sorted((p.relative_to(home_claude), p.read_bytes()) for p in home_claude.rglob("*") if p.is_file()) == before
    assert not (repo / ".gitignore").exists()


def test_init_refuses_a_symlinked_settings_file_or_agents_directory(repo, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "settings.json").write_text("{}\n")
    (repo / ".claude").mkdir()
    for rel, target in ((".claude/settings.json", elsewhere / "settings.json"), (".claude/agents", elsewhere)):
        link = repo / rel
        link.symlink_to(target)
        result = init(repo)
        assert result.code == 1 and result.error["type"] == "unsafe_path", result.stdout
        assert sorted(p.name for p in elsewhere.iterdir()) == ["settings.json"]
        assert (elsewhere / "settings.json").read_text() == "{}\n"
        link.unlink()


def test_init_installs_an_executable_pyz_that_runs_by_its_path(repo, tmp_path):
    """init's permission rules also allow `.claude/envoy.pyz parallel ...` run directly."""
    pyz = build(tmp_path, "315532800")
    assert init(repo, command=[sys.executable, str(pyz)]).code == 0
    copy = repo / ".claude" / "envoy.pyz"
    assert copy.stat().st_mode & 0o777 == 0o755
    assert subprocess.run([str(copy), "--version"], capture_output=True, text=True).returncode == 0
    copy.chmod(0o644)  # an older init's copy: the same bytes, not executable
    again = init(repo, command=[sys.executable, str(pyz)])
    assert again.code == 0 and copy.stat().st_mode & 0o777 == 0o755


def test_init_from_the_source_tree_installs_an_executable_pyz(repo):
    assert init(repo).code == 0
    assert (repo / ".claude" / "envoy.pyz").stat().st_mode & 0o777 == 0o755
