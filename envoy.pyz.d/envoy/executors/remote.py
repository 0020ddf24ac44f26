"""Polling workers that run elsewhere, for lookup.py (which keeps every record's
state exact): the records of each executor other than the local one, looked at
together, in one request per cluster."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from envoy.worker.record import Record
    from envoy.worker.store import State


def poll(state: State, records: list[Record]) -> list[Record]:
    """`records` (none of them local), their states made exact, in order."""
    from envoy.executors import ray

    return ray.EXECUTOR.poll(state, records)


def actions(record: Record, tail: int) -> dict[str, object]:
    """A running remote worker's actions so far, from its job's log (one request): the
    last `tail` as "HH:MM:SS.mmm text" and how many there are, or why the cluster
    could not say."""
    from envoy.errors import EnvoyError
    from envoy.executors import ray_api, ray_watch

    try:
        log = ray_api.client(record["cluster"]).logs(record["job_id"])
    except EnvoyError as exc:
        return {"cluster_error": {"type": exc.kind, "message": exc.message, "address": str(record["cluster"])}}
    lines = [f"{stamp} {text}" for stamp, text in ray_watch.action_lines(log)]
    return {"actions": lines[-tail:] if tail > 0 else [], "action_lines": len(lines)}
