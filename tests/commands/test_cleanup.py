"""cleanup never loses work: dirty and unmerged workers are skipped unless
--force, and forced removals keep a trash ref that restores everything."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ENVOY_SOURCE, Result, git, spawn_done


def worktrees(repo: Path) -> list[str]:
    return [line[9:] for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


def test_cleanup_removes_a_finished_worker_without_commits(repo, envoy):
    record = spawn_done(envoy, "quick/x", "@result nothing to do")
    result = envoy("parallel", "cleanup")
    assert result.code == 0
    assert [r["name"] for r in result.data["removed"]] == ["quick-x"]
    assert record["path"] not in worktrees(repo)
    assert not Path(record["path"]).exists()
    assert not git(repo, "branch", "--list", "quick/x").strip()
    assert envoy("parallel", "status").data["workers"] == []
    assert not (repo / ".git" / "envoy" / "logs" / "quick-x").exists()


def test_unmerged_worker_is_kept_until_merged(repo, envoy):
    record = spawn_done(envoy, "feat/a", "@write a.txt a\n@commit add a")
    refused = envoy("parallel", "cleanup", "--worker", "feat-a")
    assert refused.code == 1
    assert refused.error["type"] == "unmerged"
    assert "1 commit" in refused.error["message"] and "--force" in refused.error["suggestion"]
    assert Path(record["path"]).is_dir()
    batch = envoy("parallel", "cleanup")
    assert batch.code == 0 and batch.data["removed"] == []
    assert batch.data["skipped"][0]["reason"] == "unmerged"

    git(repo, "merge", "-q", "--no-edit", "feat/a")
    done = envoy("parallel", "cleanup", "--worker", "feat/a")  # by branch works too
    assert done.code == 0 and done.data["removed"][0]["name"] == "feat-a"
    assert "trash_ref" not in done.data["removed"][0]
    assert (repo / "a.txt").exists()


def test_dirty_worker_is_skipped(repo, envoy):
    record = spawn_done(envoy, "d", "@write untracked.txt u")
    refused = envoy("parallel", "cleanup", "--worker", "d")
    assert refused.error["type"] == "dirty"
    assert "untracked.txt" in refused.error["message"]
    assert (Path(record["path"]) / "untracked.txt").exists()


def test_force_keeps_everything_in_a_trash_ref_that_restores(repo, envoy):
    record = spawn_done(envoy, "feat/lost", "@write committed.txt c\n@commit committed\n@write loose.txt l")
    (Path(record["path"]) / "README").write_text("edited\n")
    (repo / ".env").write_text("SECRET\n")  # not in the worktree: .env was absent at spawn
    result = envoy("parallel", "cleanup", "--worker", "feat-lost", "--force")
    assert result.code == 0
    removed = result.data["removed"][0]
    assert removed["trash_ref"] == "refs/envoy/trash/feat-lost"
    assert removed["restore"] == f"git branch feat/lost {removed['sha']}"
    assert not Path(record["path"]).exists()
    assert not git(repo, "branch", "--list", "feat/lost").strip()

    git(repo, *removed["restore"].split()[1:])
    files = git(repo, "ls-tree", "-r", "--name-only", "feat/lost").split()
    assert {"committed.txt", "loose.txt", "README"} <= set(files)
    assert git(repo, "show", "feat/lost:README") == "edited\n"
    assert git(repo, "log", "--format=%s", "feat/lost").splitlines()[:2] == [
        "envoy: uncommitted work of worker feat-lost at cleanup", "committed"]


def test_force_twice_keeps_both_trash_refs(repo, envoy):
    first = spawn_done(envoy, "again", "@write a.txt 1\n@commit one")
    envoy("parallel", "cleanup", "--worker", "again", "--force")
    spawn_done(envoy, "again", "@write a.txt 2\n@commit two")
    second = envoy("parallel", "cleanup", "--worker", "again", "--force").data["removed"][0]
    assert second["trash_ref"] == "refs/envoy/trash/again-2"
    assert git(repo, "log", "-1", "--format=%s", "refs/envoy/trash/again").strip() == "one"
    assert git(repo, "log", "-1", "--format=%s", "refs/envoy/trash/again-2").strip() == "two"
    assert first


def test_copied_files_are_not_dirt_and_not_kept(repo, envoy):
    (repo / ".env").write_text("SECRET=1\n")
    record = spawn_done(envoy, "e", "@result ok")
    assert (Path(record["path"]) / ".env").exists()
    assert envoy("parallel", "cleanup", "--worker", "e").code == 0


def test_running_worker_is_not_touched_without_all_or_force(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60").data
    batch = envoy("parallel", "cleanup")
    assert batch.code == 0 and batch.data == {"removed": [], "skipped": []}
    one = envoy("parallel", "cleanup", "--worker", "busy")
    assert one.code == 1 and one.error["type"] == "still_running"
    assert "--force" in one.error["suggestion"]
    assert Path(record["path"]).is_dir()


def test_all_stops_running_workers_first(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60").data
    done = spawn_done(envoy, "done", "@result ok")
    result = envoy("parallel", "cleanup", "--all")
    assert result.code == 0
    assert sorted(r["name"] for r in result.data["removed"]) == ["busy", "done"]
    assert not Path(record["path"]).exists() and not Path(done["path"]).exists()
    assert envoy("parallel", "status").data["workers"] == []


def test_all_still_keeps_unmerged_work_of_a_stopped_worker(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "busy", "--task", "@write a.txt a\n@commit a\n@sleep 60").data
    from conftest import wait_until
    wait_until(lambda: git(repo, "log", "-1", "--format=%s", "busy").strip() == "a")
    result = envoy("parallel", "cleanup", "--all")
    assert result.data["skipped"][0]["reason"] == "unmerged"
    assert Path(record["path"]).is_dir()
    view = envoy("parallel", "status").data["workers"][0]
    assert view["state"] == "stopped" and view["reason"] == "stopped"


def test_force_on_a_running_worker_stops_and_removes_it(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60").data
    result = envoy("parallel", "cleanup", "--worker", "busy", "--force")
    assert result.code == 0
    assert not Path(record["path"]).exists()


def test_cleanup_with_worktree_deleted_by_hand(repo, envoy):
    import shutil

    record = spawn_done(envoy, "gone", "@result ok")
    shutil.rmtree(record["path"])
    result = envoy("parallel", "cleanup", "--worker", "gone")
    assert result.code == 0
    assert record["path"] not in worktrees(repo)


def test_cleanup_nothing_to_do(envoy):
    result = envoy("parallel", "cleanup", "--text")
    assert result.code == 0 and "nothing to clean up" in result.stdout


# -- concurrency: a worker's commit never becomes unreachable without a printed trash ref
def start_envoy(repo: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ENVOY_SOURCE), *args], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> Result:
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    return Result(proc.returncode, out, err)


def refs_containing(repo: Path, sha: str) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "--contains", sha).split()


def printed_trash(results: list[Result]) -> dict[str, str]:
    """{trash ref: sha} that the cleanups printed."""
    printed = {}
    for result in results:
        document = json.loads(result.stdout)
        removed = document["data"]["removed"] if document["status"] == "success" else []
        printed.update({r["trash_ref"]: r["sha"] for r in removed if r.get("trash_ref")})
    return printed


def assert_kept(repo: Path, sha: str, results: list[Result]) -> None:
    """`sha` is on a ref; if only trash refs hold it, a cleanup printed one of them."""
    holders = refs_containing(repo, sha)
    assert holders, f"{sha} is unreachable; cleanups said: {[r.stdout for r in results]}"
    if all(h.startswith("refs/envoy/trash/") for h in holders):
        printed = printed_trash(results)
        assert any(ref in printed and git(repo, "merge-base", "--is-ancestor", sha, printed[ref]) == ""
                   for ref in holders), (holders, printed)


def spawn_chain(repo: Path, envoy, trial: int) -> tuple[str, str, str]:
    """Worker a commits; worker b starts from a (so a's commit is on b too)."""
    a, b = f"a{trial}", f"b{trial}"
    assert envoy("parallel", "spawn", "--branch", a, "--wait", "--task", f"@write {a}.txt a\n@commit {a}").code == 0
    assert envoy("parallel", "spawn", "--from", a, "--branch", b, "--wait", "--task", "@result ok").code == 0
    return a, b, git(repo, "rev-parse", a).strip()


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_two_cleanups_at_once_never_lose_a_commit(repo, envoy, force):
    for trial in range(5):
        a, b, sha = spawn_chain(repo, envoy, trial)
        procs = [start_envoy(repo, "parallel", "cleanup", "--worker", name, *force) for name in (a, b)]
        results = [finish(p) for p in procs]
        assert_kept(repo, sha, results)
        removed = [r for res in results if res.code == 0 for r in res.json["data"]["removed"]]
        if force:
            assert sorted(r["name"] for r in removed) == [a, b]
        else:  # one goes (its commit is on the other), the other keeps the commit
            assert len(removed) == 1, [r.stdout for r in results]


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_a_branch_the_user_deletes_during_cleanup_leaves_a_printed_trash_ref(repo, envoy, force):
    """cleanup finds a's commit on the user's branch `keep`; the user deletes `keep`
    at the worst moment (a reference-transaction hook does it while cleanup deletes a).
    envoy cannot lock the user out, so it checks again after deleting, and keeps it."""
    spawn_done(envoy, "a", "@write a.txt a\n@commit a")
    sha = git(repo, "rev-parse", "a").strip()
    git(repo, "branch", "keep", "a")
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text("#!/bin/sh\n[ \"$1\" = prepared ] || exit 0\n"
                    "while read old new ref; do\n"
                    "  [ \"$ref\" = refs/heads/a ] && [ \"$new\" = 0000000000000000000000000000000000000000 ] && "
                    f"rm -f '{repo}/.git/refs/heads/keep'\n"
                    "done\nexit 0\n")
    hook.chmod(0o755)
    result = envoy("parallel", "cleanup", "--worker", "a", *force)
    assert result.code == 0, result.stdout
    assert not git(repo, "branch", "--list", "keep").strip()  # the hook did run
    removed = result.data["removed"][0]
    assert removed["trash_ref"] == "refs/envoy/trash/a" and removed["sha"] == sha
    assert removed["restore"] == f"git branch a {sha}"
    assert_kept(repo, sha, [result])


def work_on_a_ref(repo: Path, path: str, text: str) -> list[str]:
    """The refs whose tree has `path` with `text`: the work is somewhere."""
    holders = []
    for ref in git(repo, "for-each-ref", "--format=%(refname)").split():
        shown = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=repo, capture_output=True, text=True)
        if shown.returncode == 0 and shown.stdout == text:
            holders.append(ref)
    return holders


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_cleanup_racing_a_merge_into_the_worker_being_removed_loses_nothing(repo, envoy, force):
    """merge --into y moves y between cleanup's decision that y holds nothing and its
    deletion of y. A spawn in a long checkout holds the launch mutex, which cleanup
    needs to delete: that holds the window open. Without one lock over both verbs,
    the squash commit went with y, and x, recorded as merged, went next."""
    from filelock import FileLock

    spawn_done(envoy, "y", "@result nothing")
    spawn_done(envoy, "x", "@write x.txt x\n@commit x")
    launch = FileLock(str(repo / ".git" / "envoy" / "locks" / "launch.lock"))
    with launch:
        cleanup = start_envoy(repo, "parallel", "cleanup", "--worker", "y", *force)
        time.sleep(1.5)  # cleanup has decided, and waits for the mutex
        merge = start_envoy(repo, "parallel", "merge", "--worker", "x", "--squash", "--into", "y")
        deadline = time.monotonic() + 5
        while merge.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    results = [finish(cleanup), finish(merge)]
    follow = envoy("parallel", "cleanup", "--worker", "x")
    holders = work_on_a_ref(repo, "x.txt", "x\n")
    assert holders, ([r.stdout for r in results], follow.stdout)
    if follow.code == 0:  # cleanup took x as merged: then the squash commit is on y
        assert git(repo, "branch", "--list", "y").strip(), ([r.stdout for r in results], follow.stdout)
    if all(h.startswith("refs/envoy/trash/") for h in holders):  # kept only in the trash: and said so
        assert set(holders) <= set(printed_trash(results)), (holders, [r.stdout for r in results])


