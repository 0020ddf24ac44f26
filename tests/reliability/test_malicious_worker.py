"""A malicious (or merely careless) worker: its shell can write the shared .git
directory (it must, to commit) and it chooses what its branch holds. So it can
plant symlinks and files in .git/envoy, commit symlinks where the user's untracked
files get copied, plant process-group ids, and scrub its environment before it
spawns. After every attack:

- no file outside the repository changed (sentinel files beside it, their
  content and mtime compared, and nothing new appeared there);
- no worker's commit is lost (invariants.assert_nothing_lost);
- every answer is one JSON document (invariants.Answer.document).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ENVOY_SOURCE, FAKE_CLAUDE, git
from invariants import answer_of, ask, assert_nothing_lost, launch, snapshot
from rig import Rig, rig  # noqa: F401 (rig: a fixture)


class Outside:
    """A directory beside the repository that no attack may change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for rel, text in (("secret.txt", "the user's secret\n"), ("victim/keep.txt", "keep me\n"),
                          ("rebase/keep.txt", "keep me too\n"), ("1/keep.txt", "and me\n"),
                          ("2.task", "not a task\n"), ("2.jsonl", "not a log\n"), ("2.err", "not an err\n"),
                          ("confdir/.keep", "")):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.before = self.tree()

    def tree(self) -> dict[str, tuple[str, int]]:
        found = {}
        for directory, dirs, names in os.walk(self.root):
            for name in dirs + names:
                path = os.path.join(directory, name)
                st = os.lstat(path)
                content = "<dir>" if os.path.isdir(path) and not os.path.islink(path) else Path(path).read_text()
                found[os.path.relpath(path, self.root)] = (content, st.st_mtime_ns)
        return found

    def unchanged(self) -> None:
        assert self.tree() == self.before, "a file outside the repository changed"


@pytest.fixture
def outside(tmp_path: Path) -> Outside:
    return Outside(tmp_path / "outside")


def finished_worker(rig: Rig, branch: str, task: str) -> dict[str, Any]:
    record: dict[str, Any] = ask(rig.repo, "parallel", "spawn", "--branch", branch, "--wait", "--task", task).data()
    assert record["state"] == "succeeded", record
    return record


def committed(rig: Rig, branch: str, extra: str = "") -> dict[str, Any]:
    slug = branch.replace("/", "-")
    return finished_worker(rig, branch, f"@write {slug}.txt {slug}\n@commit work of {branch}\n{extra}")


# -- symlinks planted in .git/envoy -----------------------------------------------
def test_a_symlink_planted_at_land_deletes_nothing_outside(rig, outside):
    """`.git/envoy/land -> <outside>`: land swept every directory there as a killed
    run's (rmtree). Now it refuses, typed, and deletes nothing."""
    committed(rig, "feat/a")
    before = snapshot(rig.repo)
    (rig.state / "land").symlink_to(outside.root, target_is_directory=True)
    document = ask(rig.repo, "parallel", "land", "--check", "true").document()
    assert document["status"] == "error" and document["error"]["type"] == "unsafe_path", document
    outside.unchanged()
    assert_nothing_lost(rig.repo, before)


def test_links_planted_inside_land_are_removed_as_links(rig, outside):
    """A run directory that is a symlink, and a scratch worktree that is a symlink to
    another worker's worktree: removed as links; the worktree and its uncommitted
    work stay, and land lands."""
    victim = finished_worker(rig, "feat/victim", "@write v.txt v\n@commit v\n@write wip.txt uncommitted")
    committed(rig, "feat/a")
    land = rig.state / "land"
    land.mkdir(mode=0o700)
    (land / "123-abcdef").symlink_to(outside.root / "victim", target_is_directory=True)
    (land / "5-aaaaaa").mkdir()
    (land / "5-aaaaaa" / "1").symlink_to(victim["path"], target_is_directory=True)
    before = snapshot(rig.repo)
    document = ask(rig.repo, "parallel", "land", "--worker", "feat-a", "--check", "true").document()
    assert document["status"] == "success", document
    outside.unchanged()
    assert (Path(victim["path"]) / "wip.txt").read_text().strip() == "uncommitted"
    assert_nothing_lost(rig.repo, before)
    assert not os.path.lexists(land / "123-abcdef") and not os.path.lexists(land / "5-aaaaaa")


