"""Where a worker runs: its executor. `local` (this machine: worktrees, detached
supervisors, lockfiles; the default, and what a record without `executor` means)
or `ray` (a job on a Ray cluster, git as the data plane). Verbs reach them
through `of(record)` and the small interface in base.py; each executor's module
is imported only when a record of it is met, so local runs pay nothing for Ray."""
from __future__ import annotations

TYPE_CHECKING = False  # not typing's: status imports this on every run
if TYPE_CHECKING:
    from envoy.executors.base import Executor
    from envoy.worker.record import Record
    from envoy.worker.workspace import Workspace

LOCAL = "local"
KINDS = (LOCAL, "ray")


def kind(record: Record) -> str:
    return record.get("executor") or LOCAL


def is_local(record: Record) -> bool:
    return kind(record) == LOCAL


def placement(on: str | None) -> tuple[str, str | None]:
    """(executor, address) from --on / PARALLEL_EXECUTOR: `local` (or nothing), or a
    Ray cluster's dashboard address."""
    text = (on or "").strip()
    if not text or text == LOCAL:
        return LOCAL, None
    if text.startswith(("ray://", "http://", "https://")):
        return "ray", text
    from envoy.errors import EnvoyError

    raise EnvoyError("invalid_input", f"{on!r} is not a place to run workers",
                     "use --on local, or --on ray://HEAD:8265 (a Ray cluster's dashboard address)")


def get(name: str) -> Executor:
    if name == "ray":
        from envoy.executors import ray

        return ray.EXECUTOR
    from envoy.executors import local

    return local.EXECUTOR


def of(record: Record) -> Executor:
    return get(kind(record))


def stop_many(ws: Workspace, records: list[Record]) -> list[Record]:
    """Ask each record's executor to stop its workers, each executor's fleet in one go
    (a cluster's pending jobs are taken back in one push): those it could ask."""
    asked: list[Record] = []
    for name in dict.fromkeys(kind(r) for r in records):
        asked += get(name).stop_many(ws, [r for r in records if kind(r) == name])
    return asked
