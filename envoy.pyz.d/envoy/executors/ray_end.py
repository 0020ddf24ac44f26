"""How a Ray worker's run goes and ends, as its record says it: a job's status the
cluster reports written into the record (settle: starting, running, ended), and
how the run ended, from the record its node pushed, or, when there is none (the
node died, the job was stopped before it could push), from Ray's word."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from filelock import Timeout

from envoy.errors import EnvoyError
from envoy.executors.ray_data import fetch_work, json_object
from envoy.git import Git
from envoy.worker import finish, locks
from envoy.worker.record import FINISHED, Record, now_iso, transition

if TYPE_CHECKING:
    from envoy.worker.store import State

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
SETTLE_WAIT = 10.0  # seconds a look waits for another process recording a job's end (the watcher, say)
NODE_DEATH = re.compile(r"node|raylet|died|dead|heartbeat", re.IGNORECASE)


def run_ending(state: State, git: Git, record: Record, run: int) -> tuple[Record, dict[str, Any]]:
    """How the run ended, from the record its node pushed (fetched to refs/envoy/runs/):
    its log and stderr tail become the run's files here, as a local run's are."""
    name = record["name"]
    ref = f"refs/envoy/runs/{name}/{run}"
    state.run_dir(name)
    for file, suffix in (("stream.jsonl", "jsonl"), ("err.txt", "err")):
        text = git.file_at(ref, file) or ""
        with state.private_open(state.run_file(name, run, suffix), "w") as f:  # never through a symlink
            f.write(text)
    raw = json_object(git.file_at(ref, "ending.json"))
    failed = raw.get("failed")
    if isinstance(failed, dict):
        reason = failed.get("reason") if isinstance(failed.get("reason"), str) else "node_error"
        error = failed.get("error") if isinstance(failed.get("error"), str) else "the run failed on its node"
        code = failed.get("exit_code")
        return {"state": "failed", "reason": reason, "error": error,
                "exit_code": code if isinstance(code, int) and not isinstance(code, bool) else None}, {}
    code = raw.get("exit_code")
    why = raw.get("why") if raw.get("why") in ("stopped", "timeout") else None
    ending, result = finish.agent_ending(state, name, run, code if isinstance(code, int) else None, why)
    if why == "stopped" and not record.get("stop_requested"):
        ending["error"] = "stopped: its Ray job was stopped from outside envoy (Ray's dashboard, CLI or API)"
    return ending, result


def job_ending(record: Record, job: dict[str, Any] | None, cluster: str) -> Record:
    """Why a job that pushed no run record ended, in Ray's words."""
    kept = f"; its pushed commits are on branch {record['branch']}"
    if job is None:
        return {"state": "failed", "reason": "job_lost",
                "error": f"the Ray cluster at {cluster} no longer knows job {record.get('job_id')} "
                         f"(restarted, or the job was deleted){kept}"}
    found = job.get("message")
    message = found if isinstance(found, str) else ""
    code = job.get("driver_exit_code")
    exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if job.get("status") == "STOPPED":
        who = "by envoy" if record.get("stop_requested") else "from outside envoy (Ray's dashboard, CLI or API)"
        return {"state": "stopped", "reason": "stopped", "exit_code": exit_code,  # resumable, as a local stop
                "error": f"stopped: its Ray job was stopped {who}{kept}"}
    if job.get("status") == "SUCCEEDED":
        return {"state": "failed", "reason": "no_result", "exit_code": exit_code,
                "error": f"its Ray job ended but pushed no record of its run (see: ray job logs "
                         f"{record.get('job_id')}){kept}"}
    if NODE_DEATH.search(message):
        return {"state": "failed", "reason": "node_lost", "exit_code": exit_code,
                "error": f"the node running it died (Ray: {message[:300]}){kept}"}
    return {"state": "failed", "reason": "job_failed", "exit_code": exit_code,
            "error": f"its Ray job failed (Ray: {message[:300] or 'no message'}){kept}"}


def settle(state: State, record: Record, job: dict[str, Any] | None, cluster: str) -> Record:
    """The record with its job's status as the cluster says it (`job`; None: the cluster
    does not know it): written under the worker's lock when it changed, the end
    recorded (finish_job) when the job ended."""
    status = job.get("status") if job else None
    if status == record.get("job_status") and status not in TERMINAL and job is not None:
        return record  # nothing new: no write, no lock
    lock = locks.lock(state, locks.worker(record["name"]))
    try:  # another envoy process (the watcher) may be recording this very change: its record is the answer
        lock.acquire(timeout=SETTLE_WAIT, poll_interval=0.05)
    except Timeout:
        return record
    try:
        fresh = state.read(record["name"])
        if fresh is None or fresh.get("job_id") != record.get("job_id") or fresh["state"] in FINISHED:
            return fresh or record
        if job is None or status in TERMINAL:
            return finish_job(state, fresh, job, cluster)
        if status == "RUNNING":
            to_running(fresh, job)
        fresh["job_status"] = str(status)
        state.write(fresh)
        return fresh
    finally:
        lock.release()

def to_running(record: Record, job: dict[str, Any]) -> None:
    """A record whose job started: running, since Ray's start time, on its node."""
    if record["state"] == "queued":
        transition(record, "starting")
    if record["state"] == "starting":
        start = job.get("start_time")
        started = now_iso()
        if isinstance(start, (int, float)) and not isinstance(start, bool):
            from datetime import datetime, timezone

            started = datetime.fromtimestamp(start / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        transition(record, "running", {"started_at": started, "finished_at": None, "duration_s": None,
                                       "reason": None, "error": None, "exit_code": None})
    node = job.get("driver_node_id")
    if isinstance(node, str) and node:
        record["node"] = node

def finish_job(state: State, record: Record, job: dict[str, Any] | None, cluster: str) -> Record:
    """The job ended (or the cluster forgot it): fetch what the worker pushed and
    record the end, from the run's own record if the node pushed one."""
    name, run = record["name"], int(record.get("run") or 1)
    if job is not None:
        to_running(record, job)
    else:
        to_running(record, {})
    record["job_status"] = str(job.get("status")) if job else "MISSING"
    state.write(record)
    git = Git(record["repo"])
    try:
        ending_file = fetch_work(git, record)
    except EnvoyError as exc:  # the remote cannot be read now: the next look tries again
        state.log(f"ray worker {name}: fetching its work: {exc.message}")
        return {**record, "cluster_error": {"type": exc.kind, "message": exc.message,
                                            "address": str(record.get("remote_url"))}}
    result: dict[str, Any] = {}
    if ending_file is not None:
        ending, result = run_ending(state, git, record, run)
        if job is not None and job.get("status") in ("STOPPED", "FAILED"):
            # Ray's word on why its job ended (stopped, a node lost) comes before what the
            # run saw of it (killed by a signal): the run's record keeps its cost and answer.
            said = job_ending(record, job, cluster)
            if said["reason"] != "job_failed" or ending.get("state") != "failed":
                ending = {**ending, **said, "exit_code": ending.get("exit_code")}  # an ending, not a record
    else:
        ending = job_ending(record, job, cluster)
    finish.record_end(state, name, run, ending, result)
    done = state.read(name) or record
    if ending_file is not None and ending_file.get("wip"):
        done["wip_ref"] = f"refs/envoy/wip/{name}"
    elif ending_file is not None:  # this run left none: an earlier run's is not this one's to show
        done.pop("wip_ref", None)
    done["job_status"] = record["job_status"]
    done["node"] = record.get("node")
    state.write(done)
    return done
