"""The README's quick start, run verbatim in a new repository, with the real `claude`
CLI (each pinned version) on PATH and the fake model behind it: what a newcomer
types is what works, on a machine with no git identity."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from fake_model import FakeModel, bash, text, tool, write

from conftest import REPO_ROOT, git


def quick_start() -> str:
    """The one ```sh block of the README's "Quick start" section."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the quick start is one sh block"
    return str(blocks[0])


def test_the_quick_start_is_about_thirty_lines_and_uses_the_alias():
    block = quick_start()
    assert 8 <= len(block.splitlines()) <= 30
    assert "alias envoy='python3 .claude/envoy.pyz'" in block and "--allowed-tools" in block


def test_the_readme_quick_start_runs_verbatim_in_a_new_repository(tmp_path: Path, claude_bin: str, fake_model: FakeModel,
                                                                   claude_env: dict[str, str]) -> None:
    env = dict(claude_env)  # the fake model as the API, its own HOME
    home = Path(env["HOME"])
    (home / ".gitconfig").unlink()  # a fresh machine: no git identity anywhere
    env["GIT_CONFIG_GLOBAL"] = str(home / ".gitconfig-empty")
    Path(env["GIT_CONFIG_GLOBAL"]).write_text("")
    env.pop("ENVOY_CLAUDE", None)  # the real `claude`, found on PATH as a user's is
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "claude").symlink_to(claude_bin)
    env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
    # envoy's own checkout, at ~/envoy, as the quick start expects it
    (home / "envoy").mkdir()
    shutil.copytree(REPO_ROOT / "envoy.pyz.d", home / "envoy" / "envoy.pyz.d",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO_ROOT / "build.py", home / "envoy" / "build.py")
    # the newcomer's repository: a typo and a test that finds it
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("Teh project\n")
    (project / "test_readme.py").write_text(
        "from pathlib import Path\n\n\ndef test_no_typo():\n    assert 'Teh' not in Path('README.md').read_text()\n")
    git(project, "init", "-q")
    git(project, "symbolic-ref", "HEAD", "refs/heads/main")
    git(project, "add", "-A")
    git(project, "-c", "user.name=Someone", "-c", "user.email=someone@example.invalid", "commit", "-qm", "init")
    readme = tmp_path / "project-claude-worker-fix-readme-typo" / "README.md"  # where the worker's checkout is
    fake_model.script("default", [
        tool("Read", {"file_path": str(readme)}),  # Claude Code writes over a file only once it was read
        write(str(readme), "The project\n"),
        bash("python3 -m pytest -q"),
        bash("git add -A && git commit -qm 'Fix the typo in README.md'"),
        text("Fixed the typo in README.md; the tests pass."),
    ])

    proc = subprocess.run(["bash", "-e", "-O", "expand_aliases", "-c", quick_start()], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # The worker ran the project's tests (allowed by the spawn's rule, not denied) and committed.
    (read, wrote, tests, commit) = fake_model.tool_results("default")[:4]
    assert not read.is_error and not wrote.is_error, (read.content, wrote.content)
    assert not tests.is_error and "1 passed" in tests.content, tests.content
    assert not commit.is_error, commit.content
    # land moved main, and the checked-out main with it, to the checked work; cleanup removed the worker.
    assert git(project, "log", "-1", "--format=%s", "main").strip() == "Fix the typo in README.md"
    assert (project / "README.md").read_text() == "The project\n"
    assert git(project, "status", "--porcelain") == ""
    assert not list(tmp_path.glob("project-claude-worker-*"))
    # What the quick start set up: an executable pyz kept out of git, settings committed, a local identity.
    assert os.access(project / ".claude" / "envoy.pyz", os.X_OK)
    assert ".claude/settings.json" in git(project, "ls-files") and ".claude/envoy.pyz" not in git(project, "ls-files")
    assert git(project, "config", "--local", "user.email").strip()
