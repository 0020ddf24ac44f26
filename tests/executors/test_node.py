"""A remote worker's run on its node (envoy/executors/node.py: `envoy.pyz _remote URL
NAME RUN`), run here as a Ray job would run it, against a bare repository served
by file:// URL (so git speaks its transfer protocol, filters included), with real
git and the fake agent (tests/fake_claude.py). What the submitter does around it
(pushing the job's ref, fetching the work back) is in test_ray.py."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import ENVOY_SOURCE, git, wait_until
from envoy.git import Git

NAME = "feat-x"
PREFIX = f"refs/envoy/workers/{NAME}"


class Remote:
    """A project with a large file in its history (added, then deleted), as a bare
    remote; `job` pushes a run's job ref as ray.py's submit does."""

    def __init__(self, tmp_path: Path, allow_filter: bool) -> None:
        self.src = tmp_path / "src"
        self.src.mkdir()
        git(self.src, "init", "-q")
        (self.src / "big.bin").write_bytes(os.urandom(300_000))
        git(self.src, "add", ".")
        git(self.src, "commit", "-qm", "a large file")
        self.big = git(self.src, "rev-parse", "HEAD:big.bin").strip()
        git(self.src, "rm", "-q", "big.bin")
        (self.src / "README").write_text("hello\n")
        (self.src / "notes.txt").write_text("notes\n")
        git(self.src, "add", ".")
        git(self.src, "commit", "-qm", "the large file goes")
        self.base = git(self.src, "rev-parse", "HEAD").strip()
        self.bare = tmp_path / "remote.git"
        git(tmp_path, "clone", "-q", "--bare", str(self.src), str(self.bare))
        if allow_filter:
            git(self.bare, "config", "uploadpack.allowFilter", "true")
        self.url = f"file://{self.bare}"
        self.session = str(uuid.uuid4())
        self.node = tmp_path / "node"

    def job(self, run: int, task: str, start: str, wip: str | None = None) -> None:
        spec: dict[str, Any] = {"name": NAME, "branch": "feat/x", "base": "main", "base_sha": self.base,
                                "session_id": self.session, "options": {}, "run": run, "branches": {}}
        if wip:
            spec["wip"] = wip
        g = Git(self.src)
        git(self.src, "fetch", "-q", str(self.bare), f"+{PREFIX}/*:refs/remote-work/*")  # start and wip, if pushed
        job = g.commit_files({"task": task.encode(), "spec.json": json.dumps(spec).encode()},
                             [start, *([wip] if wip else [])], f"run {run}")
        git(self.src, "push", "-q", str(self.bare), f"+{job}:{PREFIX}/job-{run}")

    def cache(self) -> Path:
        return self.node / "repos" / (hashlib.sha256(self.url.encode()).hexdigest()[:16] + ".git")

    def env(self) -> dict[str, str]:
        return {**os.environ, "ENVOY_NODE_DIR": str(self.node)}

    def run(self, run: int) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, str(ENVOY_SOURCE), "_remote", self.url, NAME, str(run)],
                              env=self.env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def ref(self, name: str) -> str:
        return git(self.bare, "rev-parse", f"{PREFIX}/{name}").strip()


def missing(repo: Path) -> set[str]:
    """Objects a partial repository lacks (listed, never fetched: --missing=print)."""
    out = git(repo, "rev-list", "--objects", "--all", "--missing=print")
    return {line[1:] for line in out.splitlines() if line.startswith("?")}


# -- the per-node cache: a partial clone where the server allows it --------------
def test_the_first_job_on_a_node_fetches_no_blob_of_old_history(tmp_path: Path) -> None:
    remote = Remote(tmp_path, allow_filter=True)
    remote.job(1, "@write a.txt alpha\n@commit add a\n@write left.txt not committed", remote.base)
    log = remote.run(1).stdout
    cache = remote.cache()
    assert remote.big in missing(cache)  # the deleted large file never came to the node
    assert git(cache, "config", "remote.origin.promisor").strip() == "true"
    assert "fetched in full" not in log
    # The worker's commit and its uncommitted work are on the remote: pushing from the
    # partial cache (the hook's push, then the end's) fetched nothing of the history.
    head = remote.ref("head")
    assert git(remote.bare, "show", f"{head}:a.txt") == "alpha\n"
    assert git(remote.bare, "rev-parse", f"{head}^").strip() == remote.base
    assert git(remote.bare, "show", f"{remote.ref('wip')}:left.txt") == "not committed\n"


def test_a_server_without_filters_gets_a_full_fetch_and_a_plain_cache(tmp_path: Path) -> None:
    remote = Remote(tmp_path, allow_filter=False)
    remote.job(1, "@write a.txt alpha\n@commit add a", remote.base)
    log = remote.run(1).stdout
    cache = remote.cache()
    assert "fetched in full" in log
    assert missing(cache) == set() and git(cache, "cat-file", "-t", remote.big).strip() == "blob"
    assert subprocess.run(["git", "config", "remote.origin.promisor"], cwd=cache).returncode == 1
    assert git(remote.bare, "show", f"{remote.ref('head')}:a.txt") == "alpha\n"


def test_an_older_git_on_the_node_fetches_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: Any) -> None:
    from envoy.executors import node

    remote = Remote(tmp_path, allow_filter=True)
    remote.job(1, "", remote.base)
    cache = remote.cache()
    cache.parent.mkdir(parents=True)
    git(cache.parent, "init", "-q", "--bare", str(cache))
    monkeypatch.setattr(Git, "version", lambda self: (2, 20))
    node.fetch_job(Git(cache), cache, remote.url, [f"+{PREFIX}/job-1:refs/envoy/jobs/{NAME}/1"])
    assert "git 2.20 is older than 2.25: fetched in full" in capsys.readouterr().out
    assert git(cache, "cat-file", "-t", remote.big).strip() == "blob"
    assert subprocess.run(["git", "config", "remote.origin.promisor"], cwd=cache).returncode == 1


def test_a_full_cache_left_by_an_older_envoy_keeps_working(tmp_path: Path) -> None:
    remote = Remote(tmp_path, allow_filter=True)
    cache = remote.cache()
    cache.parent.mkdir(parents=True)
    git(cache.parent, "init", "-q", "--bare", str(cache))  # what earlier versions made: no remote, full fetches
    git(cache, "fetch", "-q", remote.url, "+refs/heads/*:refs/heads/*")
    remote.job(1, "@write a.txt alpha\n@commit add a", remote.base)
    remote.run(1)
    assert git(remote.bare, "show", f"{remote.ref('head')}:a.txt") == "alpha\n"
    assert git(cache, "cat-file", "-t", remote.big).strip() == "blob"  # what it had, it keeps


# -- resume: the last run's uncommitted work comes back uncommitted ----------------
def test_a_resume_restores_the_last_runs_uncommitted_work_in_the_worktree(tmp_path: Path) -> None:
    remote = Remote(tmp_path, allow_filter=True)
    remote.job(1, "@write a.txt alpha\n@commit add a\n@write a.txt changed\n@write left.txt new\n"
                  "@run rm notes.txt", remote.base)
    remote.run(1)
    head, wip = remote.ref("head"), remote.ref("wip")
    status = tmp_path / "status.txt"
    remote.job(2, f"@run git status --porcelain > {status}\n@run git rev-parse HEAD >> {status}\n@commit keep it",
               head, wip)
    log = remote.run(2).stdout
    assert "restored the last run's uncommitted work" in log
    lines = status.read_text().splitlines()
    # As the agent saw it: untracked stays untracked, a deletion unstaged, the branch at its tip.
    assert sorted(lines[:-1]) == [" D notes.txt", " M a.txt", "?? left.txt"] and lines[-1] == head
    tip = remote.ref("head")
    assert git(remote.bare, "rev-parse", f"{tip}^").strip() == head
    assert git(remote.bare, "show", f"{tip}:left.txt") == "new\n"
    assert git(remote.bare, "show", f"{tip}:a.txt") == "changed\n"
    assert "notes.txt" not in git(remote.bare, "ls-tree", "--name-only", tip).split()


def test_uncommitted_work_made_on_another_commit_is_not_restored_and_the_log_says_why(tmp_path: Path) -> None:
    remote = Remote(tmp_path, allow_filter=True)
    remote.job(1, "@write a.txt alpha\n@commit add a\n@write left.txt new", remote.base)
    remote.run(1)
    head, wip = remote.ref("head"), remote.ref("wip")
    # The branch moved after the run (someone committed on it): the work was made on head, not there.
    git(remote.src, "fetch", "-q", str(remote.bare), f"{PREFIX}/head")
    git(remote.src, "switch", "-q", "--detach", "FETCH_HEAD")
    (remote.src / "b.txt").write_text("b\n")
    git(remote.src, "add", "b.txt")
    git(remote.src, "commit", "-qm", "moved on")
    moved = git(remote.src, "rev-parse", "HEAD").strip()
    status = tmp_path / "status.txt"
    remote.job(2, f"@run git status --porcelain > {status}", moved, wip)
    log = remote.run(2).stdout
    assert f"uncommitted work ({wip[:12]}) is not restored" in log and head[:12] in log and moved[:12] in log
    assert status.read_text() == ""  # the run starts clean at its start


# -- the job's log: each action as it happens ------------------------------------
def test_the_log_says_each_action_of_the_agent_while_it_runs(tmp_path: Path) -> None:
    remote = Remote(tmp_path, allow_filter=True)
    gate = tmp_path / "gate"
    remote.job(1, f"@write a.txt alpha\n@run echo hi\n@wait-for {gate}\n@result all done", remote.base)
    node = subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "_remote", remote.url, NAME, "1"],
                            env=remote.env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(node.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        # Said while the agent still runs (it waits for the gate), not only at its end.
        wait_until(lambda: any(": action: Bash: echo hi" in line for line in lines), timeout=60)
        assert node.poll() is None
        gate.write_text("")
        assert node.wait(timeout=60) == 0
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    reader.join(timeout=10)
    actions = [line.split(": ", 1)[1].rstrip("\n") for line in lines if ": action: " in line]
    assert actions == ["action: Write: a.txt", "action: Bash: echo hi", "action: all done"]
    assert all(re.fullmatch(r"envoy \d\d:\d\d:\d\d\.\d{3}: action: .+\n", line)
               for line in lines if ": action: " in line)


@pytest.mark.parametrize("chunks", [[b'{"type":"assistant","message":{"content":[{"type":"text","text":"hel',
                                     b'lo"}]}}\n{"type":"user"}\n'],
                                    [b'{"type":"assistant","message":{"content":[{"type":"text","text":"hello"}]}}\n']])
def test_only_complete_new_lines_are_read(tmp_path: Path, chunks: list[bytes], capsys: Any) -> None:
    from envoy.executors.node import Actions

    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"type":"assistant","message":{"content":[{"type":"text","text":"an earlier run"}]}}\n')
    actions = Actions(out)
    for chunk in chunks:
        with open(out, "ab") as f:
            f.write(chunk)
        actions.look(force=True)
    said = [line for line in capsys.readouterr().out.splitlines() if "action:" in line]
    assert [line.split(": ", 1)[1] for line in said] == ["action: hello"]


def test_a_line_too_long_to_hold_is_skipped_and_the_next_one_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: Any) -> None:
    from envoy.executors.node import Actions

    monkeypatch.setattr(Actions, "LONGEST", 1000)
    monkeypatch.setattr(Actions, "CHUNK", 300)
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"")
    actions = Actions(out)
    huge = json.dumps({"type": "assistant", "message": {"content": [{"type": "text", "text": "x" * 5000}]}})
    with open(out, "ab") as f:
        f.write(huge.encode() + b"\n" + b'{"type":"assistant","message":{"content":"after it"}}\n')
    actions.look(force=True)
    said = [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert said == ["action: after it"] and len(actions.partial) == 0


# -- a run cancelled before it started (ray.py cancel) runs nothing ---------------
def test_a_job_whose_ref_was_deleted_runs_nothing_and_says_so(tmp_path: Path) -> None:
    remote = Remote(tmp_path, allow_filter=True)
    remote.job(1, "@write a.txt alpha\n@commit add a", remote.base)
    git(remote.bare, "update-ref", "-d", f"{PREFIX}/job-1")  # what envoy's cancel does
    log = remote.run(1).stdout
    assert "cancelled before it started" in log and "nothing is run" in log
    assert git(remote.bare, "for-each-ref", "--format=%(refname)", PREFIX).split() == []  # no head, wip, run-1
    assert not (remote.node / "work").exists() and not (remote.node / "runs").exists()


def test_a_run_takes_its_job_ref_first_and_a_cancel_after_that_loses(tmp_path: Path) -> None:
    remote = Remote(tmp_path, allow_filter=True)
    remote.job(1, "@write a.txt alpha\n@commit add a", remote.base)
    job = remote.ref("job-1")
    remote.run(1)
    claimed = remote.ref("job-1")
    assert claimed != job and git(remote.bare, "rev-parse", f"{claimed}^").strip() == job  # moved by the node
    assert not Git(remote.src).swap_remote_ref(remote.url, f"{PREFIX}/job-1", None, job)  # envoy's cancel, too late
    assert remote.ref("job-1") == claimed and git(remote.bare, "show", f"{remote.ref('head')}:a.txt") == "alpha\n"


def test_a_cancel_between_the_fetch_and_the_claim_wins(tmp_path: Path) -> None:
    from envoy.executors import node

    remote = Remote(tmp_path, allow_filter=True)
    remote.job(1, "", remote.base)
    cache = remote.cache()
    cache.parent.mkdir(parents=True)
    git(cache.parent, "init", "-q", "--bare", str(cache))
    local = f"refs/envoy/jobs/{NAME}/1"
    node.fetch_job(Git(cache), cache, remote.url, [f"+{PREFIX}/job-1:{local}"])
    assert Git(remote.src).swap_remote_ref(remote.url, f"{PREFIX}/job-1", None, remote.ref("job-1"))  # cancelled
    assert not node.claim(Git(cache), cache, remote.url, f"{PREFIX}/job-1", local, NAME, 1)
    assert git(remote.bare, "for-each-ref", "--format=%(refname)", PREFIX).split() == []  # not brought back
