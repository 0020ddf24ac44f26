"""Shared fixtures: a hermetic environment, real git repositories in tmp_path,
and envoy run as a user runs it (a subprocess, JSON because piped).

The only fake is the agent: tests/fake_claude.py, named by ENVOY_CLAUDE."""
from __future__ import annotations

import json
import os
import shutil
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

# A suite started from `nohup ... &` (or any background job of a non-interactive shell)
# inherits SIGINT ignored, and an ignored signal stays ignored across exec: every envoy
# a test starts would ignore the Ctrl-C it is sent, and Python would never install its
# KeyboardInterrupt handler. Caught here, it is reset to the default in every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


def watchers(repo: Path) -> list[int]:
    """The remote watchers (`envoy _ray_watch`) running for this repository."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if pid.isdigit() else []
        except OSError:
            continue
        if b"_ray_watch" in argv and str(repo / ".git").encode() in argv:
            found.append(int(pid))
    return found


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
        return view if view["state"] in ("succeeded", "failed", "lost", "stopped") else None
    return wait_until(finished, timeout)


# -- helpers several test files share ------------------------------------------
def build(tmp_path: Path, epoch: str) -> Path:
    """Build from a fresh copy of the sources, so tests never touch the checkout's dist/."""
    copy = tmp_path / f"src-{len(list(tmp_path.glob('src-*')))}"
    shutil.copytree(REPO_ROOT / "envoy.pyz.d", copy / "envoy.pyz.d",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO_ROOT / "build.py", copy / "build.py")
    subprocess.run([sys.executable, "build.py"], cwd=copy, check=True, capture_output=True,
                   env={**os.environ, "SOURCE_DATE_EPOCH": epoch})
    return copy / "dist" / "envoy.pyz"


def spawn_many(repo: Path, count: int, task: str, env: dict[str, str] | None = None) -> list[Result]:
    """Start `count` spawns at once and collect their results."""
    procs = [subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "spawn", "--branch", f"race/{i}",
                               "--task", task], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, **(env or {})})
             for i in range(count)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert "Traceback" not in err, err
        results.append(Result(proc.returncode, out, err))
    return results


def max_overlap(stamps: Path) -> int:
    events = []
    for start in stamps.glob("*.start"):
        begin = float(start.read_text())
        end_file = start.with_suffix(".end")
        end = float(end_file.read_text()) if end_file.exists() else float("inf")
        events += [(begin, 1), (end, -1)]
    running = peak = 0
    for _, delta in sorted(events):
        running += delta
        peak = max(peak, running)
    return peak


def spawn_done(envoy, branch: str, task: str, *args: str) -> dict:
    record = envoy("parallel", "spawn", "--branch", branch, "--task", task, *args).data
    wait_finished(envoy, record["name"])
    return record


def hold(state: Any, *whats: str) -> subprocess.Popen:
    """A child process that takes envoy's locks `whats` (in store.State `state`), says
    so, and sleeps until killed: a live holder, as a supervisor is."""
    child = subprocess.Popen([sys.executable, "-c", f"""
import sys, time; sys.path[:0] = [{str(ENVOY_SOURCE)!r}, {str(ENVOY_SOURCE / 'vendor')!r}]
from pathlib import Path
from envoy.worker import locks, store
state = store.State(Path({str(state.root.parent)!r}))
held = [locks.lock(state, what) for what in {list(whats)!r}]  # kept: a collected lock is released
for lock in held:
    lock.acquire(timeout=5)
print("held", flush=True)
time.sleep(120)
"""], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)


SAMPLES = Path(__file__).parent / "samples"  # real Claude Code output


