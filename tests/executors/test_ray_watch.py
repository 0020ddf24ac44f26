"""The remote watcher (executors/ray_watch.py) against the fake Job Submission API of
test_ray.py: it moves remote workers on with no verb called, and reads their job
logs' action lines. No envoy verb runs between the cluster's change and the
assertion unless the test says so: the records are read from disk."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from conftest import Envoy, git, wait_until
from executors.test_ray import FakeRay, push_run, ray, remote, spawn, watchers  # noqa: F401 (fixtures)

TOKEN = {"PARALLEL_RAY_TOKEN": "t0ken"}
SAMPLE = (Path(__file__).parent.parent / "samples" / "success.jsonl").read_text()


def on_disk(repo: Path, name: str) -> dict[str, Any]:
    return json.loads((repo / ".git" / "envoy" / "workers" / f"{name}.json").read_text())  # type: ignore[no-any-return]


def the_watcher(repo: Path) -> int:
    """The pid of the repository's one watcher, once it runs (it is started detached; two
    looks before the first took its lock start two, and the second ends at once)."""
    found = wait_until(lambda: (lambda pids: pids if len(pids) == 1 else None)(watchers(repo)), timeout=10)
    return int(found[0])


def commit_aside(repo: Path, file: str) -> str:
    """A commit made off main, as a node would make it: its sha."""
    git(repo, "switch", "-qc", "aside")
    (repo / file).write_text(file + "\n")
    git(repo, "add", file)
    git(repo, "commit", "-qm", file)
    tip = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-qD", "aside")
    return tip


def succeed(repo: Path, ray: FakeRay, view: dict[str, Any], file: str) -> str:
    """What a node does at a good end: push the work and the run's record; then the job succeeds."""
    tip = commit_aside(repo, file)
    push_run(repo, view["name"], 1, SAMPLE, {"exit_code": 0, "why": None, "wip": None}, tip)
    ray.jobs[view["job_id"]].update(status="SUCCEEDED", driver_node_id="n1")
    return tip


# -- the job log's action lines ---------------------------------------------------
def test_action_lines_are_read_from_a_job_log() -> None:
    from envoy.executors.ray_watch import action_lines, last_action

    log = ("2026-12-02 02:40:00,123\tINFO job_manager.py:530 -- Runtime env is setting up.\n"
           "envoy 02:40:01.004: cloning git@example.com:r.git\n"
           "envoy 02:40:03.250: action: Bash: git status\n"
           "some output of the node envoy 02:40:03.300: action: not at a line's start\n"
           "envoy 02:40:04.5: action: a malformed time\n"
           "envoy 02:40:05.900: action: Edit: src/app.py   \n"
           "envoy 02:40:06.010: action: say \x1b[31mred\x1b[0m\tand\ttabs\r\n"
           "envoy 02:40:07.000: action:    \n"
           "envoy 02:40:08.000: finished, exit 0\n")
    assert action_lines(log) == [("02:40:03.250", "Bash: git status"), ("02:40:05.900", "Edit: src/app.py"),
                                 ("02:40:06.010", "say [31mred [0m and tabs")]
    assert last_action(log) == "say [31mred [0m and tabs"
    assert last_action("envoy 02:40:01.004: cloning\n") is None and last_action("") is None
    long = last_action(f"envoy 02:40:01.004: action: Bash: {'x' * 500}\n")
    assert long is not None and len(long) == 200


def test_a_records_last_action_is_checked_when_read() -> None:
    from envoy.worker.record import problem_with

    good: Any = {"name": "w", "branch": "w", "state": "running", "path": "/tmp/claude-worker-w", "executor": "ray",
                 "cluster": "http://h:8265", "last_action": "Bash: ls", "last_action_at": "2026-12-02T02:40:00Z"}
    assert problem_with(good, "w") is None
    for key, bad in (("last_action", 7), ("last_action", "a\nb"), ("last_action", "x" * 1000),
                     ("last_action_at", "yesterday"), ("last_action_at", 12)):
        assert problem_with({**good, key: bad}, "w") is not None, (key, bad)