def test_two_cleanups_at_once_report_each_removal_once(repo, envoy):
    for trial in range(3):
        names = {f"t{trial}-{i}" for i in range(3)}
        for name in names:
            spawn_done(envoy, name, "@result ok")
        procs = [start_envoy(repo, "parallel", "cleanup") for _ in range(2)]
        results = [finish(p) for p in procs]
        reported = [r["name"] for res in results for r in res.data["removed"]]
        assert sorted(reported) == sorted(names), [r.stdout for r in results]
        # Nor does the slower one call a finished worker "running" because the other holds its lock.
        assert [s for res in results for s in res.data["skipped"]] == [], [r.stdout for r in results]


def test_two_cleanups_of_one_worker_report_it_once(repo, envoy):
    for trial in range(3):
        name = f"one{trial}"
        spawn_done(envoy, name, "@result ok")
        results = [finish(p) for p in [start_envoy(repo, "parallel", "cleanup", "--worker", name) for _ in range(2)]]
        assert sorted(r.code for r in results) == [0, 1], [r.stdout for r in results]
        winner, loser = sorted(results, key=lambda r: r.code)
        assert [r["name"] for r in winner.data["removed"]] == [name]
        assert loser.error["type"] == "not_found", loser.stdout


def test_a_merge_undone_on_its_target_no_longer_counts(repo, envoy):
    """merge records where the work went; cleanup checks it is still there."""
    spawn_done(envoy, "s", "@write s.txt s\n@commit s1\n@write s2.txt s\n@commit s2")
    before = git(repo, "rev-parse", "main").strip()
    git(repo, "switch", "-qc", "elsewhere")
    assert envoy("parallel", "merge", "--worker", "s", "--squash").data["merged"]
    git(repo, "branch", "-f", "main", before)  # the user drops the squash commit
    refused = envoy("parallel", "cleanup", "--worker", "s")
    assert refused.code == 1 and refused.error["type"] == "unmerged"
    assert git(repo, "branch", "--list", "s").strip()


