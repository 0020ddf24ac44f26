"""The orchestrating session is told when a worker it spawned ends, without polling:
`envoy init`'s worker-ended hook (PostToolUse on a spawn, `if`-filtered, asyncRewake)
wakes the real claude CLI with how the worker ended, on every pinned version.
Measured: a session fed by `--input-format stream-json` (as an SDK or IDE drives it)
runs the hook in the background and is woken; a one-shot `claude -p` runs it in the
foreground, so the hook returns at once there (that session uses `wait`)."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from fake_model import FakeModel, bash, delay, text, write

from conftest import Envoy, git, run_envoy

SPAWN = "python3 .claude/envoy.pyz parallel spawn --branch feat/w --task '{marker} work'"


def install(repo: Path, pyz: Path) -> None:
    result = run_envoy("init", cwd=repo, command=[sys.executable, str(pyz)])
    assert result.code == 0, result.stdout
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "envoy init")


def worker_script(fake_model: FakeModel, release: threading.Event) -> str:
    return fake_model.script("worker", [delay(120.0, until=release), write("w.txt", "w\n"),
                                        bash("git add w.txt && git commit -qm 'add w'"), text("worker done")])


def state_of(repo: Path, name: str) -> str:
    return str(json.loads((repo / ".git/envoy/workers" / f"{name}.json").read_text())["state"])


def boss_requests(fake_model: FakeModel, count: int, timeout: float) -> bool:
    return fake_model.wait_for(lambda _: len(fake_model.requests_for("boss")) >= count, timeout)


def test_a_streaming_session_is_woken_with_how_its_worker_ended(
        repo: Path, pyz: Path, fake_model: FakeModel, claude_env: dict[str, str], claude_bin: str) -> None:
    install(repo, pyz)
    release = threading.Event()
    worker = worker_script(fake_model, release)
    fake_model.script("boss", [bash(SPAWN.format(marker=worker)), text("spawned; I will be told"), text("noted")])
    argv = [claude_bin, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
            "--permission-mode", "bypassPermissions"]
    with tempfile.TemporaryFile("w+") as out:
        session = subprocess.Popen(argv, cwd=repo, env={**claude_env, "ENVOY_CLAUDE": claude_bin}, text=True,
                                   stdin=subprocess.PIPE, stdout=out, stderr=out)
        try:
            assert session.stdin is not None
            prompt = {"type": "user", "message": {"role": "user", "content": "[script:boss] spawn a worker"}}
            session.stdin.write(json.dumps(prompt) + "\n")
            session.stdin.flush()
            # The spawn's tool result reached the model while the worker still runs: the hook
            # waits in the background, it does not hold the spawn.
            assert boss_requests(fake_model, 2, 120)
            assert state_of(repo, "feat-w") == "running"
            release.set()
            assert boss_requests(fake_model, 3, 120), "the session was not woken when its worker ended"
            told = fake_model.requests_for("boss")[2].told
            assert "worker feat-w ended: succeeded" in told and "1 commit(s)" in told, told[-2000:]
            assert "envoy parallel results --worker feat-w" in told
        finally:
            if session.stdin:
                session.stdin.close()
            try:
                session.wait(60)
            except subprocess.TimeoutExpired:
                session.kill()
                session.wait()


def test_a_one_shot_session_is_not_held_by_the_hook(
        repo: Path, pyz: Path, envoy: Envoy, fake_model: FakeModel, start_claude: Callable[..., Any],
        claude_env: dict[str, str], claude_bin: str) -> None:
    install(repo, pyz)
    release = threading.Event()
    worker = worker_script(fake_model, release)
    fake_model.script("boss", [bash(SPAWN.format(marker=worker)), text("spawned; wait comes next")])
    process = start_claude("[script:boss] spawn a worker", "--permission-mode", "bypassPermissions", cwd=repo,
                           env={**claude_env, "ENVOY_CLAUDE": claude_bin})
    assert boss_requests(fake_model, 2, 120)
    assert state_of(repo, "feat-w") == "running"  # the spawn returned at once, the worker still runs
    run = process.finish(120)
    assert run.returncode == 0 and run.result["result"] == "spawned; wait comes next"
    release.set()
    assert envoy("parallel", "wait", "--worker", "feat-w", "--timeout", "120").code == 0
    assert len(fake_model.requests_for("boss")) == 2
