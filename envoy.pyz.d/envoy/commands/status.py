"""`envoy parallel status`: every worker and its exact state."""
from __future__ import annotations

import argparse
import time
from typing import Any

from envoy import output
from envoy.commands import common
from envoy.worker import locks, lookup, queue
from envoy.worker.record import ACTIVE, Record
from envoy.worker.store import State
from envoy.worker.workspace import open_workspace

SETTLE = 3.0  # seconds status waits at most for ended runs to be recorded


def settled(state: State, cap: int) -> tuple[list[Record], list[dict[str, str]]]:
    """Every record, refreshed, once no run that has ended is still shown running; and
    the broken ones (both from one read of the records).

    A watcher frees its slot the moment its agent exits, so the next worker starts
    at once, and records the end a moment later (it reads the whole transcript).
    In between, the record still says `running` while a new worker holds the slot,
    and a status would count more running workers than the cap allows. That shows
    as more active records than held slots while over the cap (a cap lowered under
    running workers is not: each of them holds its slot): wait for the records."""
    deadline = time.monotonic() + SETTLE
    while True:
        found, broken = state.scan()
        records = lookup.refresh_all(state, found)
        active = sum(r["state"] in ACTIVE and not r.get("executor") for r in records)  # elsewhere: no slot here
        if active <= cap or active <= len(locks.held_slots(state)) or time.monotonic() > deadline:
            return records, broken
        time.sleep(0.02)


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    cap = ws.config.get("PARALLEL_MAX_WORKERS")
    everyone, broken = settled(ws.state, cap)
    if queue.dispatch_if_queued(ws.git, ws.state, everyone):
        everyone, broken = settled(ws.state, cap)  # a queue whose runner died moved on here
    records = everyone
    if args.worker:  # by name, else by branch; the refusal names the workers to pick from
        # Among the records just refreshed (a cluster's worker costs no second request);
        # lookup.find for one written meanwhile, and for the refusal.
        found = [r for r in everyone if r["name"] == args.worker] or [r for r in everyone if r["branch"] == args.worker]
        records = found[:1] or [lookup.find(ws.state, args.worker)]
    positions = queue.queue_positions(everyone)
    views = [common.short(r) for r in records]
    for view in views:
        if view["name"] in positions:
            view["queue_position"] = positions[view["name"]]
    data: dict[str, Any] = {"workers": views, "summary": common.summary(everyone, cap)}
    if broken and not args.worker:
        data["broken"] = broken  # record files that are not records: shown, so they can be cleaned up
    output.success(data, common.render_status)
    return 0


