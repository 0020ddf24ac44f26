"""The fault-injection rig: a repository whose git hooks (core.hooksPath) can hold
git at a chosen point until the test releases it, so a kill lands in a chosen
phase every time, not when the timing happens to allow it.

Gates (files in <tmp>/gate):
    checkout   the post-checkout hook of `git worktree add` (spawn, the queue
               runner's prepare, merge --rebase) waits: the worktree is made,
               `git worktree add` has not returned
    ref        the reference-transaction hook waits in `prepared` for the ref
               named in gate/ref-target (cleanup's branch -D, merge's
               update-ref / fast-forward): locks taken, nothing committed
`arm(name)` makes the next hit wait (once); `fail(name)` makes the hook fail.
"""
from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import git, wait_until
from invariants import pids, cmdline, home, _environ, _alive, reap_test_processes

AGENTS = Path(__file__).resolve().parent / "agents"

POST_CHECKOUT = """#!/bin/sh
G='{gate}'
if [ -e "$G/fail-checkout" ]; then echo "post-checkout: refused (test)" >&2; exit 1; fi
mv "$G/arm-checkout" "$G/hit-checkout" 2>/dev/null || exit 0
while [ ! -e "$G/release-checkout" ]; do sleep 0.05; done
exit 0
"""

REFERENCE_TRANSACTION = """#!/bin/sh
G='{gate}'
input=$(cat)
[ "$1" = prepared ] || exit 0
target=$(cat "$G/ref-target" 2>/dev/null) || exit 0
printf '%s\\n' "$input" | grep -q " $target\\$" || exit 0
if [ -e "$G/fail-ref" ]; then echo "reference-transaction: refused (test)" >&2; exit 1; fi
mv "$G/arm-ref" "$G/hit-ref" 2>/dev/null || exit 0
while [ ! -e "$G/release-ref" ]; do sleep 0.05; done
exit 0
"""


class Gate:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def arm(self, name: str, ref: str | None = None) -> None:
        if ref is not None:
            (self.dir / "ref-target").write_text(ref)
        for stale in (f"hit-{name}", f"release-{name}"):
            (self.dir / stale).unlink(missing_ok=True)
        (self.dir / f"arm-{name}").touch()

    def fail(self, name: str, ref: str | None = None) -> None:
        if ref is not None:
            (self.dir / "ref-target").write_text(ref)
        (self.dir / f"fail-{name}").touch()

    def wait_hit(self, name: str, timeout: float = 60) -> None:
        wait_until(lambda: (self.dir / f"hit-{name}").exists(), timeout, 0.02)

    def release(self, name: str) -> None:
        (self.dir / f"release-{name}").touch()

    def disarm(self) -> None:
        for f in self.dir.iterdir():
            if f.name.startswith(("arm-", "fail-")) or f.name == "ref-target":
                f.unlink()


class Rig:
    def __init__(self, repo: Path, tmp: Path) -> None:
        self.repo = repo
        self.tmp = tmp
        self.gate = Gate(tmp / "gate")

    @property
    def state(self) -> Path:
        return self.repo / ".git" / "envoy"

    def record(self, name: str) -> dict[str, Any]:
        import json

        return json.loads((self.state / "workers" / f"{name}.json").read_text())  # type: ignore[no-any-return]


def make_hooks(repo: Path, tmp: Path) -> Gate:
    gate = tmp / "gate"
    gate.mkdir()
    hooks = tmp / "hooks"
    hooks.mkdir()
    for name, text in (("post-checkout", POST_CHECKOUT), ("reference-transaction", REFERENCE_TRANSACTION)):
        path = hooks / name
        path.write_text(text.format(gate=gate))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    git(repo, "config", "core.hooksPath", str(hooks))
    return Gate(gate)


@pytest.fixture
def rig(repo: Path, tmp_path: Path) -> Iterator[Rig]:
    """The repository with gate hooks; at the end, every process of the test is killed."""
    make_hooks(repo, tmp_path)
    try:
        yield Rig(repo, tmp_path)
    finally:
        reap_test_processes()
        drop_hostile_records(repo)
        drop_foreign_worktrees(repo, tmp_path)


def drop_foreign_worktrees(repo: Path, tmp: Path) -> None:
    """A killed merge --rebase leaves its private worktree in the system temp dir:
    not ours to keep after the test."""
    import shutil
    from invariants import worktrees

    for tree in worktrees(repo):
        parent = Path(tree.path).parent
        if not Path(tree.path).is_relative_to(tmp) and parent.name.startswith("envoy-rebase-"):
            shutil.rmtree(parent, ignore_errors=True)


def drop_hostile_records(repo: Path) -> None:
    """Records a test planted would break the shared teardown (tests/conftest.py reads
    every record for pids to kill); this test's processes are already dead."""
    import json

    for file in (repo / ".git" / "envoy" / "workers").glob("*.json"):
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
            sane = isinstance(record, dict) and all(isinstance(record.get(k), (int, type(None)))
                                                    for k in ("agent_pid", "supervisor_pid"))
        except (OSError, ValueError, UnicodeDecodeError):
            sane = True  # skipped there
        if not sane:
            file.unlink()


def wait_quiet(pattern: str, timeout: float = 30) -> None:
    """Until no process of this test has `pattern` in its command line (an orphaned git
    finishing after the envoy that ran it was killed)."""
    mine = home()

    def quiet() -> bool:
        return not any(pattern in cmdline(pid) for pid in pids() if mine in _environ(pid) and _alive(pid))
    wait_until(quiet, timeout, 0.05)


def holders(path: Path) -> list[int]:
    """Live processes holding `path` open (a lock file)."""
    target = os.path.realpath(path)
    found = []
    for pid in pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    found.append(pid)
                    break
            except OSError:
                continue
    return [p for p in found if _alive(p)]


def kill9(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
