"""The hooks installed by `envoy init`, run by the real claude CLI: a bad
SKILL.md is blocked with its problems fed back to the model, and a spawn at
the cap is denied with the reason."""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Callable

from fake_model import FakeModel, bash, delay, text, write

from conftest import git, run_envoy
from conftest import Envoy

BAD_SKILL = "---\nname: My_Claude_Skill\ndescription: <b>does things</b>\ncolour: red\n---\nBody.\n"


def install(repo: Path, pyz: Path) -> None:
    result = run_envoy("init", cwd=repo, command=[sys.executable, str(pyz)])
    assert result.code == 0, result.stdout
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "envoy init")


def test_bad_skill_is_blocked_and_the_model_gets_the_problems(
        repo: Path, pyz: Path, fake_model: FakeModel, run_claude: Callable[..., Any]) -> None:
    install(repo, pyz)
    marker = fake_model.script("skill", [write(".claude/skills/pdf-tools/SKILL.md", BAD_SKILL), text("wrote it")])
    run = run_claude(f"{marker} write a skill", "--permission-mode", "bypassPermissions", cwd=repo)
    assert run.returncode == 0, run.stderr
    # The tool ran, the hook then blocked: its stderr reaches the model in the next request.
    follow_up = fake_model.requests_for("skill")[-1]
    fed_back = follow_up.user_text + " ".join(r.content for r in follow_up.tool_results)
    for problem in ("My_Claude_Skill", "pdf-tools", "claude", "<", "colour"):
        assert problem in fed_back, (problem, fed_back[:2000])
    assert "fix:" in fed_back


def test_good_skill_passes_silently(repo: Path, pyz: Path, fake_model: FakeModel,
                                   run_claude: Callable[..., Any]) -> None:
    install(repo, pyz)
    good = "---\nname: pdf-tools\ndescription: Fill and merge PDF forms.\n---\nBody.\n"
    marker = fake_model.script("good", [write(".claude/skills/pdf-tools/SKILL.md", good), text("wrote it")])
    assert run_claude(f"{marker} write a skill", "--permission-mode", "bypassPermissions", cwd=repo).returncode == 0
    follow_up = fake_model.requests_for("good")[-1]
    assert "problem" not in follow_up.user_text + " ".join(r.content for r in follow_up.tool_results)


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