def test_a_batch_reports_what_it_removed_when_one_removal_fails(repo, envoy):
    """A failure on one worker is that worker's skip, not an error that hides the
    removals this call already made."""
    first = spawn_done(envoy, "a-good", "@result ok")
    bad = spawn_done(envoy, "b-bad", "@result ok")
    (Path(bad["path"]) / ".git").write_text("garbage\n")  # git cannot remove this worktree
    result = envoy("parallel", "cleanup")
    assert result.code == 0, result.stdout
    assert [r["name"] for r in result.data["removed"]] == ["a-good"]
    assert not Path(first["path"]).exists()
    assert [s["name"] for s in result.data["skipped"]] == ["b-bad"]
    assert result.data["skipped"][0]["message"] and result.data["skipped"][0]["suggestion"]
    assert [w["name"] for w in envoy("parallel", "status").data["workers"]] == ["b-bad"]


def test_a_branch_checked_out_elsewhere_is_not_deleted(repo, envoy):
    """cleanup deletes with update-ref, which would not stop at a checked-out branch as
    git branch -D does: it must not pull the branch from under your checkout."""
    import shutil

    record = spawn_done(envoy, "mine", "@write m.txt m\n@commit m")
    git(repo, "merge", "-q", "--no-edit", "mine")
    shutil.rmtree(record["path"])
    git(repo, "worktree", "prune")
    git(repo, "switch", "-q", "mine")
    result = envoy("parallel", "cleanup", "--worker", "mine")
    assert result.code == 1 and result.error["type"] == "checked_out", result.stdout
    assert str(repo) in result.error["message"]
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/mine"
    assert git(repo, "rev-parse", "mine").strip() == git(repo, "rev-parse", "main").strip()


