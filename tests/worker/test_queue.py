"""Queue and dependencies: --queue, --after, FIFO across processes, the cap held exactly."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from conftest import bounded, git, max_overlap, wait_finished, wait_until
from envoy.worker import store


def test_queue_at_the_cap_starts_by_itself_fifo(repo, envoy, tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    env = {"PARALLEL_MAX_WORKERS": "2"}
    task = f"@stamp {stamps}\n@wait-for {tmp_path / 'go'}\n@sleep 0.3"
    names = []
    for i in range(6):
        result = envoy("parallel", "spawn", "--queue", "--branch", f"q{i}", "--task", task, env=env)
        assert result.code == 0, result.stdout
        assert result.data["state"] == "queued"
        names.append(result.data["name"])
        if i == 1:  # the runner starts the first two by itself
            wait_until(lambda: len(list(stamps.glob("*.start"))) == 2, timeout=10, interval=0.02)
        if i >= 2:
            assert result.data["queue_position"] == i - 1
    view = envoy("parallel", "status", env=env).data
    assert view["summary"]["queued"] == 4 and view["summary"]["running"] == 2
    assert [w.get("queue_position") for w in view["workers"]] == [None, None, 1, 2, 3, 4]
    (tmp_path / "go").touch()
    # Nothing keeps running in this terminal: freed slots go to the queue by themselves.
    for name in names:
        assert wait_finished(envoy, name, timeout=60)["state"] == "succeeded"
    assert max_overlap(stamps) <= 2


def test_queue_is_first_come_first_served(repo, envoy, tmp_path):
    """With one slot, queued workers run strictly one after another, in spawn order."""
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    env = {"PARALLEL_MAX_WORKERS": "1"}
    names = [envoy("parallel", "spawn", "--queue", "--branch", f"f{i}", "--task",
                   f"@stamp {stamps}\n@wait-for {tmp_path / 'go'}", env=env).data["name"] for i in range(5)]
    (tmp_path / "go").touch()
    for name in names:
        assert wait_finished(envoy, name, timeout=60)["state"] == "succeeded"
    assert max_overlap(stamps) == 1
    sessions = {envoy("parallel", "status", "--worker", n).data["workers"][0]["session_id"]: n for n in names}
    started = sorted(sessions, key=lambda sid: float((stamps / f"{sid}.start").read_text()))
    assert [sessions[sid] for sid in started] == names


def test_queue_with_a_free_slot_starts_at_once(repo, envoy, tmp_path):
    """--queue returns without starting anything itself; the queue runner starts the
    worker by itself (no envoy command runs meanwhile: status would dispatch too)."""
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    result = envoy("parallel", "spawn", "--queue", "--branch", "now", "--task", f"@stamp {stamps}\n@result ok")
    assert result.code == 0 and result.data["state"] == "queued" and result.data["queue_position"] == 1
    wait_until(lambda: list(stamps.glob("*.start")), timeout=10, interval=0.02)
    assert wait_finished(envoy, "now")["state"] == "succeeded"


def test_after_builds_on_the_dependency_branch(repo, envoy):
    envoy("parallel", "spawn", "--branch", "feat/db", "--task", "@sleep 1\n@write db.txt db\n@commit db models")
    after = envoy("parallel", "spawn", "--branch", "feat/api", "--after", "feat-db",
                  "--task", "@run test -f db.txt && echo has-db > api.txt\n@commit api")
    assert after.code == 0 and after.data["state"] == "queued" and after.data["after"] == ["feat-db"]
    final = wait_finished(envoy, "feat-api", timeout=60)
    assert final["state"] == "succeeded" and final["base"] == "feat/db"
    assert git(repo, "show", "feat/api:api.txt") == "has-db\n"
    assert git(repo, "log", "--format=%s", "feat/api").split("\n")[:2] == ["api", "db models"]


def test_after_a_failed_dependency_never_starts(repo, envoy):
    envoy("parallel", "spawn", "--branch", "dep", "--task", "@sleep 0.5\n@crash 2")
    after = envoy("parallel", "spawn", "--branch", "next", "--after", "dep", "--task", "@result never")
    assert after.data["state"] == "queued"
    final = wait_finished(envoy, "next", timeout=30)
    assert final["state"] == "failed" and final["reason"] == "dependency_failed"
    assert "dep" in final["error"]
    assert not git(repo, "branch", "--list", "next").strip()
    # A dependency that has already failed is refused at spawn.
    again = envoy("parallel", "spawn", "--branch", "again", "--after", "dep", "--task", "x")
    assert again.code == 1 and again.error["type"] == "dependency_failed"


def test_after_a_stopped_dependency_fails(repo, envoy):
    envoy("parallel", "spawn", "--branch", "dep", "--task", "@sleep 60")
    envoy("parallel", "spawn", "--branch", "next", "--after", "dep", "--task", "@result never")
    assert envoy("parallel", "cleanup", "--worker", "dep", "--force").code == 0
    final = envoy("parallel", "status", "--worker", "next").data["workers"][0]
    assert final["state"] == "failed" and final["reason"] == "dependency_failed"
    assert final["error"] == "dependency dep ended stopped"  # cleanup --force stopped it first


def test_after_a_cancelled_dependency_fails(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "blocker", "--task", "@sleep 60", env=env)
    assert envoy("parallel", "spawn", "--queue", "--branch", "dep", "--task", "x", env=env).data["state"] == "queued"
    envoy("parallel", "spawn", "--branch", "next", "--after", "dep", "--task", "@result never", env=env)
    assert envoy("parallel", "cleanup", "--worker", "dep", env=env).data["removed"][0]["cancelled"] is True
    final = envoy("parallel", "status", "--worker", "next", env=env).data["workers"][0]
    assert final["state"] == "failed" and final["reason"] == "dependency_failed"
    assert "cleaned up" in final["error"]


def test_after_refuses_unknown_and_self(repo, envoy):
    unknown = envoy("parallel", "spawn", "--branch", "x", "--after", "nobody", "--task", "t")
    assert unknown.code == 1 and unknown.error["type"] == "not_found"
    cycle = envoy("parallel", "spawn", "--branch", "x", "--after", "x", "--task", "t")
    assert cycle.code == 1 and "cycle" in cycle.error["message"]
    assert envoy("parallel", "status").data["workers"] == []


def test_cleanup_all_cancels_queued_workers(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "run", "--task", "@sleep 60", env=env)
    queued = envoy("parallel", "spawn", "--queue", "--branch", "wait", "--task", "@result x", env=env).data
    assert queued["state"] == "queued"
    result = envoy("parallel", "cleanup", "--all", env=env)
    assert sorted(r["name"] for r in result.data["removed"]) == ["run", "wait"]
    assert [r for r in result.data["removed"] if r["name"] == "wait"][0]["cancelled"] is True
    assert envoy("parallel", "status").data["workers"] == []
    assert not Path(queued["path"]).exists()


def test_queue_moves_on_after_its_last_supervisor_is_killed(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "first", "--task", "@sleep 60", env=env)
    envoy("parallel", "spawn", "--queue", "--branch", "second", "--task", "@result ok", env=env)
    record = wait_until(lambda: json.loads((repo / ".git/envoy/workers/first.json").read_text()).get("agent_pid")
                        and json.loads((repo / ".git/envoy/workers/first.json").read_text()))
    os.kill(record["supervisor_pid"], signal.SIGKILL)
    # Nobody handed the slot on; the next look at the queue does.
    assert wait_finished(envoy, "second", timeout=30)["state"] == "succeeded"
    assert envoy("parallel", "status", "--worker", "first").data["workers"][0]["state"] == "lost"


def test_spawn_wait_on_a_queued_worker(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "first", "--task", "@sleep 1", env=env)
    result = envoy("parallel", "spawn", "--queue", "--wait", "--branch", "second", "--task", "@result later", env=env)
    assert result.code == 0 and result.data["result"] == "later"
    assert "second: queued" in result.stderr and "second: succeeded" in result.stderr


def holders(path: Path) -> list[int]:
    """PIDs of the processes that have `path` open (Linux /proc)."""
    pids = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                pids.append(int(fd_dir.parent.name))
        except OSError:
            continue
    return pids


def test_the_queue_runner_lives_only_while_the_queue_waits(repo, envoy, tmp_path):
    from envoy.worker import locks
    from envoy.worker.store import State

    state = State(repo / ".git")
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "first", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    assert not locks.is_held(state, "runner")  # nothing queued, no runner
    envoy("parallel", "spawn", "--queue", "--branch", "second", "--task", f"@stamp {stamps}", env=env)
    assert locks.is_held(state, "runner")  # it waits for a slot for the queued worker
    (tmp_path / "go").touch()
    # No envoy command runs meanwhile: the runner, woken by the freed slot, starts it.
    wait_until(lambda: list(stamps.glob("*.end")), timeout=30, interval=0.02)
    wait_until(lambda: not locks.is_held(state, "runner"), timeout=10)
    assert wait_finished(envoy, "second")["state"] == "succeeded"


def test_without_its_runner_the_queue_still_moves(repo, envoy, tmp_path):
    """The runner killed: the finishing worker finds no one listening and starts a new
    runner, which starts the next (and holds none of the finished worker's locks)."""
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "first", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    envoy("parallel", "spawn", "--queue", "--branch", "second", "--task", f"@stamp {stamps}", env=env)
    (runner,) = holders(repo / ".git" / "envoy" / "locks" / "runner.lock")
    os.kill(runner, signal.SIGKILL)
    wait_until(lambda: not holders(repo / ".git" / "envoy" / "locks" / "runner.lock"))
    (tmp_path / "go").touch()
    wait_until(lambda: list(stamps.glob("*.end")), timeout=30, interval=0.02)
    assert wait_finished(envoy, "second")["state"] == "succeeded"
    assert wait_finished(envoy, "first", timeout=10)["state"] == "succeeded"


def test_cleanup_of_a_worker_that_never_started_leaves_a_same_named_branch_alone(repo, envoy):
    envoy("parallel", "spawn", "--branch", "dep", "--task", "@sleep 1\n@crash 1")
    assert envoy("parallel", "spawn", "--branch", "later", "--after", "dep", "--task", "x").code == 0
    assert wait_finished(envoy, "later")["reason"] == "dependency_failed"
    git(repo, "branch", "later")  # the user makes a branch of that name meanwhile
    assert envoy("parallel", "cleanup", "--worker", "later").code == 0
    assert git(repo, "branch", "--list", "later").strip()


def test_the_queue_prepares_the_next_worktrees_while_workers_wait(repo, envoy, tmp_path):
    """A cap's worth of queued workers get their worktree checked out while they wait,
    so a freed slot goes to work without a checkout; they start from it."""
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "busy", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    queued = [envoy("parallel", "spawn", "--queue", "--branch", f"next{i}", "--task",
                    "@write out.txt done\n@commit out", env=env).data for i in range(3)]
    first = Path(queued[0]["path"])
    wait_until(lambda: (first / "README").exists())
    time.sleep(0.5)  # the runner would have prepared more by now if it were going to
    assert not Path(queued[1]["path"]).exists() and not Path(queued[2]["path"]).exists()
    view = {w["name"]: w for w in envoy("parallel", "status", env=env).data["workers"]}
    assert view["next0"]["state"] == "queued" and git(repo, "branch", "--list", "next0").strip()
    (tmp_path / "go").touch()
    for q in queued:
        assert wait_finished(envoy, q["name"], timeout=60)["state"] == "succeeded"
    assert git(repo, "show", "next0:out.txt") == "done\n"


def test_cancelling_a_prepared_queued_worker_removes_its_worktree_and_branch(repo, envoy, tmp_path):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "busy", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    queued = envoy("parallel", "spawn", "--queue", "--branch", "later", "--task", "x", env=env).data
    path = Path(queued["path"])
    wait_until(lambda: (path / "README").exists())
    (path / "scratch.txt").write_text("someone's notes\n")
    kept = envoy("parallel", "cleanup", "--worker", "later", env=env)
    assert kept.code == 1 and kept.error["type"] == "dirty" and path.exists()  # never loses work
    (path / "scratch.txt").unlink()
    done = envoy("parallel", "cleanup", "--worker", "later", env=env)
    assert done.code == 0 and done.data["removed"][0]["cancelled"] is True
    assert not path.exists() and not git(repo, "branch", "--list", "later").strip()
    (tmp_path / "go").touch()


def test_a_checkout_cut_short_is_redone(repo, envoy, tmp_path):
    """The runner killed in the middle of preparing a worktree: the next start
    discards the half-made worktree and branch and checks out again."""
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "busy", "--task", f"@wait-for {tmp_path / 'go'}", env=env)
    queued = envoy("parallel", "spawn", "--queue", "--branch", "later", "--task",
                   "@write out.txt done\n@commit out", env=env).data
    path = Path(queued["path"])
    wait_until(lambda: (path / "README").exists())
    lock = repo / ".git" / "envoy" / "locks" / "runner.lock"
    for pid in holders(lock):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not holders(lock))
    # What a kill during the checkout leaves: a worktree and branch the record does not claim.
    (path / "README").unlink()
    record_file = repo / ".git" / "envoy" / "workers" / "later.json"
    record = json.loads(record_file.read_text())
    del record["worktree_created"]
    record["checking_out"] = True
    record_file.write_text(json.dumps(record))
    (tmp_path / "go").touch()
    final = wait_finished(envoy, "later", timeout=60)
    assert final["state"] == "succeeded", final
    assert git(repo, "show", "later:out.txt") == "done\n" and (path / "README").exists()


