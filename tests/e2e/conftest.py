"""Fixtures for end-to-end tests that run the real `claude` CLI against FakeModel.

Every test that uses the CLI runs once per pinned Claude Code version
(.ci/claude-versions: the oldest envoy supports and the newest tested), each
installed by `.ci/install-claude` into `<repo>/.e2e/<version>/` on first use;
test ids name the version (`[claude-2.1.332]`). With $ENVOY_E2E_CLAUDE set,
only that build runs. A CLI that cannot be installed skips its tests, loudly,
except under CI (CI=true) or with ENVOY_E2E_REQUIRE=1, where it fails them.
Every run is hermetic: its own HOME, the fake server as the API, nothing
inherited from an enclosing Claude Code session.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
# Make `import fake_model` work whatever pytest's --import-mode is.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from fake_model import FakeModel  # noqa: E402

from conftest import REPO_ROOT as _ROOT, Envoy, Result, run_envoy  # noqa: E402  (tests/conftest.py)

INSTALL_CLAUDE = REPO_ROOT / ".ci" / "install-claude"


def pinned_versions() -> list[str]:
    """The versions in .ci/claude-versions (one a line, # comments), oldest first."""
    lines = (REPO_ROOT / ".ci" / "claude-versions").read_text().splitlines()
    return [v for v in (line.split("#", 1)[0].strip() for line in lines) if v]


def installed_claude(version: str) -> Path:
    return REPO_ROOT / ".e2e" / version / "node_modules" / ".bin" / "claude"


# The builds every CLI test runs on: $ENVOY_E2E_CLAUDE alone, else each pinned version.
OVERRIDE = os.environ.get("ENVOY_E2E_CLAUDE")
CLAUDE_BUILDS = [OVERRIDE] if OVERRIDE else pinned_versions()


def _build_id(build: str) -> str:
    return "claude-" + (build if build != OVERRIDE else "ENVOY_E2E_CLAUDE")


# Flags of every headless run: prompt on stdin, one JSON event per line.
STREAM_JSON = ("-p", "--output-format", "stream-json", "--verbose")

# Keeps the CLI away from everything but the fake server, and fast to fail.
HERMETIC_ENV = {
    "ANTHROPIC_API_KEY": "sk-test-dummy",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    # Default retries turn one scripted 500 into minutes of back-off.
    "CLAUDE_CODE_MAX_RETRIES": "0",
    # Tests run as root, where bypassPermissions refuses to start without it.
    "IS_SANDBOX": "1",
}


def _missing_claude_message(path: Path, version: Optional[str]) -> str:
    how = (f"Run `bash .ci/install-claude {version}` (installs @anthropic-ai/claude-code@{version} "
           f"into .e2e/{version}/)" if version else "Check $ENVOY_E2E_CLAUDE")
    return f"!!! REAL claude CLI NOT INSTALLED at {path}: its end-to-end tests did not run. {how}. !!!"


def _required() -> bool:
    """Whether a missing CLI fails the run: under CI, or when asked to."""
    return bool(os.environ.get("ENVOY_E2E_REQUIRE")) or os.environ.get("CI", "").lower() in ("true", "1")


_install_failures: dict[str, str] = {}  # message -> install log, for the end-of-run summary


@pytest.fixture(scope="session", params=CLAUDE_BUILDS, ids=_build_id)
def claude_bin(request: pytest.FixtureRequest) -> str:
    """Path of the real `claude` executable of this run's build (see the module docstring)."""
    build = str(request.param)
    version = None if build == OVERRIDE else build
    path = Path(build) if version is None else installed_claude(build)
    install_log = ""
    if version is not None and not (path.is_file() and os.access(path, os.X_OK)):
        install = subprocess.run(["bash", str(INSTALL_CLAUDE), version],
                                 capture_output=True, text=True, timeout=600)
        install_log = (install.stdout + install.stderr).strip()[-2000:]
    if not (path.is_file() and os.access(path, os.X_OK)):
        message = _missing_claude_message(path, version)
        _install_failures[message] = install_log
        if _required():
            pytest.fail(message + "\n" + install_log)
        pytest.skip(message)
    if version is not None:
        reported = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "DISABLE_AUTOUPDATER": "1"}).stdout
        assert re.match(rf"{re.escape(version)}\b", reported.strip()), (path, reported)
    return str(path)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it loudly at the end of the run when a real CLI could not be installed."""
    for message, log in _install_failures.items():
        terminalreporter.section("REAL claude CLI MISSING", sep="!", red=True, bold=True)
        terminalreporter.write_line(message)
        if log:
            terminalreporter.write_line(log)


@pytest.fixture
def fake_model() -> Iterator[FakeModel]:
    """A started FakeModel, stopped at teardown."""
    with FakeModel() as server:
        yield server


def claude_environment(base_url: str, home: Path) -> dict[str, str]:
    """Environment for one hermetic CLI run against `base_url`.

    Starts from os.environ without ANTHROPIC_* and CLAUDE* (so neither a real
    key nor an enclosing session's CLAUDECODE=1 leaks in), then isolates HOME
    and the XDG dirs, where the CLI keeps settings, transcripts and caches.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC", "CLAUDE"))
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(HERMETIC_ENV)
    env["ANTHROPIC_BASE_URL"] = base_url
    env["HOME"] = str(home)
    for name, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"),
                      ("XDG_DATA_HOME", ".local/share"), ("XDG_STATE_HOME", ".local/state")):
        env[name] = str(home / sub)
    # A proxy from the outer environment must not swallow loopback traffic.
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    # The Bash tool commits in tests; the isolated HOME has no identity.
    gitconfig = home / ".gitconfig"
    if not gitconfig.exists():
        gitconfig.write_text("[user]\n\tname = E2E Test\n\temail = e2e@example.invalid\n")
    return env