def test_a_cleanup_killed_after_keeping_work_reports_the_trash_ref_when_run_again(repo, envoy):
    """kill -9 right after the branch is deleted: the work is in the trash, and the
    next cleanup still says where."""
    spawn_done(envoy, "k", "@write k.txt k\n@commit k")
    sha = git(repo, "rev-parse", "k").strip()
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text("#!/bin/sh\n[ \"$1\" = committed ] || exit 0\n"
                    "while read old new ref; do\n"
                    "  if [ \"$ref\" = refs/heads/k ] && [ \"$new\" = 0000000000000000000000000000000000000000 ]; then\n"
                    "    kill -9 \"$(cut -d' ' -f4 /proc/$PPID/stat)\"\n"  # git's parent: envoy
                    "  fi\n"
                    "done\nexit 0\n")
    hook.chmod(0o755)
    killed = envoy("parallel", "cleanup", "--worker", "k", "--force")
    assert killed.code == -9 and killed.stdout == ""
    assert not git(repo, "branch", "--list", "k").strip()
    hook.unlink()
    again = envoy("parallel", "cleanup", "--worker", "k")
    assert again.code == 0, again.stdout
    removed = again.data["removed"][0]
    assert removed["trash_ref"] == "refs/envoy/trash/k" and removed["sha"] == sha
    assert removed["restore"] == f"git branch k {sha}"