def bounded(code: str, limit: int = 1 << 30) -> subprocess.CompletedProcess:
    """Python `code` with envoy importable and `limit` bytes of address space: a reader
    that loads a whole larger file runs out of it."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    source = ENVOY_SOURCE
    return subprocess.run([sys.executable, "-c", f"import sys; sys.path[:0] = [{str(source)!r}, "
                           f"{str(source / 'vendor')!r}]\n" + code], capture_output=True, text=True,
                          timeout=60, preexec_fn=cap)


def fleet_of_records(repo, tmp_path, count=200, running=10, failed=20, attention=10, merged=100):
    """`count` worker records as a fleet leaves them (no agents): the first `running` held
    by a live process (as a supervisor holds its lock), then failed ones, ones with
    `attention`, merged ones, and the rest succeeded and not merged."""
    from envoy.worker import locks
    from envoy.worker.store import State

    state = State(repo / ".git")
    state.ensure()
    sha = git(repo, "rev-parse", "HEAD").strip()
    for i in range(count):
        name = f"w{i:03d}"
        kind = ("running" if i < running else "failed" if i < running + failed
                else "attention" if i < running + failed + attention
                else "merged" if i < running + failed + attention + merged else "succeeded")
        record = {"name": name, "branch": name, "base": "main", "base_sha": sha,
                  "path": str(tmp_path / f"claude-worker-{name}"), "state": "succeeded",
                  "session_id": "00000000-0000-4000-8000-%012d" % i, "created_at": "2026-01-01T00:00:00Z",
                  "started_at": "2026-01-01T00:00:%02dZ" % (i % 60), "finished_at": "2026-01-01T00:10:00Z",
                  "duration_s": 600.0 - i % 60, "exit_code": 0, "cost_usd": 0.0123, "num_turns": 7,
                  "result": "Did the thing. " * 20, "runs": [{}], "options": {}, "run": 1}
        if kind == "running":
            record.update(state="running", finished_at=None, duration_s=None, started_at=f"2026-01-01T00:0{i}:00Z")
        elif kind == "failed":
            record.update(state="failed", reason="error_max_turns", exit_code=1, error="the agent hit --max-turns " * 5)
        elif kind == "attention":
            record.update(attention=[f"uncommitted: notes-{i}.md", "denied: Bash(sed -i s/a/b/ x)"],
                          left={"commits": 1, "uncommitted": 1, "denied": 1})
        elif kind == "merged":
            record.update(merged_into="main", merged_sha=sha, merged_at="2026-01-01T00:11:00Z")
        state.write(record)
    return hold(state, *(locks.worker(f"w{i:03d}") for i in range(running)))


# -- the hook's corpus: a Bash tool call, commands that spawn and commands that do not
def bash_payload(command: str, cwd: Path | str = ".") -> dict:
    return {"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash", "cwd": str(cwd),
            "tool_input": {"command": command, "description": "d"}, "tool_use_id": "toolu_1"}


SPAWNS = [
    "envoy parallel spawn --branch x --task y",
    "./dist/envoy.pyz parallel spawn --branch x --task y",
    "python3 .claude/envoy.pyz parallel spawn --branch x --task y",
    "python3 -I -S .claude/envoy.pyz --json parallel spawn --branch x --task y",
    "PARALLEL_MAX_WORKERS=9 envoy parallel spawn --branch x --task y",
    "env FOO=1 envoy parallel spawn --branch x",
    "cd sub && git pull && envoy parallel spawn --branch x --task 'a && b'",
    "git status; envoy parallel spawn --branch x --task y",
    "bash -c 'envoy parallel spawn --branch x --task y'",
    "sh bin/envoy parallel spawn --branch x",
    "timeout 60 /usr/local/bin/envoy parallel spawn --branch x",
    "envoy parallel spawn --branch x --task y\nenvoy parallel status",
    "uv run envoy parallel spawn --branch x",
]
NOT_SPAWNS = [
    "envoy parallel status",
    "envoy parallel results --worker spawn",
    "echo envoy parallel spawn",
    "git commit -m 'envoy parallel spawn'",
    "grep -r spawn .",
    "python3 -c 'import os; os.spawnl'",
    "envoy parallel cleanup --all",
    "npm run spawn",
    "ls 'unbalanced",
]


# -- a discovery stream's structured answer, as the fake agent gives it
def structured(*found: tuple[str, str, list[str]], questions: tuple[str, ...] = ()) -> str:
    return json.dumps({"findings": [{"title": t, "detail": d, "files": f} for t, d, f in found],
                       "open_questions": list(questions)})
