"""Stopping Ray runs (the Ray executor's, ray.py): a run whose job has not started
on its node is taken back through git (its job ref deleted on the remote with a
compare-and-swap the node's claim races against), a fleet in one push per remote;
one that started is stopped by its cluster, and its end recorded when the cluster
says so (ray.py's poll)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from filelock import Timeout

from envoy.errors import EnvoyError
from envoy.executors.ray_api import client
from envoy.executors.ray_data import PREFIX
from envoy.executors.ray_end import SETTLE_WAIT
from envoy.executors.ray_submit import POSTS_AT_ONCE
from envoy.git import Git
from envoy.worker import locks
from envoy.worker.record import Record, now_iso, transition

if TYPE_CHECKING:
    from envoy.worker.workspace import Workspace


def stop_many(ws: Workspace, records: list[Record]) -> list[Record]:
    """A run whose job has not started on its node is cancelled through git (see
    cancel_many): recorded stopped at once. One that started is stopped by its
    cluster (its end, with its work, is recorded when the cluster says so). The
    records it could ask (not those with no job yet)."""
    fresh = [ws.state.read(r["name"]) or r for r in records]
    fresh = [r for r in fresh if r.get("job_id")]
    cancelled = cancel_many(ws, [r for r in fresh if r["state"] in ("queued", "starting")])
    for record in fresh:
        if record["name"] in cancelled:
            continue
        record = ws.state.read(record["name"]) or record
        record["stop_requested"] = True
        ws.state.write(record)
        client(record["cluster"]).stop(record["job_id"])
    return fresh


def cancel_many(ws: Workspace, records: list[Record]) -> set[str]:
    """Take back runs whose jobs have not started on their nodes: each one's job ref
    (envoy's own, holding the task; never the work's head, wip or run refs) is
    deleted from the remote if it still points at the job's commit, in one push per
    remote. The node's first act is to move that ref the same way (node.claim), so
    exactly one wins: a cancelled job runs nothing if it ever gets a slot, and a job
    that started is not cancelled (the caller stops it through its cluster). Ray is
    asked to stop the cancelled jobs too (Ray 2.60 answers yes and keeps a pending
    job PENDING until it places it). The names of the workers cancelled."""
    held: list[tuple[Any, Record]] = []
    try:
        for record in records:
            lock = locks.lock(ws.state, locks.worker(record["name"]))
            try:
                lock.acquire(timeout=SETTLE_WAIT, poll_interval=0.05)
            except Timeout:
                continue
            held.append((lock, record))
        by_remote: dict[str, list[Record]] = {}
        for _, record in held:
            fresh = ws.state.read(record["name"])
            if (fresh is not None and fresh.get("job_id") == record.get("job_id") and fresh.get("job_commit")
                    and fresh["state"] in ("queued", "starting")):
                by_remote.setdefault(fresh["remote_url"], []).append(fresh)
        cancelled: list[Record] = []
        for url, fleet in by_remote.items():
            refs = {f"{PREFIX}/{r['name']}/job-{r.get('run') or 1}": r for r in fleet}
            try:
                taken = Git(fleet[0]["repo"]).swap_remote_refs(
                    url, [(ref, None, r["job_commit"]) for ref, r in refs.items()])
            except EnvoyError as exc:  # the remote cannot be reached: their clusters are asked instead
                ws.state.log(f"ray workers {', '.join(r['name'] for r in fleet)}: cancelling (deleting their "
                             f"job refs on {url}): {exc.message}")
                continue
            # the others' nodes took their runs first: they run, and are stopped as running jobs are
            for ref in taken:
                fresh = refs[ref]
                transition(fresh, "stopped", {
                    "reason": "cancelled", "finished_at": now_iso(), "stop_requested": True,
                    "error": f"cancelled before it started: its Ray job {fresh['job_id']} was still waiting "
                             f"for a slot on {fresh['cluster']}; its job ref is deleted, so it runs nothing if "
                             "it ever gets one"})
                ws.state.write(fresh)
                cancelled.append(fresh)
    finally:
        for lock, _ in held:
            lock.release()

    def tell(record: Record) -> None:
        try:
            client(record["cluster"]).stop(record["job_id"])
        except EnvoyError as exc:
            ws.state.log(f"ray worker {record['name']}: stopping cancelled job {record['job_id']}: {exc.message}")

    if len(cancelled) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(POSTS_AT_ONCE, len(cancelled))) as pool:
            list(pool.map(tell, cancelled))
    else:
        for record in cancelled:
            tell(record)
    return {r["name"] for r in cancelled}
