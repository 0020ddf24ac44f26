"""The hooks installed by `envoy init`, run by the real claude CLI: a bad
SKILL.md is blocked with its problems fed back to the model, and a spawn at
the cap is denied with the reason; unrelated tool calls start no hook process
at all; and a hook never blocks a tool call because envoy could not start."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from fake_model import FakeModel, RequestRecord, bash, delay, edit, text, tool, write

from conftest import git, run_envoy
from conftest import Envoy

BAD_SKILL = "---\nname: My_Claude_Skill\ndescription: <b>does things</b>\ncolour: red\n---\nBody.\n"


def install(repo: Path, pyz: Path) -> None:
    result = run_envoy("init", cwd=repo, command=[sys.executable, str(pyz)])
    assert result.code == 0, result.stdout
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "envoy init")


def told_after_last_call(request: RequestRecord) -> str:
    """All the model was told after its last tool call, whatever the message: the tool
    result, and hook feedback (2.1.197 puts it in a <system-reminder> of the user
    message, 2.1.332 in a system message of its own)."""
    messages = request.body["messages"]
    last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    return json.dumps(messages[last + 1:])


def hook_starts(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(tool_use, [hook_response of each hook process it started]) per tool call, from
    --include-hook-events: hook events follow the call they run for."""
    calls: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    started: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event.get("type") == "assistant":
            calls += [(block, []) for block in event["message"]["content"] if block.get("type") == "tool_use"]
        elif event.get("type") == "system" and event.get("subtype") == "hook_started":
            assert calls, event  # no hook before the first tool call: none is configured for anything else
            started[event["hook_id"]] = calls[-1][1]
        elif event.get("type") == "system" and event.get("subtype") == "hook_response":
            started[event["hook_id"]].append(event)
    return calls


def test_bad_skill_is_blocked_and_the_model_gets_the_problems(
        repo: Path, pyz: Path, fake_model: FakeModel, run_claude: Callable[..., Any]) -> None:
    install(repo, pyz)
    marker = fake_model.script("skill", [write(".claude/skills/pdf-tools/SKILL.md", BAD_SKILL), text("wrote it")])
    run = run_claude(f"{marker} write a skill", "--permission-mode", "bypassPermissions", cwd=repo)
    assert run.returncode == 0, run.stderr
    # The tool ran, the hook then blocked: its reason reaches the model in the next request.
    fed_back = told_after_last_call(fake_model.requests_for("skill")[-1])
    for problem in ("My_Claude_Skill", "pdf-tools", "claude", "<", "colour"):
        assert problem in fed_back, (problem, fed_back[:2000])
    assert "fix:" in fed_back


def test_good_skill_passes_silently(repo: Path, pyz: Path, fake_model: FakeModel,
                                   run_claude: Callable[..., Any]) -> None:
    install(repo, pyz)
    good = "---\nname: pdf-tools\ndescription: Fill and merge PDF forms.\n---\nBody.\n"
    marker = fake_model.script("good", [write(".claude/skills/pdf-tools/SKILL.md", good), text("wrote it")])
    run = run_claude(f"{marker} write a skill", *HOOK_EVENTS, cwd=repo)
    assert run.returncode == 0, run.stderr
    # Silent because it passed, not because it never ran: the Write started the hook, which exited 0.
    ((call, hooks),) = hook_starts(run.events)
    assert call["name"] == "Write" and len(hooks) == 1 and hooks[0]["exit_code"] == 0, (call, hooks)
    assert "problem" not in told_after_last_call(fake_model.requests_for("good")[-1])


def test_spawn_at_the_cap_is_denied_with_the_reason(
        repo: Path, pyz: Path, envoy: Envoy, fake_model: FakeModel, run_claude: Callable[..., Any]) -> None:
    install(repo, pyz)
    # The cap where the seed says to set it: the env block of .claude/settings.json
    # (Claude Code applies it to hooks and Bash commands, over the process environment).
    settings = repo / ".claude" / "settings.json"
    settings.write_text(settings.read_text().replace('"PARALLEL_MAX_WORKERS": "3"', '"PARALLEL_MAX_WORKERS": "1"'))
    release = threading.Event()
    busy = fake_model.script("busy", [delay(60.0, until=release), text("done")])
    assert envoy("parallel", "spawn", "--branch", "feat/busy", "--task", f"{busy} hold").code == 0
    command = "python3 .claude/envoy.pyz parallel spawn --branch feat/more --task 'more work'"
    marker = fake_model.script("orchestrator", [bash(command), text("refused, as expected")])
    run = run_claude(f"{marker} spawn another", "--permission-mode", "acceptEdits", cwd=repo)
    release.set()
    assert run.returncode == 0, run.stderr
    (denied,) = fake_model.tool_results("orchestrator")
    assert denied.is_error
    assert "1 of 1 workers are already running" in denied.content and "feat-busy" in denied.content
    assert "--queue" in denied.content
    assert not git(repo, "branch", "--list", "feat/more").strip()


