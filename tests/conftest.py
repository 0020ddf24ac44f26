"""Shared fixtures: a hermetic environment, real git repositories in tmp_path,
and envoy run as a user runs it (a subprocess, JSON because piped).

The only fake is the agent: tests/fake_claude.py, named by ENVOY_CLAUDE."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ENVOY_SOURCE = REPO_ROOT / "envoy.pyz.d"
FAKE_CLAUDE = Path(__file__).resolve().parent / "fake_claude.py"

sys.path.insert(0, str(ENVOY_SOURCE / "vendor"))
sys.path.insert(0, str(ENVOY_SOURCE))


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's HOME, git config or envoy/Claude settings."""
    home = tmp_path / "home"
    home.mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Test\n\temail = test@example.com\n"
                         "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    for var in list(os.environ):
        if var.startswith(("ENVOY_", "PARALLEL_", "GIT_", "CLAUDE", "ANTHROPIC_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("ENVOY_CLAUDE", str(FAKE_CLAUDE))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Any:
    """A repository with one commit on main, in tmp_path/repo (worktrees go beside it)."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "README").write_text("hello\n")
    git(path, "add", "README")
    git(path, "commit", "-qm", "init")
    yield path
    kill_workers(path)


def kill_workers(repo: Path) -> None:
    """Stop any supervisor a test left running (its agent dies with it)."""
    workers = repo / ".git" / "envoy" / "workers"
    for file in workers.glob("*.json") if workers.is_dir() else []:
        try:
            record = json.loads(file.read_text())
        except ValueError:
            continue
        if not isinstance(record, dict):  # a test's broken record
            continue
        for key in ("agent_pid", "supervisor_pid"):
            pid = record.get(key)
            if pid and record.get("state") in ("starting", "running"):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def data(self) -> Any:
        document = self.json
        assert document["status"] == "success", document
        return document["data"]

    @property
    def error(self) -> dict[str, Any]:
        document = self.json
        assert document["status"] == "error", document
        return document["error"]


def run_envoy(*args: str, cwd: Path, input: str | None = None, env: dict[str, str] | None = None,
              command: list[str] | None = None, timeout: float = 120) -> Result:
    proc = subprocess.run([*(command or [sys.executable, str(ENVOY_SOURCE)]), *args], cwd=cwd, input=input,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return Result(proc.returncode, proc.stdout, proc.stderr)


Envoy = Callable[..., Result]


@pytest.fixture
def envoy(repo: Path) -> Envoy:
    """envoy in the repo: envoy("parallel", "status") -> Result."""
    def call(*args: str, cwd: Path | None = None, **kwargs: Any) -> Result:
        return run_envoy(*args, cwd=cwd or repo, **kwargs)
    return call


def wait_until(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def worker_state(envoy: Callable[..., Result], name: str) -> str:
    return envoy("parallel", "status", "--worker", name).data["workers"][0]["state"]


def wait_finished(envoy: Callable[..., Result], name: str, timeout: float = 30) -> dict[str, Any]:
    def finished() -> Any:
        view = envoy("parallel", "status", "--worker", name).data["workers"][0]
        return view if view["state"] in ("succeeded", "failed", "lost") else None
    return wait_until(finished, timeout)