# -- the watcher ------------------------------------------------------------------------
def test_a_dependent_is_submitted_and_ends_recorded_with_no_verb_called(envoy: Envoy, repo: Path, remote: Path,
                                                                         ray: FakeRay, tmp_path: Path) -> None:
    ended = tmp_path / "ended.txt"
    first = spawn(envoy, ray, "feat/first", "--on-end", f'echo "$ENVOY_WORKER $ENVOY_STATE" >> {ended}').data
    second = spawn(envoy, ray, "feat/second", "--after", "feat-first").data
    assert "job_id" not in second and len(ray.jobs) == 1
    the_watcher(repo)  # one per repository, however many workers
    before = len(ray.calls())
    tip = succeed(repo, ray, first, "f.txt")
    # No envoy verb from here: the watcher records the end and submits the dependent.
    wait_until(lambda: on_disk(repo, "feat-second").get("job_id") in ray.jobs, timeout=30)
    done = on_disk(repo, "feat-first")
    assert done["state"] == "succeeded" and done["node"] == "n1"
    assert git(repo, "rev-parse", "feat/first").strip() == tip  # its work fetched back
    assert git(remote, "rev-parse", "refs/envoy/workers/feat-second/job-1^").strip() == tip  # built on it
    wait_until(lambda: ended.exists() and ended.read_text() == "feat-first succeeded\n", timeout=30)  # on-end ran
    assert ray.calls()[before:] == []  # no verb looked at the cluster: the watcher did
    # Nothing remote active: the watcher ends by itself.
    succeed(repo, ray, {**on_disk(repo, "feat-second"), "name": "feat-second"}, "s.txt")
    wait_until(lambda: on_disk(repo, "feat-second")["state"] == "succeeded", timeout=30)
    wait_until(lambda: not watchers(repo), timeout=30)


def test_status_starts_the_watcher_again_if_it_died(envoy: Envoy, repo: Path, remote: Path, ray: FakeRay) -> None:
    spawn(envoy, ray, "feat/w")
    pid = the_watcher(repo)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not watchers(repo), timeout=10)
    assert envoy("parallel", "status", env=TOKEN).code == 0
    again = the_watcher(repo)
    assert again != pid
    from envoy.worker import locks
    from envoy.worker.store import State

    wait_until(lambda: locks.is_held(State(repo / ".git"), "ray-watch"), timeout=10)  # it runs: no second one
    assert envoy("parallel", "status", env=TOKEN).code == 0
    time.sleep(0.5)
    assert watchers(repo) == [again]  # a live one is found by its lock, and goes on


def test_the_watcher_stops_cleanly_on_sigterm(envoy: Envoy, repo: Path, remote: Path, ray: FakeRay) -> None:
    spawn(envoy, ray, "feat/w")
    pid = the_watcher(repo)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not watchers(repo), timeout=10)
    log = repo / ".git" / "envoy" / "envoy.log"
    assert "remote watcher" not in (log.read_text() if log.exists() else "")  # ended, not failed


def test_the_watcher_survives_a_cluster_that_refuses_connections(envoy: Envoy, repo: Path, remote: Path,
                                                                  ray: FakeRay) -> None:
    view = spawn(envoy, ray, "feat/far").data
    pid = the_watcher(repo)
    port = int(ray.url.rsplit(":", 1)[1])
    ray.stop()  # connections refused from now on
    log = repo / ".git" / "envoy" / "envoy.log"
    wait_until(lambda: log.exists() and "cannot reach the Ray cluster" in log.read_text(), timeout=30)
    time.sleep(10)  # a few more of its (slower) looks
    assert watchers(repo) == [pid]
    assert log.read_text().count("cannot reach the Ray cluster") == 1  # said once, not every look
    assert on_disk(repo, "feat-far")["state"] == "queued"  # unknown: nothing recorded
    back = FakeRay(token="t0ken", port=port)  # the cluster comes back, its job done meanwhile
    try:
        back.jobs, back.packages = ray.jobs, ray.packages
        succeed(repo, back, view, "far.txt")
        wait_until(lambda: on_disk(repo, "feat-far")["state"] == "succeeded", timeout=60)
        wait_until(lambda: not watchers(repo), timeout=30)
        assert "answers again" in log.read_text()
    finally:
        back.stop()