# -- the race guards, driven in-process through cleanup's own functions ---------------
def test_same_worker_is_the_same_session_not_only_the_same_name():
    from envoy.commands.cleanup import same_worker

    old = {"name": "w", "session_id": "s1"}
    assert same_worker({"name": "w", "session_id": "s1", "state": "failed"}, old)
    assert not same_worker({"name": "w", "session_id": "s2"}, old)  # a new worker under the old name
    assert not same_worker(None, old)  # removed meanwhile


def test_a_worker_spawned_again_under_the_same_name_is_not_removed_on_the_old_ones_word(repo, envoy):
    """cleanup read worker w, then (before it took w's lock) w was removed and a new w
    spawned: the record cleanup holds is the old one's, and it must not remove the new."""
    from envoy.commands import cleanup
    from envoy.worker.workspace import open_workspace

    old = spawn_done(envoy, "w", "@result first")
    assert envoy("parallel", "cleanup", "--worker", "w").code == 0
    new = spawn_done(envoy, "w", "@result second")
    assert new["session_id"] != old["session_id"]
    ws = open_workspace(repo)
    stale = {**ws.state.read("w"), "session_id": old["session_id"]}
    assert cleanup.clean_one(ws, stale, force=True, may_stop=True) is None
    assert ws.state.read("w")["session_id"] == new["session_id"]
    assert Path(new["path"]).is_dir() and git(repo, "branch", "--list", "w").strip()


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_a_branch_that_moves_while_its_worktree_is_removed_is_kept(repo, envoy, monkeypatch, force):
    """cleanup decides on the branch's tip, removes the worktree, then deletes the
    branch only if it still points there (compare-and-swap). A commit made to it
    meanwhile (here by a fault injected after the worktree's removal) keeps the branch."""
    from envoy.commands import cleanup
    from envoy.worker import worktree
    from envoy.worker.workspace import open_workspace

    record = spawn_done(envoy, "moving", "@result nothing committed")
    base = git(repo, "rev-parse", "main").strip()
    git(repo, "switch", "-qc", "other")
    (repo / "late.txt").write_text("late\n")
    git(repo, "add", "late.txt")
    git(repo, "commit", "-qm", "a commit the branch gets meanwhile")
    late = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "main")
    real_remove = worktree.remove

    def remove_then_move(*args, **kwargs):
        real_remove(*args, **kwargs)
        git(repo, "update-ref", "refs/heads/moving", late, base)

    monkeypatch.setattr(worktree, "remove", remove_then_move)
    ws = open_workspace(repo)
    outcome = cleanup.clean_one(ws, ws.state.read("moving"), force=force, may_stop=False)
    assert outcome["removed"] is False and outcome["reason"] == "busy", outcome
    assert git(repo, "rev-parse", "moving").strip() == late  # the moved branch is kept
    assert ws.state.read("moving") is not None  # and so is the record, to decide again
    assert not Path(record["path"]).exists()


