"""A full filesystem: a small tmpfs holds the repository (or only the worktrees),
filled to the last byte while envoy works. Every verb answers with one document,
a failed write leaves nothing half-made, no work is lost, and once space is freed
everything recovers.

Mounting needs root (or passwordless sudo). Without it these tests do not skip:
they warn loudly and run the same scenarios with RLIMIT_FSIZE (writes past a size
fail with EFBIG instead of ENOSPC), which is weaker: a small file still fits."""
from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import git, wait_until
from invariants import (Answer, ask, assert_invariants, assert_no_orphans, assert_nothing_lost, envoy_cmd,
                        reap_test_processes, settle, snapshot)

USER = {"main"}
SIZE = "6m"


class Disk:
    """A small filesystem at `path`; `fill()` takes every free byte, `free()` gives them back."""

    def __init__(self, path: Path, mounted: bool) -> None:
        self.path = path
        self.mounted = mounted
        self.filler = path / "filler"

    def fill(self) -> None:
        if not self.mounted:
            return  # the RLIMIT_FSIZE fallback limits each write instead (see ask_full)
        chunk = b"\0" * 65536
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (65536, 4096, 512, 1):
                while True:
                    try:
                        os.write(fd, chunk[:size])
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC, exc
                        break
        finally:
            os.close(fd)
        # tmpfs keeps some inodes: take them too, so no new file can be made either
        n = 0
        while True:
            try:
                os.close(os.open(self.path / f"inode-{n}", os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError:
                break
            n += 1

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)
        for f in self.path.glob("inode-*"):
            f.unlink()

    def ask(self, repo: Path, *args: str, env: dict[str, str] | None = None) -> Answer:
        """envoy while the disk is full (with the fallback: with a file size limit)."""
        if self.mounted:
            return ask(repo, *args, env=env)

        def limit() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        proc = subprocess.run(envoy_cmd(*args), cwd=repo, capture_output=True, text=True, preexec_fn=limit,
                              env={**os.environ, **(env or {})}, timeout=120)
        return Answer(args, proc.returncode, proc.stdout, proc.stderr)


def try_mount(path: Path) -> bool:
    for prefix in ([], ["sudo", "-n"]):
        if prefix == [] and os.geteuid() != 0:
            continue
        if shutil.which((prefix or ["mount"])[0]) is None:
            continue
        done = subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", f"size={SIZE},nr_inodes=4000", "tmpfs",
                               str(path)], capture_output=True)
        if done.returncode == 0:
            return True
    return False


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    path = tmp_path / "small-fs"
    path.mkdir()
    mounted = try_mount(path)
    if not mounted:
        message = ("\n" + "!" * 78 + "\nFULL-DISK TESTS CANNOT MOUNT A TMPFS (not root, no passwordless sudo): running "
                   "them with RLIMIT_FSIZE instead (EFBIG, not ENOSPC). Run as root for the real thing.\n" + "!" * 78)
        warnings.warn(message)
        print(message, file=sys.stderr)
    try:
        yield Disk(path, mounted)
    finally:
        reap_test_processes()
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
            if os.path.ismount(path):
                subprocess.run(["sudo", "-n", "umount", "-l", str(path)], capture_output=True)


def new_repo(path: Path, big_file_mb: float = 0) -> Path:
    path.mkdir()
    git(path, "init", "-q")
    (path / "README").write_text("hello\n")
    if big_file_mb:
        (path / "big.bin").write_bytes(os.urandom(int(big_file_mb * 1024 * 1024)))
    git(path, "add", "-A")
    git(path, "commit", "-qm", "init")
    return path


def answers_once(answer: Answer, *, may_fail: bool = True) -> dict[str, Any]:
    document = answer.document()
    if not may_fail:
        assert document["status"] == "success", document
    return document


def test_worktrees_on_a_full_disk(disk, tmp_path):
    """The checkout runs out of space: spawn refuses in one document and leaves no
    worktree, branch or record behind; with space elsewhere the same branch spawns."""
    repo = new_repo(tmp_path / "repo", big_file_mb=8)  # more than the small disk holds
    env = {"PARALLEL_WORKTREE_DIR": str(disk.path)}
    before = snapshot(repo)
    answer = disk.ask(repo, "parallel", "spawn", "--branch", "no-room", "--task", "@result ok", env=env)
    document = answers_once(answer)
    assert document["status"] == "error" and answer.code == 1, document
    assert_no_orphans(repo, USER)
    assert not list((repo / ".git" / "envoy" / "workers").glob("*.json")), "a record of a spawn that failed"
    assert_invariants(repo, before, USER)
    again = ask(repo, "parallel", "spawn", "--branch", "no-room", "--wait", "--task", "@result ok",
                env={"PARALLEL_WORKTREE_DIR": str(tmp_path)}).data()
    assert again["state"] == "succeeded", again


def test_repository_on_a_full_disk(disk):
    """The whole repository, its worktrees and envoy's state on a disk that fills up
    while a worker holds committed and uncommitted work: every verb answers once,
    nothing is half-made or lost; once space is freed, everything recovers."""
    repo = new_repo(disk.path / "repo")
    done = ask(repo, "parallel", "spawn", "--branch", "has-work", "--wait", "--task",
               "@write a.txt committed\n@commit committed work").data()
    Path(done["path"], "wip.txt").write_text("uncommitted work\n")
    before = snapshot(repo)
    disk.fill()
    problems = []  # every verb's answer, not just the first bad one
    for args in (("status",), ("results",), ("diff", "--worker", "has-work"), ("conflicts",),
                 ("spawn", "--branch", "while-full", "--task", "@result ok"),
                 ("spawn", "--queue", "--branch", "queued-while-full", "--task", "@result ok"),
                 ("merge", "--worker", "has-work", "--squash"),
                 ("cleanup", "--worker", "has-work", "--force"), ("cleanup", "--all", "--force")):
        try:
            answers_once(disk.ask(repo, "parallel", *args))
        except AssertionError as exc:
            problems.append(str(exc).splitlines()[0][:300])
        assert_nothing_lost(repo, before)
        assert_no_orphans(repo, USER)
    disk.free()
    settle(repo)
    assert_invariants(repo, before, USER)
    assert not problems, "\n".join(problems)
    again = ask(repo, "parallel", "spawn", "--branch", "while-full", "--wait", "--task", "@result ok").data()
    assert again["state"] == "succeeded", again


def test_worker_ends_while_the_disk_is_full(disk, tmp_path):
    """A worker whose end comes when no byte is free: its state is not `running` (the
    agent is gone), status answers, and once space is freed the invariants hold."""
    repo = new_repo(disk.path / "repo")
    release = tmp_path / "release"  # outside the small disk
    data = ask(repo, "parallel", "spawn", "--branch", "ends-full", "--task",
               f"@write a.txt work\n@commit work\n@wait-for {release}\n@result done").data()
    wait_until(lambda: git(repo, "rev-list", "--count", "main..ends-full").strip() == "1", 30)
    before = snapshot(repo)
    disk.fill()
    release.touch()
    wait_until(lambda: status_state(disk, repo, data["name"]) not in ("running", "starting"), 30)
    disk.free()
    workers = settle(repo)
    assert [w["state"] for w in workers] != ["running"], workers
    assert_invariants(repo, before, USER)


def status_state(disk: Disk, repo: Path, name: str) -> str:
    document = answers_once(disk.ask(repo, "parallel", "status"), may_fail=False)
    return next(w["state"] for w in document["data"]["workers"] if w["name"] == name)
