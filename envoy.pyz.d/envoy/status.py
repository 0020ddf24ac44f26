"""`envoy parallel status`: every worker and its exact state."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from . import output, queueing, slots, usage, workers
from .state import ACTIVE, STATES, Record, State
from .workspace import open_workspace


def summary(records: list[Record], cap: int) -> dict[str, Any]:
    counts: dict[str, Any] = {state: 0 for state in STATES}
    for record in records:
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    counts["total"] = len(records)
    counts["max_workers"] = cap
    counts["total_cost_usd"] = usage.total_cost(records)
    return counts


SETTLE = 3.0  # seconds status waits at most for ended runs to be recorded


def settled(state: State, cap: int) -> list[Record]:
    """Every record, refreshed, once no run that has ended is still shown running.

    A watcher frees its slot the moment its agent exits, so the next worker starts
    at once, and records the end a moment later (it reads the whole transcript).
    In between, the record still says `running` while a new worker holds the slot,
    and a status would count more running workers than the cap allows. That shows
    as more active records than held slots while over the cap (a cap lowered under
    running workers is not: each of them holds its slot): wait for the records."""
    deadline = time.monotonic() + SETTLE
    while True:
        records = workers.all_refreshed(state)
        active = sum(r["state"] in ACTIVE for r in records)
        if active <= cap or active <= len(slots.held_slots(state)) or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    cap = ws.config.get("PARALLEL_MAX_WORKERS")
    everyone = settled(ws.state, cap)
    if queueing.dispatch_if_queued(ws.git, ws.state, everyone):
        everyone = settled(ws.state, cap)  # a queue whose runner died moved on here
    records = everyone
    if args.worker:  # by name first, then by branch, as workers.find does
        records = [r for r in everyone if r["name"] == args.worker][:1] or \
            [r for r in everyone if r["branch"] == args.worker][:1]
    if args.worker and not records:
        records = [workers.find(ws.state, args.worker)]  # the refusal, with the names to pick from
    positions = queueing.queue_positions(everyone)
    views = [workers.short(r) for r in records]
    for view in views:
        if view["name"] in positions:
            view["queue_position"] = positions[view["name"]]
    data: dict[str, Any] = {"workers": views, "summary": summary(everyone, cap)}
    broken = ws.state.broken()
    if broken and not args.worker:
        data["broken"] = broken  # record files that are not records: shown, so they can be cleaned up
    output.success(data, render)
    return 0


def render(data: dict[str, Any]) -> str:
    s = data["summary"]
    head = (f"{s['running'] + s['starting']}/{s['max_workers']} running, {s['queued']} queued, "
            f"{s['succeeded']} succeeded, {s['failed']} failed, {s['lost']} lost"
            + (f"; total cost ${s['total_cost_usd']:.4f}" if s["total_cost_usd"] else ""))
    broken = [f"broken record {b['file']}: {b['problem']}\n  try: envoy parallel cleanup --worker "
              f"{Path(b['file']).name[:-len('.json')]}" for b in data.get("broken", [])]
    if not data["workers"]:
        return "\n".join([head, "no workers (start one: envoy parallel spawn --branch NAME --task \"...\")", *broken])
    lines = [head, f"{'WORKER':<24} {'STATE':<10} {'REASON':<14} {'TIME':>7} {'COST':>9}  BRANCH <- BASE"]
    lines += [workers.render_line(w) for w in data["workers"]]
    return "\n".join(lines + broken)