def test_a_worker_that_does_not_stop_is_skipped(repo, envoy, monkeypatch, tmp_path):
    """--force stops a running worker by TERM to the process that holds its lock; one
    that ignores it within the grace period is skipped, its record and branch kept."""
    import signal

    from envoy.commands import cleanup
    from envoy.worker.workspace import open_workspace

    record = spawn_done(envoy, "stubborn", "@result ok")
    ws = open_workspace(repo)
    ready = tmp_path / "holding"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import signal, sys, time; sys.path[:0] = [{str(ENVOY_SOURCE)!r}, {str(ENVOY_SOURCE / 'vendor')!r}]
signal.signal(signal.SIGTERM, signal.SIG_IGN)
from pathlib import Path
from envoy.worker import locks, store
lock = locks.lock(store.State(Path({str(ws.state.root.parent)!r})), "worker-stubborn")
lock.acquire(timeout=5)
Path({str(ready)!r}).touch()
time.sleep(120)
"""])
    try:
        from conftest import wait_until
        wait_until(ready.exists)
        ws.state.write({**ws.state.read("stubborn"), "state": "running", "supervisor_pid": holder.pid})
        monkeypatch.setattr(cleanup, "STOP_GRACE", 0.5)
        outcome = cleanup.clean_one(ws, ws.state.read("stubborn"), force=True, may_stop=True)
        assert outcome["removed"] is False and outcome["reason"] == "still_running", outcome
        assert "did not stop" in outcome["message"]
        assert holder.poll() is None  # TERM was sent and ignored; nothing harsher
        assert ws.state.read("stubborn") is not None and Path(record["path"]).is_dir()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_broken_record_of_a_worker_whose_lock_is_held_is_kept(repo, envoy):
    """A record that is not a record says nothing to trust; a held worker lock means its
    supervisor lives: cleanup keeps the file and says the worker is running."""
    from conftest import hold, kill
    from envoy.worker.workspace import open_workspace

    spawn_done(envoy, "held", "@result ok")
    ws = open_workspace(repo)
    file = repo / ".git" / "envoy" / "workers" / "held.json"
    file.write_text("{not json")
    holder = hold(ws.state, "worker-held")
    try:
        result = envoy("parallel", "cleanup")
    finally:
        kill(holder)
    assert result.code == 0 and result.data["removed"] == []
    (skipped,) = result.data["skipped"]
    assert skipped["name"] == "held" and skipped["reason"] == "still_running"
    assert file.read_text() == "{not json"


def test_a_running_worker_is_said_running_at_once_not_after_a_wait(repo, envoy, monkeypatch):
    """Its lock held and its record running: cleanup (without --force) skips it without
    waiting for the lock (a wait is only for a lock another envoy holds briefly while
    the record says the worker is not running). Found by the mutation run."""
    from conftest import wait_until
    from envoy.commands import cleanup
    from envoy.worker.workspace import open_workspace

    envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60")
    ws = open_workspace(repo)
    wait_until(lambda: ws.state.read("busy")["state"] == "running")

    def no_waiting(seconds: float) -> None:
        raise AssertionError(f"cleanup waited {seconds}s for a running worker's lock")

    monkeypatch.setattr(cleanup.time, "sleep", no_waiting)
    outcome = cleanup.clean_one(ws, ws.state.read("busy"), force=False, may_stop=False)
    monkeypatch.undo()
    assert outcome["removed"] is False and outcome["reason"] == "still_running", outcome


def test_a_queued_worker_is_cancelled_leaving_a_same_named_branch_of_the_users(repo, envoy):
    """A worker that never started made no branch: a branch of its name is someone
    else's, kept, and the cancel is no "busy" refusal. Found by the mutation run."""
    envoy("parallel", "spawn", "--branch", "dep", "--task", "@sleep 60")
    queued = envoy("parallel", "spawn", "--branch", "q", "--after", "dep", "--task", "@result later")
    assert queued.data["state"] == "queued"
    git(repo, "branch", "q")
    mine = git(repo, "rev-parse", "q").strip()
    result = envoy("parallel", "cleanup", "--worker", "q")
    assert result.code == 0, result.stdout
    assert result.data["removed"][0]["name"] == "q" and result.data["removed"][0].get("cancelled") is True
    assert git(repo, "rev-parse", "q").strip() == mine