@pytest.fixture
def claude_env(tmp_path: Path, fake_model: FakeModel) -> dict[str, str]:
    """Environment variables for running the real CLI against `fake_model`."""
    return claude_environment(fake_model.url, tmp_path / "claude-home")


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh git repository (branch main, one commit) to run claude in
    (beside, not at, tmp_path/repo: tests/conftest.py's `repo` lives there)."""
    repo = tmp_path / "claude-repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=E2E Test", "-c", "user.email=e2e@example.invalid"]
    subprocess.run(git[:3] + ["init", "-q", "-b", "main"], check=True)
    (repo / "README.md").write_text("e2e test repo\n")
    subprocess.run(git + ["add", "README.md"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "initial"], check=True)
    return repo


# --------------------------------------------------------------------------
# Running the CLI


@dataclass
class ClaudeRun:
    """The outcome of one `claude -p --output-format stream-json` run."""

    returncode: int
    stdout: str
    stderr: str
    duration: float  # seconds, wall clock
    events: list[dict[str, Any]] = field(default_factory=list)  # parsed stdout lines

    @property
    def result(self) -> dict[str, Any]:
        """The final `type: result` event (fails the test if there is none)."""
        for event in reversed(self.events):
            if event.get("type") == "result":
                return dict(event)
        raise AssertionError(f"no result event; stdout={self.stdout!r} stderr={self.stderr!r}")

    @property
    def init(self) -> dict[str, Any]:
        return next(e for e in self.events if e.get("type") == "system" and e.get("subtype") == "init")

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


def _parse_events(stdout: str) -> list[dict[str, Any]]:
    events = []
    for line in stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue  # stream-json output is JSON lines; anything else is noise
        if isinstance(value, dict):
            events.append(value)
    return events


class ClaudeProcess:
    """A started CLI run; finish() waits for it (so several can overlap)."""

    def __init__(self, argv: Sequence[str], prompt: str, cwd: Path, env: Mapping[str, str]) -> None:
        self.argv = list(argv)
        # Files, not pipes, on all three streams: the process gets its whole
        # prompt now and never blocks on a full pipe while nobody reads it
        # (several runs go on at once while the test waits on one of them).
        self._stdout = tempfile.TemporaryFile("w+")
        self._stderr = tempfile.TemporaryFile("w+")
        with tempfile.TemporaryFile("w+") as stdin:
            stdin.write(prompt)
            stdin.seek(0)
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                self.argv, cwd=cwd, env=dict(env), text=True,
                stdin=stdin, stdout=self._stdout, stderr=self._stderr,
            )

    def finish(self, timeout: float = 60.0) -> ClaudeRun:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"claude ran over {timeout}s: {self.argv}\n"
                f"stdout={self._read(self._stdout)[-2000:]!r}\nstderr={self._read(self._stderr)[-2000:]!r}"
            ) from None
        duration = time.monotonic() - self.started
        stdout, stderr = self._read(self._stdout), self._read(self._stderr)
        return ClaudeRun(self.proc.returncode, stdout, stderr, duration, _parse_events(stdout))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Kill the process if it still runs and drop its output files."""
        self.kill()
        self._stdout.close()
        self._stderr.close()

    @staticmethod
    def _read(stream: Any) -> str:
        stream.seek(0)
        return str(stream.read())


StartClaude = Callable[..., ClaudeProcess]


@pytest.fixture
def start_claude(claude_bin: str, claude_env: dict[str, str], git_repo: Path) -> Iterator[StartClaude]:
    """start_claude(prompt, *args, cwd=git_repo, env=claude_env) -> ClaudeProcess.

    Runs `claude -p --output-format stream-json --verbose *args` with the
    prompt on stdin.  Processes still running at teardown are killed.
    """
    started: list[ClaudeProcess] = []

    def start(prompt: str, *args: str, cwd: Union[Path, str, None] = None,
              env: Optional[Mapping[str, str]] = None) -> ClaudeProcess:
        argv = [claude_bin, *STREAM_JSON, *args]
        process = ClaudeProcess(argv, prompt, Path(cwd or git_repo), env or claude_env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


@pytest.fixture
def run_claude(start_claude: StartClaude) -> Callable[..., ClaudeRun]:
    """run_claude(prompt, *args, cwd=..., env=..., timeout=60) -> ClaudeRun."""

    def run(prompt: str, *args: str, timeout: float = 60.0, **kwargs: Any) -> ClaudeRun:
        return start_claude(prompt, *args, **kwargs).finish(timeout)

    return run


# --------------------------------------------------------------------------
# envoy as a user runs it: the built pyz, with the real claude as its agent


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/envoy.pyz built by build.py, into a temporary directory."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("envoy_build", _ROOT / "build.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.build(tmp_path_factory.mktemp("dist") / "envoy.pyz")  # type: ignore[no-any-return]


@pytest.fixture
def envoy(pyz: Path, claude_bin: str, claude_env: dict[str, str], repo: Path) -> Envoy:
    """`envoy ...` through the built pyz, with the real claude as its agent (overrides
    tests/conftest.py's envoy, which runs the source tree with the fake agent)."""
    base = {**claude_env, "ENVOY_CLAUDE": claude_bin}

    def call(*args: str, cwd: Optional[Path] = None, env: Optional[dict[str, str]] = None, **kw: Any) -> Result:
        return run_envoy(*args, cwd=cwd or repo, env={**base, **(env or {})},
                         command=[sys.executable, str(pyz)], **kw)
    return call
