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

from conftest import Envoy, git, wait_until, watchers
from executors.test_ray import FakeRay, node_commit, push_run, ray, remote, spawn  # noqa: F401 (fixtures)

TOKEN = {"PARALLEL_RAY_TOKEN": "t0ken"}
SAMPLE = (Path(__file__).parent.parent / "samples" / "success.jsonl").read_text()


def on_disk(repo: Path, name: str) -> dict[str, Any]:
    return json.loads((repo / ".git" / "envoy" / "workers" / f"{name}.json").read_text())  # type: ignore[no-any-return]


def the_watcher(repo: Path) -> int:
    """The pid of the repository's one watcher, once it runs (it is started detached; two
    looks before the first took its lock start two, and the second ends at once)."""
    found = wait_until(lambda: (lambda pids: pids if len(pids) == 1 else None)(watchers(repo)), timeout=10)
    return int(found[0])


def succeed(repo: Path, ray: FakeRay, view: dict[str, Any], file: str) -> str:
    """What a node does at a good end: push the work and the run's record; then the job succeeds."""
    tip = node_commit(repo, file, file)
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


# -- a fleet's log reads: a budget per turn ----------------------------------------------
class Clock:
    """time for ray_watch: monotonic() is what the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_turn_reads_at_most_its_budget_of_logs_and_successive_turns_cover_the_fleet(
        repo: Path, ray: FakeRay, monkeypatch: Any) -> None:
    from envoy.executors import ray_watch
    from envoy.worker.store import State

    monkeypatch.setenv("PARALLEL_RAY_TOKEN", "t0ken")
    clock = Clock()
    monkeypatch.setattr(ray_watch, "time", clock)
    state = State(repo / ".git")
    running: list[Any] = []
    for i in range(30):
        name = f"w{i:02d}"
        record: Any = {"name": name, "branch": name, "state": "running", "path": f"/tmp/claude-worker-{name}",
                       "executor": "ray", "cluster": ray.url, "job_id": f"job-{name}", "last_action": None,
                       "last_action_at": None}
        state.write(record)
        running.append(record)
        ray.jobs[record["job_id"]] = {"submission_id": record["job_id"], "status": "RUNNING"}
        ray.logs[record["job_id"]] = f"envoy 02:40:01.000: action: Bash: make {name}\n"
    watcher = ray_watch.Watcher(state)
    budget = ray_watch.LOG_READS
    assert 1 <= budget < 30

    def turn() -> list[str]:
        before = len(ray.requests)
        watcher.actions([state.read(r["name"]) for r in running])
        clock.now += ray_watch.TURN
        return [p.split("/")[3] for m, p, _, _ in ray.requests[before:] if p.endswith("/logs")]

    seen: list[str] = []
    turns = -(-30 // budget)
    for _ in range(turns):
        reads = turn()
        assert len(reads) <= budget
        seen += reads
    assert set(seen) == {r["job_id"] for r in running}  # every one, in ceil(30 / budget) turns
    assert all(on_disk(repo, r["name"])["last_action"] == f"Bash: make {r['name']}" for r in running)
    # Round-robin from then on: none waits more than ceil(30 / budget) turns for its next read.
    last = {job: 0 for job in seen}
    for number in range(1, 4 * turns):
        reads = turn()
        assert len(reads) <= budget
        for job in reads:
            assert number - last[job] <= turns, (job, number, last[job])
            last[job] = number
    assert all(number - at < turns for at in last.values())
    # A worker that no longer runs is neither read nor remembered.
    watcher.actions([state.read(r["name"]) for r in running[:2]])
    assert set(watcher.read_logs) <= {"w00", "w01"}


def test_a_few_workers_logs_are_read_every_other_turn_as_before(repo: Path, ray: FakeRay, monkeypatch: Any) -> None:
    from envoy.executors import ray_watch
    from envoy.worker.store import State

    monkeypatch.setenv("PARALLEL_RAY_TOKEN", "t0ken")
    clock = Clock()
    monkeypatch.setattr(ray_watch, "time", clock)
    state = State(repo / ".git")
    running: list[Any] = [{"name": f"w{i}", "cluster": ray.url, "job_id": f"job-{i}", "state": "running"}
                          for i in range(2)]
    for r in running:
        ray.jobs[r["job_id"]] = {"submission_id": r["job_id"], "status": "RUNNING"}
    watcher = ray_watch.Watcher(state)
    counts = []
    for _ in range(4):
        before = len(ray.requests)
        watcher.actions(running)
        clock.now += ray_watch.TURN
        counts.append(sum(p.endswith("/logs") for _, p, _, _ in ray.requests[before:]))
    assert counts == [2, 0, 2, 0]  # ACTIONS_EVERY, not the budget, paces a small fleet


# -- one read's cost: the end of the log only ----------------------------------------------
def test_a_large_log_is_read_through_and_only_its_end_kept(ray: FakeRay) -> None:
    from envoy.executors.ray_api import RayJobs, logs_string_tail

    ray.jobs["j"] = {"submission_id": "j", "status": "RUNNING"}
    chatty = "".join(f"npm http fetch GET 200 https://registry/p{i} \"quoted\" \\ back ✓\n" for i in range(40000))
    ray.logs["j"] = ("envoy 02:40:01.000: action: Read: README\n" + chatty
                     + "envoy 02:40:09.000: action: Bash: npm test\nenvoy 02:40:09.500: still \"here\" \\n\n")
    assert len(json.dumps({"logs": ray.logs["j"]})) > 2_000_000
    api = RayJobs(ray.url, "t0ken")
    tail = api.logs_tail("j", keep=4096)
    assert len(tail) <= 4096 and ray.logs["j"].endswith(tail) and tail.startswith("npm http fetch")
    from envoy.executors.ray_watch import last_action

    assert last_action(tail) == "Bash: npm test"
    assert api.logs_tail("j") == ray.logs["j"][-len(api.logs_tail("j")):]
    ray.logs["j"] = "envoy 02:40:01.000: action: Read: README\n"  # small: whole
    assert api.logs_tail("j", keep=4096) == ray.logs["j"]
    assert api.logs_tail("missing", keep=4096) == ""
    # Cut anywhere, a cut answer gives whole lines of the log's end or nothing, never a half-escape.
    whole = json.dumps({"logs": 'a\\\\nb\n"c"\\n\nd\\\ne ✓\n'}).encode()
    for cut in range(1, len(whole)):
        part = logs_string_tail(whole[cut:])
        assert 'a\\\\nb\n"c"\\n\nd\\\ne ✓\n'.endswith(part), (cut, part)
        assert part == "" or whole[cut - 1:cut] != b"" and not part.startswith("n"), (cut, part)
    assert logs_string_tail(b'not json at all') == ""