@pytest.mark.parametrize("where", ["scratch-is-a-link", "rebase-is-a-link"])
def test_a_symlink_planted_at_scratch_deletes_no_directory(rig, outside, where):
    """merge --rebase removes a killed merge's scratch worktree first: through a planted
    `scratch -> <outside>` it deleted <outside>/rebase; through `scratch/rebase ->
    <another worker's worktree>` it removed that worktree with its uncommitted work."""
    victim = finished_worker(rig, "feat/victim", "@write v.txt v\n@commit v\n@write wip.txt uncommitted")
    committed(rig, "feat/a")
    git(rig.repo, "commit", "-q", "--allow-empty", "-m", "main moves on")  # so a rebase has work to do
    before = snapshot(rig.repo)
    if where == "scratch-is-a-link":
        (rig.state / "scratch").symlink_to(outside.root, target_is_directory=True)
    else:
        (rig.state / "scratch").mkdir(mode=0o700, exist_ok=True)
        (rig.state / "scratch" / "rebase").symlink_to(victim["path"], target_is_directory=True)
    document = ask(rig.repo, "parallel", "merge", "--worker", "feat-a", "--rebase").document()
    if where == "scratch-is-a-link":
        assert document["status"] == "error" and document["error"]["type"] == "unsafe_path", document
    else:
        assert document["status"] == "success" and document["data"]["merged"], document
    outside.unchanged()
    assert (Path(victim["path"]) / "wip.txt").read_text().strip() == "uncommitted"
    assert_nothing_lost(rig.repo, before)


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_links_at_the_next_runs_files_make_resume_overwrite_nothing(rig, outside, link):
    """logs/<name>/2.task|.jsonl|.err -> files outside: resume wrote the task and the
    transcript through them. Now it refuses, typed, before anything changes."""
    name = committed(rig, "feat/a")["name"]
    logs = rig.state / "logs" / name
    for suffix in ("task", "jsonl", "err"):
        if link == "symlink":
            (logs / f"2.{suffix}").symlink_to(outside.root / f"2.{suffix}")
        else:
            os.link(outside.root / f"2.{suffix}", logs / f"2.{suffix}")
    outside.before = outside.tree()  # a hard link's ctime/mtime are the file's: taken after linking
    before = snapshot(rig.repo)
    document = ask(rig.repo, "parallel", "resume", "--worker", name, "--task", "@result again").document()
    assert document["status"] == "error" and document["error"]["type"] == "unsafe_path", document
    outside.unchanged()
    assert rig.record(name)["state"] == "succeeded"
    assert_nothing_lost(rig.repo, before)


@pytest.mark.parametrize("stem", ["x", "not a worker name"])
def test_a_directory_named_like_a_record_breaks_no_cleanup(rig, outside, stem):
    """A directory at workers/<stem>.json made every cleanup an internal_error: it is
    a broken record, listed by status, removed by cleanup (never followed)."""
    committed(rig, "feat/a")
    planted = rig.state / "workers" / f"{stem}.json"
    planted.mkdir()
    (planted / "inner").symlink_to(outside.root / "secret.txt")
    status = ask(rig.repo, "parallel", "status").data()
    assert any(b["file"] == str(planted) for b in status.get("broken", [])) or str(planted) in json.dumps(status)
    ask(rig.repo, "parallel", "cleanup", "--worker", "feat-a").document()
    document = ask(rig.repo, "parallel", "cleanup", "--all").document()
    assert document["status"] == "success", document
    assert not os.path.lexists(planted)
    outside.unchanged()


