"""landing/merging.py: the target moves by compare-and-swap (never over a commit it
did not decide on), the records say what was merged only while that is true, and a
merge whose worker or branch goes away meanwhile changes nothing."""
from __future__ import annotations

import argparse

import pytest

from conftest import git, spawn_done
from envoy.errors import EnvoyError
from envoy.landing import merging
from envoy.worker.workspace import open_workspace


def commit_on(repo, branch: str, name: str) -> str:
    """A commit on `branch` (not checked out), made as another user's tool would."""
    git(repo, "switch", "-q", branch)
    (repo / name).write_text(name + "\n")
    git(repo, "add", name)
    git(repo, "commit", "-qm", name)
    sha = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "main")
    return sha


@pytest.fixture
def target(repo) -> str:
    """A branch `target`, not checked out anywhere, so it moves by update-ref."""
    git(repo, "branch", "target")
    return git(repo, "rev-parse", "target").strip()


def test_a_target_that_moved_since_the_decision_is_not_moved(repo, target):
    ws = open_workspace(repo)
    decided_on = target
    theirs = commit_on(repo, "target", "theirs.txt")  # someone moved it after we looked
    ours = git(repo, "commit-tree", "-p", decided_on, "-m", "ours", git(repo, "rev-parse", "main^{tree}").strip()).strip()
    with pytest.raises(EnvoyError) as exc:
        merging.move_branch(ws, "target", decided_on, ours)
    assert exc.value.kind == "git_error" and "nothing was changed" in exc.value.message
    assert git(repo, "rev-parse", "target").strip() == theirs  # their commit is not overwritten


def test_a_target_that_did_not_move_is_moved(repo, target):
    ws = open_workspace(repo)
    ours = git(repo, "commit-tree", "-p", target, "-m", "ours", git(repo, "rev-parse", "main^{tree}").strip()).strip()
    merging.move_branch(ws, "target", target, ours)
    assert git(repo, "rev-parse", "target").strip() == ours


def test_a_refused_move_puts_the_records_back(repo, envoy, target):
    """record_and_move records first, then moves; when the move is refused the worker's
    record no longer claims the merge (cleanup would believe it)."""
    spawn_done(envoy, "w", "@write w.txt w\n@commit w")
    ws = open_workspace(repo)
    record = ws.state.read("w")
    tip = git(repo, "rev-parse", "w").strip()
    theirs = commit_on(repo, "target", "theirs.txt")
    with pytest.raises(EnvoyError):
        merging.record_and_move(ws, "target", target, tip, [(record, tip, tip)])
    assert git(repo, "rev-parse", "target").strip() == theirs
    assert not set(merging.MERGE_FIELDS) & set(ws.state.read("w"))
    assert not merging.still_merged(ws.git, ws.state.read("w"), tip)


def test_a_move_records_the_merge(repo, envoy, target):
    spawn_done(envoy, "w", "@write w.txt w\n@commit w")
    ws = open_workspace(repo)
    tip = git(repo, "rev-parse", "w").strip()
    merging.record_and_move(ws, "target", target, tip, [(ws.state.read("w"), tip, tip)])
    assert git(repo, "rev-parse", "target").strip() == tip
    fresh = ws.state.read("w")
    assert (fresh["merged_into"], fresh["merged_sha"], fresh["merged_commit"]) == ("target", tip, tip)
    assert merging.still_merged(ws.git, fresh, tip)


def merge_args(worker: str, into: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(worker=worker, into=into, squash=False, rebase=False)


@pytest.mark.parametrize("removed", ["branch", "worker", "target"])
def test_a_merge_whose_worker_or_branch_goes_meanwhile_changes_nothing(repo, envoy, monkeypatch, removed):
    """Between merge's first look (outside the branches lock) and its work under the lock,
    the worker's branch is deleted, or the worker is cleaned up and spawned again, or the
    target is deleted (a fault injected after the target check): a clear refusal, nothing moved."""
    from envoy.commands import merge

    spawn_done(envoy, "w", "@write w.txt w\n@commit w")
    git(repo, "branch", "target")
    before = {ref: git(repo, "rev-parse", ref).strip() for ref in ("main", "target")}
    real_check = merging.check_target

    def check_then_remove(*args, **kwargs):
        into = real_check(*args, **kwargs)
        if removed == "branch":
            git(repo, "update-ref", "-d", "refs/heads/w")  # checked out in its worktree: branch -D refuses
        elif removed == "target":
            git(repo, "branch", "-D", "target")
        else:
            assert envoy("parallel", "cleanup", "--worker", "w", "--force").code == 0
            spawn_done(envoy, "w", "@result a new worker under the old name")
        return into

    monkeypatch.setattr(merging, "check_target", check_then_remove)
    monkeypatch.chdir(repo)
    with pytest.raises(EnvoyError) as exc:
        merge.run(merge_args("w", "target"))
    assert exc.value.kind == "not_found", exc.value.message
    assert git(repo, "rev-parse", "main").strip() == before["main"]
    if removed != "target":
        assert git(repo, "rev-parse", "target").strip() == before["target"]
    record = open_workspace(repo).state.read("w")
    assert record is None or not set(merging.MERGE_FIELDS) & set(record)


# Found by the mutation run (tests/mutation/run merging).
def test_recording_a_merge_keeps_what_was_written_to_the_record_meanwhile(repo, envoy, target):
    spawn_done(envoy, "w", "@write w.txt w\n@commit w")
    ws = open_workspace(repo)
    stale = ws.state.read("w")
    ws.state.write({**stale, "result": "written since"})  # another process wrote the record after we read it
    tip = git(repo, "rev-parse", "w").strip()
    merging.record_and_move(ws, "target", target, tip, [(stale, tip, tip)])
    fresh = ws.state.read("w")
    assert fresh["result"] == "written since" and fresh["merged_sha"] == tip


def test_the_branch_of_a_finished_worker_is_a_target(repo, envoy):
    """Only a live worker's (queued, starting, running) branch is refused as a target."""
    spawn_done(envoy, "done", "@crash 3")  # failed
    spawn_done(envoy, "w", "@write w.txt w\n@commit w")
    ws = open_workspace(repo)
    assert ws.state.read("done")["state"] == "failed"
    assert merging.check_target(ws, ws.state.read("w"), "done", "merge") == "done"
