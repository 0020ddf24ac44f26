"""envoy parallel path --worker X: the bare path, for cd "$(...)"."""
from __future__ import annotations

import subprocess
import sys

from conftest import ENVOY_SOURCE, spawn_done


def test_path_prints_the_bare_worktree_path_even_into_a_pipe(repo, envoy):
    record = spawn_done(envoy, "fix/x", "@result ok")
    result = envoy("parallel", "path", "--worker", "fix-x")
    assert result.code == 0 and result.stdout == record["path"] + "\n"
    assert envoy("parallel", "path", "--worker", "fix/x").stdout == record["path"] + "\n"  # by branch too
    assert envoy("parallel", "path", "--worker", "fix-x", "--json").data["path"] == record["path"]
    shell = subprocess.run(["sh", "-c", f'cd "$("{sys.executable}" "{ENVOY_SOURCE}" parallel path --worker fix-x)" && pwd -P'],
                           cwd=repo, capture_output=True, text=True)
    assert shell.returncode == 0 and shell.stdout.strip().endswith("repo-claude-worker-fix-x")


def test_path_of_an_unknown_worker_fails_on_stderr_with_did_you_mean(repo, envoy):
    spawn_done(envoy, "fix/x", "@result ok")
    result = envoy("parallel", "path", "--worker", "fix-y")
    assert result.code == 1 and result.stdout == ""
    assert "did you mean 'fix-x'" in result.stderr


def test_path_of_a_queued_worker_says_it_has_no_worktree_yet(repo, envoy, tmp_path):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "busy", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    envoy("parallel", "spawn", "--branch", "later", "--queue", "--task", "@result ok", env=env)
    result = envoy("parallel", "path", "--worker", "later")
    assert result.code == 1 and "queued" in result.stderr and result.stdout == ""
    (tmp_path / "go").touch()