def test_workers_the_runner_starts_do_not_keep_its_wake_fifo(repo, envoy, tmp_path):
    """A supervisor forked by the runner (here, running a long setup) must not hold the
    FIFO open: a finishing worker would think a runner listens and not move the queue."""
    go = tmp_path / "go"
    envoy("parallel", "spawn", "--queue", "--branch", "w", "--setup", f"while [ ! -e {go} ]; do sleep 0.05; done",
          "--task", "@result ok")
    envoy_dir = repo / ".git" / "envoy"
    try:
        wait_until(lambda: json.loads((envoy_dir / "workers" / "w.json").read_text())["state"] == "running")
        wait_until(lambda: not holders(envoy_dir / "locks" / "runner.lock"))  # the queue is empty: the runner left
        assert holders(envoy_dir / "queue.wake") == []
    finally:
        go.touch()  # the setup loop ends whatever happened
    assert wait_finished(envoy, "w")["state"] == "succeeded"


def test_a_queued_workers_saved_environment_that_is_a_fifo_does_not_hang_the_queue(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    os.mkfifo(records.run_dir("w") / "spawn-env.json")
    proc = bounded(f"from pathlib import Path; from envoy.worker import queue, store; "
                   f"print(queue._take_env(store.State(Path({str(tmp_path)!r})), 'w'))")
    assert proc.returncode == 1 and "saved environment of w" in proc.stderr, proc.stderr[-500:]  # refused, at once


# -- touches: declared footprints ---------------------------------------------------
def stamp_span(stamps: Path, session: str) -> tuple[float, float]:
    return float((stamps / f"{session}.start").read_text()), float((stamps / f"{session}.end").read_text())


def test_overlapping_touches_never_run_at_once_and_disjoint_ones_do(repo, envoy, tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    env = {"PARALLEL_MAX_WORKERS": "4"}
    task = f"@stamp {stamps}\n@wait-for {tmp_path / 'go'}\n@sleep 0.3"
    first = envoy("parallel", "spawn", "--branch", "feat/x", "--touches", "src/db/**", "--task", task, env=env).data
    assert first["state"] in ("starting", "running")
    later = envoy("parallel", "spawn", "--branch", "feat/y", "--touches", "src/db/models.py", "--touches", "docs",
                  "--task", task, env=env).data
    assert later["state"] == "queued" and later["waits_for"] == "waits for feat-x: touches overlap"
    other = envoy("parallel", "spawn", "--branch", "feat/z", "--touches", "web/*.js", "--task", task, env=env).data
    assert other["state"] in ("starting", "running")  # disjoint: in parallel, as today
    view = {w["name"]: w for w in envoy("parallel", "status", env=env).data["workers"]}
    assert view["feat-y"]["state"] == "queued" and view["feat-y"]["waits_for"] == "waits for feat-x: touches overlap"
    (tmp_path / "go").touch()
    for name in ("feat-x", "feat-y", "feat-z"):
        assert wait_finished(envoy, name, timeout=60)["state"] == "succeeded"
    x_start, x_end = stamp_span(stamps, first["session_id"])
    y_start, _ = stamp_span(stamps, later["session_id"])
    z_start, _ = stamp_span(stamps, other["session_id"])
    assert y_start >= x_end  # the later one waited
    assert z_start < x_end  # the disjoint one did not


def test_a_queued_batch_with_touches_serialises_only_the_overlapping(repo, envoy, tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    task = f"@stamp {stamps}\n@sleep 0.5"
    lines = "".join(json.dumps(e) + "\n" for e in [
        {"branch": "a", "task": task, "touches": ["lib/**"]},
        {"branch": "b", "task": task, "touches": ["lib/core/*.py"]},
        {"branch": "c", "task": task, "touches": ["tests/**"]}])
    rows = envoy("parallel", "spawn", "--batch", "-", input=lines, env={"PARALLEL_MAX_WORKERS": "3"}).data["workers"]
    assert [r["state"] for r in rows][1] == "queued"
    assert envoy("parallel", "wait").code == 0
    sessions = {w["name"]: w["session_id"] for w in envoy("parallel", "status", "--all").data["workers"]}
    a, b, c = (stamp_span(stamps, sessions[n]) for n in "abc")
    assert b[0] >= a[1] and c[0] < a[1]


def test_invalid_or_absolute_touches_are_refused(repo, envoy):
    for glob in ("/etc/*", "~/x", "../up/**", "", "src/[ab", "a/x**/y", "."):
        result = envoy("parallel", "spawn", "--branch", "t", "--touches", glob, "--task", "x")
        assert result.code in (1, 2) and result.json["status"] == "error", (glob, result.stdout)
    assert envoy("parallel", "status", "--all").data["workers"] == []
