"""`envoy parallel status`: every worker and its exact state."""
from __future__ import annotations

import argparse
import time
from typing import Any

from envoy import output, processes
from envoy.commands import common
from envoy.errors import EnvoyError
from envoy.worker import locks, lookup, queue
from envoy.worker.record import ACTIVE, Record
from envoy.worker.store import State
from envoy.worker.workspace import Workspace, open_workspace

BROKEN_SHOWN = 5  # broken records named in a folded answer (--all names every one)
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
    if args.worker and args.all:
        raise EnvoyError("invalid_input", "--worker and --all cannot be combined",
                         "use --worker NAME for one worker, --all for every worker")
    records = everyone
    if args.worker:  # by name, else by branch; the refusal names the workers to pick from
        # Among the records just refreshed (a cluster's worker costs no second request);
        # lookup.find for one written meanwhile, and for the refusal.
        found = [r for r in everyone if r["name"] == args.worker] or [r for r in everyone if r["branch"] == args.worker]
        records = found[:1] or [lookup.find(ws.state, args.worker)]
    positions = queue.queue_positions(everyone)
    views = [common.short(r) for r in records]
    for record, view in zip(records, views):
        if view["name"] in positions:
            view["queue_position"] = positions[view["name"]]
            blocker = queue.touches_blocker(record, everyone)
            if blocker:
                view["waits_for"] = blocker
    summary = common.summary(everyone, cap)
    budget = budget_of(ws, everyone)
    if budget:
        summary["budget"] = budget
    rest: dict[str, Any] = {"summary": summary}
    if broken and not args.worker:
        rest["broken"] = broken  # record files that are not records: shown, so they can be cleaned up
    if not (args.worker or args.all) and len(broken) > BROKEN_SHOWN:  # junk must not flood the answer either
        rest["broken"], rest["broken_count"] = broken[:BROKEN_SHOWN], len(broken)
    data = common.fleet_data(records, views, rest, every=bool(args.worker or args.all))  # a fleet's fits in 4 KB
    output.success(data, common.render_status)
    return 0


def budget_of(ws: Workspace, records: list[Record]) -> dict[str, Any] | None:
    """PARALLEL_BUDGET_USD against what the workers cost. Over it, workers still queued or
    running are being stopped (their finisher saw it); if none was told (spawned without
    the budget set), a stop is started here."""
    limit = ws.config.get("PARALLEL_BUDGET_USD")
    if limit is None:
        return None
    from envoy import usage
    from envoy.worker import stop_request, stopping

    spent = usage.total_cost(records)
    found: dict[str, Any] = {"limit_usd": limit, "spent_usd": spent, "exceeded": spent > limit}
    if found["exceeded"]:
        found["stopped_by_budget"] = sum(r.get("reason") == stopping.BUDGET for r in records)
        if stop_request.stoppable(records):
            processes.start_detached([*processes.self_command(bare=True), "_budget", str(ws.state.root.parent)],
                                     ws.state.log_file)
            found["stopping"] = len(stop_request.stoppable(records))
    return found