def test_a_record_that_is_a_symlink_is_broken_and_removed_as_a_link(rig, outside):
    """workers/<name>.json -> a JSON file outside: read as a broken record (never
    followed), and cleanup removes the link, not the file it names."""
    record = committed(rig, "feat/a")
    target = outside.root / "record.json"
    target.write_text((rig.state / "workers" / "feat-a.json").read_text())
    outside.before = outside.tree()
    (rig.state / "workers" / "feat-a.json").unlink()
    (rig.state / "workers" / "feat-a.json").symlink_to(target)
    status = ask(rig.repo, "parallel", "status").data()
    assert "feat-a.json" in json.dumps(status.get("broken")), status
    before = snapshot(rig.repo)
    ask(rig.repo, "parallel", "cleanup", "--all").document()  # its branch is unmerged: kept, link and all
    assert git(rig.repo, "rev-parse", record["branch"])
    assert ask(rig.repo, "parallel", "cleanup", "--all", "--force").document()["status"] == "success"
    assert not os.path.lexists(rig.state / "workers" / "feat-a.json")
    assert_nothing_lost(rig.repo, before)  # forced: its commit is under a trash ref
    outside.unchanged()


def test_a_state_directory_that_is_a_symlink_is_refused(rig, outside):
    """`.git/envoy -> <outside>`: every verb that writes state refuses (unsafe_path),
    writing nothing there."""
    rig.state.symlink_to(outside.root, target_is_directory=True)
    for args in (("parallel", "status"), ("parallel", "spawn", "--branch", "feat/b", "--task", "@result x"),
                 ("parallel", "cleanup", "--all"), ("parallel", "land", "--check", "true")):
        ask(rig.repo, *args).document()
    document = ask(rig.repo, "parallel", "spawn", "--branch", "feat/b", "--task", "@result x").document()
    assert document["status"] == "error" and document["error"]["type"] == "unsafe_path", document
    outside.unchanged()


def test_a_symlinked_lock_file_truncates_nothing(rig, outside):
    """filelock opens its file with O_TRUNC: a `locks/launch.lock -> <a file of the
    user's>` truncated it on the next spawn. Now the verb refuses, typed."""
    ask(rig.repo, "parallel", "status").data()  # .git/envoy exists
    (rig.state / "locks").mkdir(mode=0o700, parents=True, exist_ok=True)
    (rig.state / "locks" / "launch.lock").symlink_to(outside.root / "secret.txt")
    document = ask(rig.repo, "parallel", "spawn", "--branch", "feat/b", "--task", "@result x").document()
    assert document["status"] == "error" and document["error"]["type"] == "unsafe_path", document
    outside.unchanged()


# -- planted process-group ids ---------------------------------------------------
def test_a_planted_pgid_kills_no_stranger_and_not_land(rig, outside):
    """A stale run directory with `1.pgid` naming a bystander's process group and
    `2.pgid` holding 0 (land's own group): land SIGKILLed both (exit 137, no JSON).
    Now only processes carrying the run's own id are ended."""
    committed(rig, "feat/a")
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        stale = rig.state / "land" / "99999-abcdef"
        stale.mkdir(parents=True)
        (stale / "1.pgid").write_text(str(bystander.pid))
        (stale / "2.pgid").write_text("0")
        before = snapshot(rig.repo)
        answer = answer_of(launch(rig.repo, "parallel", "land", "--check", "true", new_session=True))
        document = answer.document()
        assert document["status"] == "success", document
        assert bystander.poll() is None, "land killed a process it did not start"
        assert_nothing_lost(rig.repo, before)
    finally:
        bystander.kill()
        bystander.wait()
    outside.unchanged()


# -- committed symlinks where the user's untracked files are copied -----------------
def link_env_task(target: Path) -> str:
    return f"@run rm -f .env && ln -s {shlex.quote(str(target))} .env && git add -f .env && git commit -qm link"


