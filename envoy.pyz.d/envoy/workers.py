"""Finding workers, keeping their recorded state exact, and their short view."""
from __future__ import annotations

from typing import Any

from filelock import Timeout

from . import processes, slots, usage
from .errors import EnvoyError
from .output import duration as format_duration, one_line
from .state import ACTIVE, Record, State, elapsed, now_iso

LOST_ERROR = "its supervisor ended without recording an end (killed, or the machine restarted)"
CUT_SHORT_ERROR = ("its checkout was cut short (the process making it was killed); "
                   "envoy parallel cleanup removes what it made")


def find(state: State, key: str) -> Record:
    """A worker by name or by branch; never by a path built from user text."""
    record = state.read(key) if _plain_name(key) else None
    if record is None:
        record = next((r for r in state.all() if r.get("branch") == key), None)
    if record is None:
        names = [r["name"] for r in state.all()]
        raise EnvoyError("not_found", f"no worker named {key!r}",
                         f"pick one of: {', '.join(names)}" if names else "envoy parallel status lists the workers")
    return refresh(state, record)


def _plain_name(key: str) -> bool:
    return (bool(key) and "/" not in key and "\0" not in key and key not in (".", "..")
            and len(key.encode("utf-8", "surrogateescape")) < 250)  # a longer one is no file name


def refresh(state: State, record: Record) -> Record:
    """Turn a `running` record whose supervisor is gone into `lost`. Liveness is the
    worker lock: held means alive, whatever PIDs say."""
    if record.get("state") not in ACTIVE or slots.is_held(state, slots.worker(record["name"])):
        return record
    if record["state"] == "starting" and slots.is_held(state, slots.LAUNCH):
        return record  # a launcher is still bringing it up
    lock = slots.lock(state, slots.worker(record["name"]))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return state.read(record["name"]) or record  # a supervisor just took it
    try:
        fresh = state.read(record["name"])
        if fresh is None or fresh.get("state") not in ACTIVE:
            return fresh or record
        fresh.update(state="lost", reason="lost", error=CUT_SHORT_ERROR if fresh.get("checking_out") else LOST_ERROR,
                     finished_at=now_iso())
        fresh["duration_s"] = elapsed(fresh)
        state.write(fresh)
        processes.end_run(fresh.get("run_id"))  # what its supervisor could no longer end
        return fresh
    finally:
        lock.release()


def all_refreshed(state: State) -> list[Record]:
    return [refresh(state, r) for r in state.all()]


def duration(record: Record) -> float | None:
    """Seconds the latest run took, or has taken so far while it runs."""
    return elapsed(record) if record.get("state") in ACTIVE else record.get("duration_s")


SHORT_FIELDS = ("name", "branch", "state", "reason", "base", "path", "session_id", "exit_code", "cost_usd",
                "num_turns", "runs", "created_at", "started_at", "finished_at", "duration_s", "result", "error")


def short(record: Record) -> dict[str, Any]:
    """The record as `status` shows it: stable names, long texts cut, and nothing
    that is empty or implied (an agent reads every byte; `results` has it all)."""
    view = {k: record.get(k) for k in SHORT_FIELDS}
    view["cost_usd"], view["num_turns"] = usage.cost(view["cost_usd"]), usage.turns(view["num_turns"])
    runs = len(record.get("runs") or [])
    view["runs"] = runs if runs > 1 else None
    if record.get("after"):
        view["after"] = record["after"]
    view["duration_s"] = duration(record)
    if record.get("state") != "queued":
        view["created_at"] = None  # the time that matters once it started is started_at
    if record.get("state") == "succeeded":
        view["exit_code"] = None  # 0, by definition
    view["result"] = one_line(record.get("result"), 48) or None
    view["error"] = one_line(record.get("error"), 160) or None
    return {k: v for k, v in view.items() if v is not None}


def render_line(view: dict[str, Any]) -> str:
    """One row of the status table, from a short view."""
    cost = view.get("cost_usd")
    return (f"{view['name']:<24} {view['state']:<10} {view.get('reason') or '':<14} "
            f"{format_duration(view.get('duration_s')):>7} "
            f"{'$%.4f' % cost if cost else '-':>9}  {view.get('branch')} <- {view.get('base')}")
