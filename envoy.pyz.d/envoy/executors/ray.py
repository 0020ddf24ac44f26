"""The Ray executor: each worker is one job on a Ray cluster, submitted and
watched through the Job Submission REST API (ray_api.py), with git as the data
plane (node.py runs on the node). RayExecutor is the executor interface
(base.py); its parts live beside it: ray_submit.py submits runs (a job commit
pushed as refs/envoy/workers/<name>/job-<run>, the only ref envoy pushes, then
a job per run), ray_stop.py stops them (a pending run taken back through git),
ray_data.py is the git side, ray_end.py a job's status written into its record
and how its run ended, ray_watch.py the process that watches the fleet.
Credentials are the nodes' own environment.

Watching: one GET /api/jobs/ per cluster for any number of workers. When a job
ends, the worker's refs are fetched (branch, uncommitted work, the run's log and
transcript) and the end is recorded as a local run's is (ray_end.settle,
worker/finish.py).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import Timeout

from envoy import processes
from envoy.errors import EnvoyError
from envoy.executors import ray_stop
from envoy.executors.ray_api import base_url, client
from envoy.executors.ray_data import last_wip, remote_url
from envoy.executors.ray_end import settle
from envoy.executors.ray_submit import JobRun, resources, submit_many
from envoy.git import Git
from envoy.worker import locks
from envoy.worker.record import ACTIVE, FINISHED, Record, now_iso, transition

if TYPE_CHECKING:
    from envoy.worker.record import Options
    from envoy.worker.store import State
    from envoy.worker.workspace import Workspace

WATCHER = "ray-watch"  # the lock the remote watcher holds while it lives (ray_watch.py)


def keep_watched(state: State) -> None:
    """Make sure the remote watcher (ray_watch.py) runs: one lock probe when it does.
    Called by whatever submits a job or looks at active remote workers, after the
    record says so (the watcher re-reads the records after letting go of its lock,
    so one of the two sees the other). Never from a process of a worker's run: what
    that process starts carries its ENVOY_RUN_ID and dies with it (see queue.dispatch)."""
    if processes.RUN_ID in os.environ or locks.is_held(state, WATCHER):
        return
    try:
        processes.start_detached([*processes.self_command(bare=True), "_ray_watch", str(state.root.parent)],
                                 state.log_file)
    except OSError as exc:  # no fork left, say: the next look tries again
        state.log(f"remote watcher: could not start: {exc}")


class RayExecutor:
    name = "ray"

    def __init__(self) -> None:
        self._remotes: dict[tuple[str, str], str] = {}  # (checkout, --remote) -> its URL, in this process

    # -- starting ---------------------------------------------------------
    def prepare(self, ws: Workspace, record: Record, where: str | None, remote: str | None) -> None:
        """Check where it goes (the cluster's address, the remote, the resources it asks
        for) before anything is made; the agent is the node's own `claude`."""
        key = (str(ws.toplevel), remote or "origin")
        if key not in self._remotes:  # a batch resolves its remote once, not once a line
            self._remotes[key] = remote_url(ws.git, remote or "origin")
        record.update({"executor": "ray", "cluster": base_url(where or ""), "node": None, "agent": "claude",
                       "remote_url": self._remotes[key]})
        resources(ws.config.raw("PARALLEL_RAY_RESOURCE")[0])

    def start(self, ws: Workspace, record: Record, task: str, *, queued: bool) -> tuple[Record, int | None]:
        """Submit the worker's first run: it shows queued while the cluster has no room
        for it (pending there). With --after it waits here, unsubmitted, until its
        dependencies have succeeded (see poll). A batch of one (start_many)."""
        record, error = self.start_many(ws, [record], [task])[0]
        if error is not None:
            raise error
        return record, None

    def start_many(self, ws: Workspace, records: list[Record],
                   tasks: list[str]) -> list[tuple[Record, EnvoyError | None]]:
        """start() for many workers (spawn --batch), under the launch mutex with the tasks
        written: the package checked once, every job ref pushed in one `git push`, then a
        job submitted per worker. No local slot is taken: the cluster queues what it has
        no room for. The --after ones wait unsubmitted, written only once the push went
        through: a failed push (raised) records nothing. Each record with the error that
        kept it from being submitted, if one did (it is then recorded failed)."""
        runs = []
        for record, task in zip(records, tasks):
            transition(record, "queued", {"queued_seq": 0})
            if not record.get("after"):
                runs.append(JobRun(record, task, 1, record["base_sha"] or "", None, None))
        submitted = iter(submit_many(ws.state, ws.git, runs, ws.config.raw("PARALLEL_RAY_RESOURCE")[0],
                                     locked=False))
        out: list[tuple[Record, EnvoyError | None]] = []
        for record in records:
            if record.get("after"):
                ws.state.write(record)
                out.append((record, None))
            else:
                out.append(next(submitted))
        keep_watched(ws.state)  # it records their ends and submits the --after ones in time
        return out

    def submit(self, state: State, git: Git, record: Record, task: str, run: int, start: str,
               transcript: str | None, resource: str | None, branches: dict[str, str] | None = None,
               wip: str | None = None) -> Record:
        """Submit one run (the caller holds the worker's lock): a batch of one. Raises
        what kept it from being submitted (a failed POST is recorded failed first)."""
        record, error = submit_many(state, git, [JobRun(record, task, run, start, transcript, branches, wip)],
                                    resource, locked=True)[0]
        if error is not None:
            raise error
        keep_watched(state)
        return record

    # -- watching ---------------------------------------------------------
    def poll(self, state: State, records: list[Record]) -> list[Record]:
        out = list(records)
        by_cluster: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            if record.get("state") not in FINISHED and record.get("cluster"):
                by_cluster.setdefault(record["cluster"], []).append(i)
        for cluster, indexes in by_cluster.items():
            waiting = [i for i in indexes if not records[i].get("job_id")]
            for i in waiting:  # --after: submitted once its dependencies succeeded
                out[i] = self._dispatch_dependent(state, records[i])
            watched = [i for i in indexes if out[i].get("job_id") and out[i].get("state") not in FINISHED]
            if not watched:
                continue
            try:
                jobs = {j.get("submission_id"): j for j in client(cluster).jobs()}
            except EnvoyError as exc:  # shown on the rows, never written: the worker's state is unknown
                for i in watched:
                    out[i] = {**out[i], "cluster_error": {"type": exc.kind, "message": exc.message,
                                                          "address": str(cluster)}}
                continue
            for i in watched:
                out[i] = settle(state, out[i], jobs.get(out[i]["job_id"]), cluster)
        if any(r.get("state") not in FINISHED for r in out):
            keep_watched(state)  # re-started here if it died: every look at an active remote worker
        return out

    # -- resuming -----------------------------------------------------------
    def check_resumable(self, record: Record) -> None:
        name = record["name"]
        if record["state"] in ACTIVE or record["state"] == "queued":
            raise EnvoyError("still_running", f"worker {name} is still {record['state']} on the cluster",
                             f"wait for it first: envoy parallel wait --worker {name}")
        if not record.get("run") or not record.get("job_id"):
            raise EnvoyError("invalid_input", f"worker {name} never ran, so there is no session to resume",
                             "spawn a new worker instead")
        if record["state"] == "stopped" and record.get("reason") == "cancelled" and record.get("run") == 1:
            raise EnvoyError("invalid_input", f"worker {name} was cancelled before its first run started, so there "
                             "is no session to resume", f"remove it (envoy parallel cleanup --worker {name}) and "
                             "spawn it again")

    def relaunch(self, ws: Workspace, record: Record, task: str, options: Options | None = None,
                 branches: dict[str, str] | None = None) -> Record:
        state, git = ws.state, ws.git
        lock = locks.lock(state, locks.worker(record["name"]))
        try:
            lock.acquire(timeout=10)
        except Timeout:
            raise EnvoyError("busy", f"another envoy process is changing worker {record['name']}",
                             "retry in a moment") from None
        try:
            fresh = state.read(record["name"]) or record
            self.check_resumable(fresh)
            run = int(fresh.get("run") or 1)
            ran = run  # the run whose session this one continues: a run cancelled unstarted had none of its own
            if fresh["state"] == "stopped" and fresh.get("reason") == "cancelled":
                ran = int(fresh.get("resumes_run") or run - 1)
            transcript = git.file_at(f"refs/envoy/runs/{fresh['name']}/{ran}", "transcript.jsonl")
            if transcript is None:
                raise EnvoyError("not_found", f"the session of {fresh['name']} did not come back from its node "
                                 "(no transcript on its run ref)", "spawn a new worker instead")
            start = git.branch_tip(fresh["branch"]) or fresh.get("base_sha") or ""
            wip = last_wip(git, fresh["name"], ran)
            state.write_task(fresh["name"], run + 1, task)
            transition(fresh, "starting", {"options": options or fresh["options"], "reason": None, "error": None,
                                           "resumes_run": ran})
            return self.submit(state, git, fresh, task, run + 1, start, transcript,
                               ws.config.raw("PARALLEL_RAY_RESOURCE")[0], branches, wip)
        finally:
            lock.release()

    def _dispatch_dependent(self, state: State, record: Record) -> Record:
        """A queued --after worker: submitted once every dependency succeeded; failed
        if one ended otherwise."""
        deps = [state.read(n) for n in record.get("after") or []]
        if any(d is None or d["state"] in ("failed", "lost") for d in deps):
            missing = [n for n, d in zip(record.get("after") or [], deps) if d is None or d["state"] != "succeeded"]
            return self._fail_queued(state, record, "dependency_failed",
                                     f"dependency {', '.join(missing)} did not succeed")
        if not all(d is not None and d["state"] == "succeeded" for d in deps):
            return record
        lock = locks.lock(state, locks.worker(record["name"]))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return record
        try:
            fresh = state.read(record["name"])
            if fresh is None or fresh.get("job_id") or fresh["state"] != "queued":
                return fresh or record
            git = Git(fresh["repo"])
            first = deps[0]
            assert first is not None
            start = fresh.get("base_sha") or git.branch_tip(first["branch"]) or first.get("base_sha") or ""
            fresh["base"], fresh["base_sha"] = fresh.get("base") or first["branch"], start
            task = state.run_file(fresh["name"], 1, "task").read_text(encoding="utf-8")
            try:
                from envoy.config import Config

                resource = Config(Path(fresh["repo"])).raw("PARALLEL_RAY_RESOURCE")[0]
                return self.submit(state, git, fresh, task, 1, start, None, resource)
            except EnvoyError as exc:
                now = state.read(fresh["name"]) or fresh
                if exc.kind == "cluster_unreachable" and now["state"] == "queued" and not now.get("job_id"):
                    # nothing was submitted (nor recorded failed): it stays queued, the next look tries again
                    return {**now, "cluster_error": {"type": exc.kind, "message": exc.message,
                                                     "address": str(fresh["cluster"])}}
                return self._fail_queued(state, fresh, "start_failed", exc.message)
        finally:
            lock.release()

    @staticmethod
    def _fail_queued(state: State, record: Record, reason: str, error: str) -> Record:
        fresh = state.read(record["name"]) or record
        if fresh["state"] != "queued":
            return fresh
        transition(fresh, "failed", {"reason": reason, "error": error, "finished_at": now_iso()})
        state.write(fresh)
        return fresh

    # -- stopping and forgetting -------------------------------------------
    def stop(self, ws: Workspace, record: Record) -> bool:
        return bool(self.stop_many(ws, [record]))

    def stop_many(self, ws: Workspace, records: list[Record]) -> list[Record]:
        """A pending run is taken back through git, a started one stopped by its cluster
        (ray_stop.py): the records it could ask (not those with no job yet)."""
        return ray_stop.stop_many(ws, records)

    def forget(self, ws: Workspace, record: Record) -> None:
        """Drop the job from the cluster's list (its logs go with it). The remote's refs
        are kept: they may hold the only copy of work that is not merged."""
        if record.get("job_id") and record.get("cluster"):
            try:
                client(record["cluster"]).delete(record["job_id"])
            except EnvoyError as exc:
                ws.state.log(f"ray worker {record['name']}: deleting job {record['job_id']}: {exc.message}")


EXECUTOR = RayExecutor()
