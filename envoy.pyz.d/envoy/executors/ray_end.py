"""How a Ray worker's run ended: from the record its node pushed, or, when there is
none (the node died, the job was stopped before it could push), from Ray's word."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from envoy.executors.ray_data import json_object
from envoy.worker import finish

if TYPE_CHECKING:
    from envoy.git import Git
    from envoy.worker.record import Record
    from envoy.worker.store import State

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
