"""The launch hand-off: a forked, detached supervisor that reports ready."""
from __future__ import annotations

import pytest

from conftest import wait_finished

from envoy.worker import launch, supervisor
from envoy.errors import EnvoyError
from envoy.worker.store import State
from envoy.worker.worktree import Layout


def test_a_supervisor_that_dies_before_ready_is_start_failed(tmp_path, monkeypatch):
    state = State(tmp_path)
    state.ensure()
    monkeypatch.setattr(supervisor, "main", lambda *args: 3)  # runs in the forked child
    record = {"name": "w", "run": 0, "state": "starting"}
    state.write(record)
    with pytest.raises(EnvoyError) as exc:
        launch.start(state, record, 0)
    assert exc.value.kind == "start_failed"


def test_a_start_that_fails_gives_up_its_claim_on_the_branch(repo, monkeypatch):
    """start_new undoes the worktree and branch it made; the record must not go on
    saying it made them, or cleanup would later delete a same-named branch of the user's."""
    from envoy.git import Git

    git = Git(repo)
    state = State(repo / ".git")
    state.ensure()
    sha = git.resolve_commit("HEAD")
    record = {"name": "w", "branch": "w", "base": "main", "base_sha": sha, "path": str(repo.parent / "wt-w"),
              "run": 0, "state": "queued", "copied": []}
    monkeypatch.setattr(supervisor, "main", lambda *args: 3)  # the supervisor dies before ready
    with pytest.raises(EnvoyError):
        launch.start_new(git, state, record, 0, Layout(repo.parent, "wt-"))
    assert not git.branch_exists("w") and not (repo.parent / "wt-w").exists()
    assert "worktree_created" not in record


def test_a_failed_checkout_whose_undo_fails_stays_claimed_and_logged(repo, monkeypatch):
    """The checkout fails and undoing it fails too (git cannot remove what it made): the
    original error is raised, and the record goes on saying a checkout was left behind
    (checking_out), so cleanup removes it later; the undo's failure is in the log."""
    from envoy.git import Git
    from envoy.worker import worktree

    git = Git(repo)
    state = State(repo / ".git")
    state.ensure()
    record = {"name": "w", "branch": "w", "base": "main", "base_sha": git.resolve_commit("HEAD"),
              "path": str(repo.parent / "wt-w"), "run": 0, "state": "queued", "copied": []}

    def checkout_fails(*args, **kwargs):
        raise EnvoyError("git_error", "checkout failed half-way", "retry")

    def undo_fails(*args, **kwargs):
        raise EnvoyError("cleanup_incomplete", "branch w of worker w could not be removed", "git branch -D w")

    monkeypatch.setattr(worktree, "create", checkout_fails)
    monkeypatch.setattr(worktree, "discard", undo_fails)
    with pytest.raises(EnvoyError) as exc:
        launch.check_out(git, state, record, Layout(repo.parent, "wt-"))
    assert exc.value.kind == "git_error"  # the failure itself, not the undo's
    kept = state.read("w")
    assert kept["checking_out"] is True and "worktree_created" not in kept
    assert "undo of w's checkout: branch w of worker w could not be removed" in state.log_file.read_text()


def test_a_failed_checkout_is_undone_and_no_longer_claimed(repo, monkeypatch):
    from envoy.git import Git
    from envoy.worker import worktree

    git = Git(repo)
    state = State(repo / ".git")
    state.ensure()
    record = {"name": "w", "branch": "w", "base": "main", "base_sha": git.resolve_commit("HEAD"),
              "path": str(repo.parent / "wt-w"), "run": 0, "state": "queued", "copied": []}
    real_create = worktree.create

    def made_then_failed(*args, **kwargs):
        real_create(*args, **kwargs)
        raise EnvoyError("git_error", "copying .env failed", "retry")

    monkeypatch.setattr(worktree, "create", made_then_failed)
    with pytest.raises(EnvoyError):
        launch.check_out(git, state, record, Layout(repo.parent, "wt-"))
    kept = state.read("w")
    assert "checking_out" not in kept and "worktree_created" not in kept
    assert not git.branch_exists("w") and not (repo.parent / "wt-w").exists()


def test_the_cap_refusal_suggests_queueing_the_same_spawn(repo, envoy, tmp_path):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    first = envoy("parallel", "spawn", "--branch", "one", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    assert first.code == 0, first.stdout
    refused = envoy("parallel", "spawn", "--branch", "two", "--task", "@result ok", env=env)
    assert refused.code == 1 and refused.error["type"] == "limit_exceeded"
    assert "--queue" in refused.error["suggestion"]
    (tmp_path / "go").touch()
    wait_finished(envoy, "one")
