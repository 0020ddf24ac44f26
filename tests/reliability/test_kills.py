"""kill -9 (and Ctrl-C) at every phase of a worker's life and of the verbs that
change the repository; after each, the invariants (invariants.py), not just an
exit code. The phases are hit deterministically: a git hook holds git at the
chosen point (rig.py), or the fake agent / setup command waits for a file."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conftest import git, wait_until
from invariants import (ask, answer_of, assert_invariants, assert_nothing_lost, assert_no_orphans, cmdline,
                        launch, settle, snapshot, status)
from rig import AGENTS, Rig, holders, kill9, rig, wait_quiet  # noqa: F401 (rig: a fixture)

USER = {"main"}


def finished_worker(rig: Rig, branch: str, *, commit: bool = True) -> str:
    """A worker that ended `succeeded`, with one commit of its own on its branch."""
    task = f"@write {branch.replace('/', '-')}.txt work of {branch}\n@commit work of {branch}\n@result ok" if commit \
        else "@result ok"
    data = ask(rig.repo, "parallel", "spawn", "--branch", branch, "--wait", "--task", task).data()
    assert data["state"] == "succeeded", data
    return str(data["name"])


def state_of(rig: Rig, name: str) -> str:
    return next(w["state"] for w in status(rig.repo) if w["name"] == name)


# -- spawn ---------------------------------------------------------------------
@pytest.mark.parametrize("how", ["kill9", "ctrl-c", "hook-fails"])
def test_spawn_cut_short_mid_checkout(rig, how):
    """The checkout is made (post-checkout runs) and then spawn dies, is interrupted, or
    the hook fails: no orphan worktree or branch, and the branch can be spawned again."""
    before = snapshot(rig.repo)
    args = ("parallel", "spawn", "--branch", "cut/short", "--task", "@result ok")
    if how == "hook-fails":
        rig.gate.fail("checkout")
        answer = ask(rig.repo, *args)
        assert answer.document()["status"] == "error" and answer.code == 1, answer
    else:
        rig.gate.arm("checkout")
        proc = launch(rig.repo, *args, new_session=True)
        rig.gate.wait_hit("checkout")
        if how == "kill9":
            kill9(proc.pid)  # only envoy: its git goes on to the end
            rig.gate.release("checkout")
        else:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: envoy, git and the hook all get it
        answer = answer_of(proc, args)
        if how == "ctrl-c":
            assert answer.code == 130, (answer.code, answer.stdout, answer.stderr)
        wait_quiet("worktree add")
    rig.gate.disarm()
    assert_invariants(rig.repo, before, USER)
    again = ask(rig.repo, *args[:-2], "--wait", "--task", "@result again").data()
    assert again["state"] == "succeeded", again


def test_ctrl_c_of_spawn_wait_leaves_the_worker_running(rig, tmp_path):
    """Ctrl-C while `spawn --wait` waits ends the wait (130), not the detached worker."""
    release = tmp_path / "release"
    proc = launch(rig.repo, "parallel", "spawn", "--branch", "waited", "--wait", "--task",
                  f"@wait-for {release}\n@write w.txt w\n@commit waited work", new_session=True)
    wait_until(lambda: [w["state"] for w in status(rig.repo)] == ["running"], 30)
    before = snapshot(rig.repo)
    os.killpg(proc.pid, signal.SIGINT)
    answer = answer_of(proc, ("parallel", "spawn", "--wait"))
    assert answer.code == 130, (answer.code, answer.stdout, answer.stderr)
    release.touch()
    assert [w["state"] for w in settle(rig.repo)] == ["succeeded"]
    assert_invariants(rig.repo, before, USER)


# -- the supervisor, its setup command, the watcher, the agent ------------------
def test_kill9_supervisor_during_setup(rig, tmp_path):
    """Killed while its setup command (and the setup's own child) runs: the worker is
    lost, and nothing it started survives."""
    marker = tmp_path / "setup-running"
    data = ask(rig.repo, "parallel", "spawn", "--branch", "slow-setup", "--task", "@result ok",
               "--setup", f"sleep 300 & touch {marker}; wait").data()
    wait_until(marker.exists, 30)
    before = snapshot(rig.repo)
    kill9(rig.record(data["name"])["supervisor_pid"])
    assert wait_until(lambda: state_of(rig, data["name"]) in ("lost", "failed"), 30)
    assert_invariants(rig.repo, before, USER)


def test_kill9_watcher_while_agent_works(rig, tmp_path):
    """Killed while its agent (which committed, and left a tool process running in its
    group) works: the worker is lost, its commit kept, its processes gone."""
    marker = tmp_path / "agent-working"
    task = (f"@write w.txt work\n@commit agent work\n@run sleep 300 &\n@run touch {marker}\n"
            f"@wait-for {tmp_path / 'never'}")
    data = ask(rig.repo, "parallel", "spawn", "--branch", "watched", "--task", task).data()
    wait_until(marker.exists, 30)
    supervisor = rig.record(data["name"])["supervisor_pid"]
    wait_until(lambda: "_watch" in cmdline(supervisor), 10)
    before = snapshot(rig.repo)
    kill9(supervisor)
    assert wait_until(lambda: state_of(rig, data["name"]) == "lost", 30)
    joined = ask(rig.repo, "parallel", "wait")  # the join, over a worker that ended before it
    assert joined.code == 1 and joined.document()["error"]["type"] == "worker_failed", joined  # lost: never success
    assert_invariants(rig.repo, before, USER)


def test_kill9_agent(rig, tmp_path):
    """The agent itself killed: an end the watcher sees, so `failed`, never `lost`."""
    marker = tmp_path / "agent-working"
    data = ask(rig.repo, "parallel", "spawn", "--branch", "shot", "--task",
               f"@run touch {marker}\n@wait-for {tmp_path / 'never'}").data()
    wait_until(marker.exists, 30)
    before = snapshot(rig.repo)
    kill9(rig.record(data["name"])["agent_pid"])
    workers = settle(rig.repo)
    assert [w["state"] for w in workers] == ["failed"], workers
    assert_invariants(rig.repo, before, USER)


# -- the queue runner --------------------------------------------------------------
@pytest.mark.parametrize("phase", ["asleep", "mid-checkout"])
def test_kill9_queue_runner(rig, tmp_path, phase):
    """The runner killed while it sleeps, or while it prepares a queued worker's
    checkout: the queue still moves, the half-made checkout is redone, nothing is orphaned."""
    env = {"PARALLEL_MAX_WORKERS": "1"}
    release = tmp_path / "release"
    first = ask(rig.repo, "parallel", "spawn", "--branch", "first", "--task", f"@wait-for {release}", env=env).data()
    if phase == "mid-checkout":
        rig.gate.arm("checkout")
    queued = ask(rig.repo, "parallel", "spawn", "--queue", "--branch", "queued", "--task",
                 "@write q.txt queued\n@commit queued work", env=env).data()
    assert queued["state"] == "queued", queued
    lock = rig.state / "locks" / "runner.lock"
    if phase == "mid-checkout":
        rig.gate.wait_hit("checkout")
    else:
        wait_until(lambda: rig.record("queued").get("worktree_created"), 30)
    runner = wait_until(lambda: [p for p in holders(lock) if "spawn" in cmdline(p)], 10)
    assert len(runner) == 1, runner
    before = snapshot(rig.repo)
    kill9(runner[0])
    rig.gate.release("checkout")
    wait_quiet("worktree add")
    rig.gate.disarm()
    release.touch()
    workers = {w["name"]: w for w in settle(rig.repo, 60)}
    assert workers[first["name"]]["state"] == "succeeded", workers
    assert workers["queued"]["state"] == "succeeded", workers
    assert_invariants(rig.repo, before, USER)


# -- cleanup: stopping, keeping, removing ---------------------------------------------
def test_kill9_cleanup_while_it_stops_a_worker(rig, tmp_path):
    """cleanup --all killed while it waits for a running worker (whose agent ignores
    SIGTERM) to stop: the worker still ends, recorded, and nothing is orphaned."""
    data = ask(rig.repo, "parallel", "spawn", "--branch", "stubborn", "--task", f"stubborn {tmp_path}",
               env={"ENVOY_CLAUDE": str(AGENTS / "hostile.py")}).data()
    wait_until((tmp_path / "working").exists, 30)
    before = snapshot(rig.repo)
    proc = launch(rig.repo, "parallel", "cleanup", "--all")
    wait_until((tmp_path / "got-term").exists, 30)  # cleanup now waits for the worker's lock
    kill9(proc.pid)
    proc.communicate()
    workers = settle(rig.repo, 30)
    assert [(w["name"], w["state"]) for w in workers] == [(data["name"], "stopped")], workers
    assert_invariants(rig.repo, before, USER)


@pytest.mark.parametrize("phase, scope", [("trash", "cleanup"), ("branch", "cleanup"),
                                          ("branch", "cleanup-and-its-git")])
def test_kill9_cleanup_mid_removal(rig, phase, scope):
    """cleanup --force of a worker with committed and uncommitted work, killed while
    git writes the trash ref, or later while git deletes the branch (the worktree is
    gone by then); alone (its git finishes) or with its git (which dies holding its
    locks): nothing lost, and a second cleanup finishes the job."""
    name = finished_worker(rig, "doomed")
    (Path(rig.record(name)["path"]) / "wip.txt").write_text("uncommitted work\n")
    rig.gate.arm("ref", "refs/heads/doomed" if phase == "branch" else "refs/envoy/trash/doomed")
    before = snapshot(rig.repo)
    assert before.dirty, "the worktree should hold uncommitted work"
    proc = launch(rig.repo, "parallel", "cleanup", "--worker", name, "--force", new_session=True)
    rig.gate.wait_hit("ref")
    if scope == "cleanup":
        kill9(proc.pid)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    rig.gate.release("ref")
    wait_quiet("branch -D")
    wait_quiet("update-ref")
    rig.gate.disarm()
    assert_nothing_lost(rig.repo, before)
    assert_no_orphans(rig.repo, USER)
    if scope == "cleanup-and-its-git":
        # git leaves its lock files behind when killed; envoy must say so in one document and
        # change nothing, and once the user removes them, cleanup goes through.
        answer = ask(rig.repo, "parallel", "cleanup", "--worker", name, "--force")
        answer.document()
        debris = [*(rig.repo / ".git").rglob("*.lock"), *(rig.repo / ".git").glob("packed-refs.new")]
        for file in debris:
            if "envoy" not in file.parts:
                file.unlink()
    assert_invariants(rig.repo, before, USER)


# -- merge mid-update ----------------------------------------------------------------------
@pytest.mark.parametrize("into", ["main", "elsewhere"])
def test_kill9_merge_mid_update(rig, into):
    """merge killed while git moves the target branch (checked out: a fast-forward there;
    not checked out: update-ref): the target ends at the old or the new tip, nothing lost."""
    name = finished_worker(rig, "to-merge")
    if into == "elsewhere":
        git(rig.repo, "branch", "elsewhere", "main")
    rig.gate.arm("ref", f"refs/heads/{into}")
    before = snapshot(rig.repo)
    old = before.branches[into]
    proc = launch(rig.repo, "parallel", "merge", "--worker", name, "--into", into)
    rig.gate.wait_hit("ref")
    kill9(proc.pid)
    proc.communicate()
    rig.gate.release("ref")
    wait_quiet("merge")
    wait_quiet("update-ref")
    rig.gate.disarm()
    tip = git(rig.repo, "rev-parse", f"refs/heads/{into}").strip()
    assert tip in (old, before.branches["to-merge"]), (tip, old)
    assert_invariants(rig.repo, before, USER | {into})


def test_kill9_merge_rebase_mid_replay(rig):
    """merge --rebase killed while it makes its private worktree: no worktree is left
    that nothing claims, and the target has not moved."""
    name = finished_worker(rig, "to-rebase")
    git(rig.repo, "commit", "-q", "--allow-empty", "-m", "main moved on")  # so it is no fast-forward
    rig.gate.arm("checkout")
    before = snapshot(rig.repo)
    proc = launch(rig.repo, "parallel", "merge", "--worker", name, "--rebase")
    rig.gate.wait_hit("checkout")
    kill9(proc.pid)
    proc.communicate()
    rig.gate.release("checkout")
    wait_quiet("worktree add")
    rig.gate.disarm()
    assert git(rig.repo, "rev-parse", "main").strip() == before.branches["main"]
    assert_invariants(rig.repo, before, USER)
