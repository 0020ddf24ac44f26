"""`envoy parallel watch`: the workers live. On a terminal a full-screen view
(watching/screen.py); piped or logged, one line per change of a worker's state,
ending, as `wait` does, when every worker it follows has ended."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from envoy import output, processes
from envoy.commands import common
from envoy.errors import EnvoyError
from envoy.watching.fleet import ENDED, Fleet, attention
from envoy.worker import lookup, on_end
from envoy.worker.record import Record, now_iso
from envoy.worker.workspace import open_workspace

TICK = 0.05  # seconds between looks when piped


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    if args.timeout is not None and args.timeout < 0:
        raise EnvoyError("invalid_input", "--timeout must be 0 or more seconds", "e.g. --timeout 600")
    names = list(dict.fromkeys(lookup.find(ws.state, key)["name"] for key in args.worker or []))
    fleet = Fleet(ws)
    if sys.stdout.isatty() and sys.stdin.isatty() and not args.once and not getattr(args, "json", False):
        from envoy.watching import screen

        return screen.watch(fleet, processes.self_command(), bell=bell_wanted(ws))
    return lines(fleet, names, args.once, args.timeout, ws.config.get("PARALLEL_MAX_WORKERS"))


def bell_wanted(ws: Any) -> bool:
    """The terminal's notification when a worker ends: PARALLEL_NOTIFY, else on outside CI."""
    setting = ws.config.get("PARALLEL_NOTIFY")
    return bool(setting) if setting is not None else not on_end.in_ci()


def event(record: Record, commits: int | None) -> dict[str, Any]:
    found = {"at": now_iso(), "worker": record["name"], "state": record.get("state"), "reason": record.get("reason"),
             "attention": attention(record) or None, "commits": commits,
             "cost_usd": record.get("cost_usd") or None if record.get("state") in ENDED else None}
    return {k: v for k, v in found.items() if v is not None}


def render_event(found: dict[str, Any]) -> str:
    extra = [f"{found['commits']} commit(s)"] if "commits" in found else []
    extra += [f"${found['cost_usd']:.4f}"] if "cost_usd" in found else []
    extra += [f"needs attention: {'; '.join(found['attention'])}"] if "attention" in found else []
    return (f"{found['at'][11:19]} {found['worker']}: {found['state']}"
            + (f" ({found['reason']})" if "reason" in found else "") + (f"  {', '.join(extra)}" if extra else ""))


def lines(fleet: Fleet, names: list[str], once: bool, timeout: float | None, cap: int) -> int:
    """One line per change of a followed worker's state (JSON lines when piped), then
    their records as `wait` gives them; exit 0 only if every one succeeded."""
    fleet.poll()
    follow = names or [n for n, r in fleet.records.items() if once or r.get("state") not in ENDED]
    shown: dict[str, str] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        for name in follow:
            record = fleet.records.get(name)
            if record is None:
                raise EnvoyError("not_found", f"worker {name} was removed while watching it",
                                 "envoy parallel status lists the workers")
            if shown.get(name) != record.get("state"):
                shown[name] = str(record.get("state"))
                found = event(record, fleet.commits.get(name))
                print(output.dumps(found) if output.json_mode() else render_event(found), flush=True)
        records = [fleet.records[n] for n in follow]
        pending = [r["name"] for r in records if r.get("state") not in ENDED]
        if once or not pending:
            break
        if deadline is not None and time.monotonic() >= deadline:
            error = EnvoyError("timeout", f"still unfinished after {timeout:g}s: {', '.join(pending)}",
                               "watch longer, or check on them with envoy parallel status", unfinished=pending)
            output.failure(error.as_dict(), finished_data(records, cap), common.render_status)
            return 1
        time.sleep(TICK)
        fleet.poll()
    failed = [r["name"] for r in records if r.get("state") != "succeeded"]
    if once or not failed:
        output.success(finished_data(records, cap), common.render_status)
        return 0
    error = EnvoyError("worker_failed", f"{len(failed)} of {len(records)} worker(s) did not succeed: "
                       + ", ".join(failed), "envoy parallel results --worker " + failed[0])
    output.failure(error.as_dict(), finished_data(records, cap), common.render_status)
    return 1


def finished_data(records: list[Record], cap: int) -> dict[str, Any]:
    return {"workers": [common.short(r) for r in records], "summary": common.summary(records, cap)}
