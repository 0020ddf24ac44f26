"""What a worker's finisher needs of stopping, and nothing more (it runs beside every
agent, and what it imports must not reach back up to lookup): why a stop was asked
for, left beside the worker's logs by `stop` (stopping.py) and read once by the
finisher; and whether the workers' total cost is now over PARALLEL_BUDGET_USD, to
start the process that stops the rest (`envoy _budget`, stopping.enforce_budget)."""
from __future__ import annotations

import json

from envoy import files, processes
from envoy.worker.record import ACTIVE, Record
from envoy.worker.store import FILE_MODE, State


def _request_file(state: State, name: str) -> str:
    return str(state.logs / name / "stop.json")


def ask(state: State, name: str, reason: str, error: str) -> None:
    """Leave why the worker is being stopped where its finisher reads it: written whole
    (beside it, renamed over it), since two stops can ask at once (two budget stops
    started by two finishers) while the finisher reads: truncated in place, the reader
    found nothing and took a budget stop for a cleanup's."""
    state.run_dir(name)
    files.replace_below(state.base, _request_file(state, name),
                        json.dumps({"reason": reason, "error": error}).encode(), FILE_MODE)


def asked(state: State, name: str) -> tuple[str, str] | None:
    """(reason, error) of a stop asked for, if one was; read once and forgotten.
    The file is under .git/envoy and untrusted: only two short strings are taken."""
    path = _request_file(state, name)
    try:
        data = files.parse_json(state.read_bytes(path, 4096))  # never through a symlink
    except (OSError, ValueError):
        return None
    finally:
        forget(state, name)
    if not isinstance(data, dict):
        return None
    reason, error = data.get("reason"), data.get("error")
    if not (isinstance(reason, str) and reason.isidentifier() and isinstance(error, str)):
        return None
    return reason[:40], error[:300]


def forget(state: State, name: str) -> None:
    try:
        state.remove(_request_file(state, name))  # never through a symlink
    except OSError as exc:  # a link on the way to it: left alone, and said
        state.log(f"stop request of {name}: {exc}")


def stoppable(records: list[Record]) -> list[str]:
    """Names of the workers `stop --all` stops: queued ones first (stopping a running one
    frees a slot the queue would otherwise hand to one of them)."""
    queued = [r["name"] for r in records if r["state"] == "queued"]
    return queued + [r["name"] for r in records if r["state"] in ACTIVE]


def over_budget(records: list[Record], budget: float | None) -> bool:
    from envoy import usage

    return budget is not None and usage.total_cost(records) > budget


def check_budget(state: State, name: str) -> None:
    """In a finisher, after recording a run that cost something: if the workers' total is
    now over PARALLEL_BUDGET_USD (as this worker was spawned with it), start a process
    that stops the others (`envoy _budget`); this one holds its worker lock till it returns."""
    from pathlib import Path

    from envoy.config import Config

    try:
        records = state.all()
        mine = next((r for r in records if r["name"] == name), None)
        if mine is None or not mine.get("repo"):
            return
        budget = Config(Path(mine["repo"])).get("PARALLEL_BUDGET_USD")
        if over_budget(records, budget) and stoppable(records):
            processes.start_detached([*processes.self_command(bare=True), "_budget", str(state.root.parent)],
                                     state.log_file)
    except Exception as exc:
        state.log(f"budget check after {name}: {type(exc).__name__}: {exc}")