def test_last_action_of_a_running_remote_worker_is_recorded_and_shown(envoy: Envoy, repo: Path, remote: Path,
                                                                      ray: FakeRay) -> None:
    view = spawn(envoy, ray, "feat/busy").data
    job = ray.jobs[view["job_id"]]
    ray.logs[view["job_id"]] = ("envoy 02:40:01.000: cloning\n"
                                "envoy 02:40:02.000: action: Read: README\n"
                                "envoy 02:40:03.000: action: Bash: pytest -q\n")
    job.update(status="RUNNING", driver_node_id="n1")
    wait_until(lambda: on_disk(repo, "feat-busy").get("last_action") == "Bash: pytest -q", timeout=30)
    assert on_disk(repo, "feat-busy")["last_action_at"]
    row = envoy("parallel", "status", env=TOKEN).data["workers"][0]
    assert row["state"] == "running" and row["last_action"] == "Bash: pytest -q" and row["last_action_at"]
    assert "> Bash: pytest -q" in envoy("parallel", "status", "--text", env=TOKEN).stdout
    before = len(ray.calls())
    results = envoy("parallel", "results", "--worker", "feat-busy", env=TOKEN).data["results"][0]
    assert results["actions"] == ["02:40:02.000 Read: README", "02:40:03.000 Bash: pytest -q"]
    assert results["action_lines"] == 2
    assert ray.calls()[before:].count(("GET", f"/api/jobs/{view['job_id']}/logs")) == 1  # one request
    # watch's fleet view: no local transcript, so the record's last action.
    from envoy.watching.fleet import Fleet
    from envoy.worker.workspace import open_workspace

    fleet = Fleet(open_workspace(repo))
    fleet.poll()
    assert fleet.actions["feat-busy"] == "Bash: pytest -q"
    # A newer line replaces it (read at most every few seconds per worker).
    ray.logs[view["job_id"]] += "envoy 02:40:09.000: action: Edit: app.py\n"
    wait_until(lambda: on_disk(repo, "feat-busy").get("last_action") == "Edit: app.py", timeout=30)
    reads = [t for t in ray.calls(watcher=True) if t[1].endswith("/logs")]
    assert 2 <= len(reads) <= 8, reads


def test_a_queued_worker_s_log_is_not_read(envoy: Envoy, repo: Path, remote: Path, ray: FakeRay) -> None:
    view = spawn(envoy, ray, "feat/pending").data
    ray.logs[view["job_id"]] = "envoy 02:40:02.000: action: Read: README\n"
    wait_until(lambda: len(ray.calls(watcher=True)) >= 3, timeout=30)  # a few looks
    assert not [c for c in ray.calls(watcher=True) if c[1].endswith("/logs")]
    assert "last_action" not in on_disk(repo, "feat-pending") or on_disk(repo, "feat-pending")["last_action"] is None


def test_no_watcher_is_started_from_inside_a_workers_run(envoy: Envoy, repo: Path, remote: Path,
                                                         ray: FakeRay) -> None:
    spawn(envoy, ray, "feat/w")
    pid = the_watcher(repo)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not watchers(repo), timeout=10)
    # An agent running `status` in its worktree: what it started would die with its run.
    assert envoy("parallel", "status", env={**TOKEN, "ENVOY_RUN_ID": "abc123"}).code == 0
    time.sleep(1)
    assert watchers(repo) == []