HOOK_EVENTS = ("--include-hook-events", "--permission-mode", "bypassPermissions")


def test_unrelated_tool_calls_start_no_hook_process(
        repo: Path, pyz: Path, fake_model: FakeModel, run_claude: Callable[..., Any]) -> None:
    install(repo, pyz)
    readme = str(repo / "README")
    marker = fake_model.script("unrelated", [
        bash("ls"), bash("git status --short && echo envoy parallel status"),
        bash("python3 .claude/envoy.pyz parallel status"),
        write("notes.txt", "notes\n"), write("docs/guide.md", "# A guide, not a skill\n"),
        tool("Read", {"file_path": readme}), edit(readme, "hello", "hello again"),
        text("done")])
    run = run_claude(f"{marker} unrelated work", *HOOK_EVENTS, cwd=repo)
    assert run.returncode == 0, run.stderr
    calls = hook_starts(run.events)
    assert [call["name"] for call, _ in calls] == ["Bash", "Bash", "Bash", "Write", "Write", "Read", "Edit"]
    assert [len(hooks) for _, hooks in calls] == [0] * 7, calls
    assert not any(r.is_error for r in fake_model.tool_results("unrelated"))
    assert (repo / "README").read_text() == "hello again\n"


# Every way of calling spawn that enforce-limits recognises, each behind the `if` filter.
SPAWN_FORMS = [
    "envoy parallel spawn --branch f1 --task t",
    "./dist/envoy.pyz parallel spawn --branch f2 --task t",
    "python3 .claude/envoy.pyz parallel spawn --branch f3 --task t",
    "PARALLEL_MAX_WORKERS=9 python3 .claude/envoy.pyz --json parallel spawn --branch f4 --task t",
    "cd . && git status --short && python3 .claude/envoy.pyz parallel spawn --branch f5 --task 'a && b'",
    "sh -c 'python3 .claude/envoy.pyz parallel spawn --branch f6 --task t'",
    "true\npython3 .claude/envoy.pyz parallel spawn --branch f7 --task t",
    "timeout 60 python3 -I -S .claude/envoy.pyz parallel spawn --branch f8 --task t",
]


def test_enforce_limits_still_runs_for_every_form_of_spawn(
        repo: Path, pyz: Path, fake_model: FakeModel, run_claude: Callable[..., Any],
        claude_env: dict[str, str]) -> None:
    install(repo, pyz)
    marker = fake_model.script("forms", [*(bash(form) for form in SPAWN_FORMS), text("done")])
    # As a worker's session: envoy denies every spawn, so each denial shows envoy ran.
    run = run_claude(f"{marker} spawn", *HOOK_EVENTS, cwd=repo, env={**claude_env, "ENVOY_WORKER": "e2e"})
    assert run.returncode == 0, run.stderr
    calls = hook_starts(run.events)
    assert [call["input"]["command"] for call, _ in calls] == SPAWN_FORMS
    for call, hooks in calls:
        assert len(hooks) == 1 and hooks[0]["exit_code"] == 0, (call, hooks)
        assert '"permissionDecision": "deny"' in hooks[0]["stdout"], (call, hooks)
    results = fake_model.tool_results("forms")
    assert len(results) == len(SPAWN_FORMS)
    assert all(r.is_error and "workers do not start workers" in r.content for r in results), results
    assert git(repo, "branch", "--list", "f*") == ""


