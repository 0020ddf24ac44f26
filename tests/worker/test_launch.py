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


def test_the_cap_refusal_suggests_queueing_the_same_spawn(repo, envoy, tmp_path):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    first = envoy("parallel", "spawn", "--branch", "one", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    assert first.code == 0, first.stdout
    refused = envoy("parallel", "spawn", "--branch", "two", "--task", "@result ok", env=env)
    assert refused.code == 1 and refused.error["type"] == "limit_exceeded"
    assert "--queue" in refused.error["suggestion"]
    (tmp_path / "go").touch()
    wait_finished(envoy, "one")