def test_a_committed_env_symlink_does_not_receive_the_users_secret(rig, outside):
    """The worker commits `.env -> <outside>/stolen`; a spawn --from its branch and
    land's scratch worktree copied the user's .env through it."""
    (rig.repo / ".env").write_text("SECRET=hunter2\n")
    name = finished_worker(rig, "feat/link", link_env_task(outside.root / "stolen"))["name"]
    before = snapshot(rig.repo)
    after = ask(rig.repo, "parallel", "spawn", "--branch", "feat/next", "--from", "feat/link", "--wait",
                "--task", "@result ok").document()
    assert after["status"] == "success", after
    ask(rig.repo, "parallel", "land", "--worker", name, "--into", "main", "--check", "true").document()
    assert not os.path.lexists(outside.root / "stolen"), "the user's .env was copied through a committed symlink"
    outside.unchanged()
    env = rig.repo / ".env"
    assert not env.is_symlink() and env.read_text() == "SECRET=hunter2\n"
    assert_nothing_lost(rig.repo, before)


def test_a_committed_directory_symlink_does_not_receive_included_files(rig, outside):
    """`conf -> <outside>/confdir` committed, `conf/local.ini` listed in .worktreeinclude:
    a spawn --from that branch refuses (typed) instead of copying through it."""
    (rig.repo / "conf").mkdir()
    (rig.repo / "conf" / "local.ini").write_text("password=1\n")
    (rig.repo / ".worktreeinclude").write_text("conf/local.ini\n")
    (rig.repo / ".git" / "info" / "exclude").write_text("conf/local.ini\n")  # copied only if ignored, as Claude Code does
    task = (f"@run rm -rf conf && ln -s {shlex.quote(str(outside.root / 'confdir'))} conf && git add -f conf "
            "&& git commit -qm link")
    finished_worker(rig, "feat/dirlink", task)
    before = snapshot(rig.repo)
    document = ask(rig.repo, "parallel", "spawn", "--branch", "feat/next", "--from", "feat/dirlink", "--wait",
                   "--task", "@result ok").document()
    assert document["status"] == "error" and document["error"]["type"] == "unsafe_path", document
    outside.unchanged()
    # land's scratch worktree gets the same copies: refused too, its scratch removed
    document = ask(rig.repo, "parallel", "land", "--worker", "feat-dirlink", "--check", "true").document()
    assert document["status"] == "error" and document["error"]["type"] == "unsafe_path", document
    assert document["error"]["landed"] == []
    land = rig.state / "land"
    assert not land.exists() or not any(land.iterdir()), list(land.iterdir())
    outside.unchanged()
    assert_nothing_lost(rig.repo, before)


# -- a worker that scrubs its environment -----------------------------------------
def test_a_worker_that_scrubs_its_environment_cannot_spawn(rig, tmp_path):
    """`cd <main checkout> && env -i ... envoy parallel spawn`: neither the environment
    nor the place says "worker"; the process ancestry does."""
    out = tmp_path / "nested.json"
    env = " ".join(shlex.quote(f"{k}={os.environ[k]}") for k in ("PATH", "HOME") if k in os.environ)
    command = (f"cd {shlex.quote(str(rig.repo))} && env -i {env} ENVOY_CLAUDE={shlex.quote(str(FAKE_CLAUDE))} "
               f"{shlex.quote(sys.executable)} {shlex.quote(str(ENVOY_SOURCE))} "
               f"parallel spawn --branch nested --task ok > {shlex.quote(str(out))} 2>&1")
    finished_worker(rig, "feat/parent", f"@run {command}")
    text = out.read_text()
    document = json.loads(text)
    assert document["status"] == "error" and document["error"]["type"] == "nesting_blocked", text
    assert not (rig.state / "workers" / "nested.json").exists()