def test_validate_skill_still_runs_for_agents_and_commands_written_or_edited(
        repo: Path, pyz: Path, fake_model: FakeModel, run_claude: Callable[..., Any]) -> None:
    install(repo, pyz)
    command = str(repo / ".claude" / "commands" / "parallel-discovery.md")
    agent = write(".claude/agents/reviewer.md", "---\nname: Bad Agent\n---\nReview things.\n")
    broken_command = edit(command, "description:", "colour: red\ndescription:")
    marker = fake_model.script("files", [agent, text("agent written")])
    assert run_claude(f"{marker} agent", *HOOK_EVENTS, cwd=repo).returncode == 0
    told = told_after_last_call(fake_model.requests_for("files")[-1])
    assert "reviewer.md has 1 problem" in told and "description is missing" in told, told[:2000]
    marker = fake_model.script("command", [tool("Read", {"file_path": command}), broken_command, text("edited")])
    run = run_claude(f"{marker} command", *HOOK_EVENTS, cwd=repo)
    assert run.returncode == 0, run.stderr
    assert [len(hooks) for _, hooks in hook_starts(run.events)] == [0, 1]  # the Read starts nothing
    told = told_after_last_call(fake_model.requests_for("command")[-1])
    assert "unknown key 'colour'" in told, told[:2000]


def test_a_worker_with_an_untracked_pyz_has_working_hooks_and_commits(
        repo: Path, pyz: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    install(repo, pyz)  # init puts .claude/envoy.pyz in .gitignore: the commit leaves it out
    assert git(repo, "ls-files", ".claude/envoy.pyz") == "" and (repo / ".claude" / "envoy.pyz").is_file()
    marker = fake_model.script("worker", [
        bash("python3 .claude/envoy.pyz parallel spawn --branch nested --task more"),
        bash("python3 .claude/envoy.pyz parallel status"),
        write("work.txt", "the work\n"), bash("git add work.txt && git commit -qm 'the work'"),
        text("committed")])
    spawned = envoy("parallel", "spawn", "--branch", "feat/work", "--wait", "--timeout", "120",
                    "--task", f"{marker} do the work")
    # It succeeded; the spawn envoy's hook refused is a refusal a person may want to see.
    # 2.1.332 words the hook's deny as a hook's (a hook block); 2.1.197 hands the model
    # only the reason (a denial, from permission_denials).
    assert spawned.code == 3 and spawned.data["state"] == "succeeded", spawned.stdout
    (reason,) = spawned.data["attention"]
    assert reason in (f"{kind}: Bash(python3 .claude/envoy.pyz parallel spawn --branch nested --task more)"
                      for kind in ("denied", "hook blocked")), spawned.stdout
    denied, status, wrote, committed = fake_model.tool_results("worker")
    assert denied.is_error and "workers do not start workers" in denied.content  # its envoy hook ran
    assert not status.is_error and '"feat-work"' in status.content  # its own envoy ran
    assert not committed.is_error, committed.content
    assert git(repo, "log", "-1", "--format=%s", "feat/work").strip() == "the work"
    assert git(repo, "show", "feat/work:work.txt") == "the work\n"


def test_without_the_pyz_every_tool_call_goes_on(
        repo: Path, pyz: Path, fake_model: FakeModel, run_claude: Callable[..., Any]) -> None:
    install(repo, pyz)
    (repo / ".claude" / "envoy.pyz").unlink()
    marker = fake_model.script("gone", [
        bash("python3 .claude/envoy.pyz parallel spawn --branch x --task y"), bash("echo ran > ran.txt"),
        write(".claude/skills/pdf-tools/SKILL.md", BAD_SKILL), text("done")])
    run = run_claude(f"{marker} work", *HOOK_EVENTS, cwd=repo)
    assert run.returncode == 0, run.stderr
    spawn, echo, skill = fake_model.tool_results("gone")
    assert "can't open file" in spawn.content  # the hook let it run; python3 then failed on the command itself
    assert not echo.is_error and (repo / "ran.txt").read_text() == "ran\n"
    assert not skill.is_error and (repo / ".claude" / "skills" / "pdf-tools" / "SKILL.md").is_file()
    hooks = [hook for _, started in hook_starts(run.events) for hook in started]
    assert [h["exit_code"] for h in hooks] == [1, 1]  # the spawn's and the skill's: non-blocking, with the reason
    assert all("skipped (cannot read " in h["stderr"] for h in hooks)
    log = (repo / ".git" / "envoy" / "envoy.log").read_text()
    assert "hook enforce-limits: cannot read" in log and "hook validate-skill: cannot read" in log
