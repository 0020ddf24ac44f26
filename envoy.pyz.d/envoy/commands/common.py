"""What several verbs share: reading a task, checking numbers, refusing a spawn
from inside a worker, and showing a worker (its short view, the status table, the
record a finished `--wait` prints). Verbs import this module, never each other."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from envoy import output, usage
from envoy.errors import EnvoyError
from envoy.output import duration as format_duration
from envoy.output import one_line
from envoy.worker.lookup import duration
from envoy.worker.nesting import worker_here
from envoy.worker.record import STATES, Record

MAX_TASK_BYTES = 10 * 1024 * 1024


def refuse_nesting() -> None:
    worker = worker_here(os.getcwd(), os.environ)
    if worker:
        raise EnvoyError("nesting_blocked",
                         f"spawning from inside a worker ({worker}) "
                         "is not allowed: workers do not start workers",
                         "finish this task yourself, or say in your final answer what should run in parallel")


def read_task(args: argparse.Namespace) -> str:
    if args.task is not None and args.task_file is not None:
        raise EnvoyError("invalid_input", "give the task once: --task or --task-file, not both",
                         "drop one of --task / --task-file")
    if args.task_file is not None:
        try:
            if args.task_file == "-":
                data = sys.stdin.buffer.read(MAX_TASK_BYTES + 1)
            else:
                with open(args.task_file, "rb") as f:
                    data = f.read(MAX_TASK_BYTES + 1)
        except OSError as exc:
            raise EnvoyError("invalid_input", f"cannot read --task-file {args.task_file}: {exc.strerror}",
                             "give a readable file, or - for standard input") from None
        if len(data) > MAX_TASK_BYTES:
            raise EnvoyError("invalid_input", "the task is over 10 MiB", "shorten the task")
        try:
            task = data.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvoyError("invalid_input", "the task file is not UTF-8 text", "save it as UTF-8") from None
    elif args.task is not None:
        task = args.task
    else:
        raise EnvoyError("invalid_input", "no task given", 'add --task "what to do" or --task-file PATH')
    if not task.strip():
        raise EnvoyError("invalid_input", "the task is empty", 'say what the worker should do: --task "..."')
    return task


def positive(value: Any, flag: str, kind: type = float) -> Any:
    if value is None:
        return None
    if not value > 0:
        raise EnvoyError("invalid_input", f"{flag} must be greater than 0", f"e.g. {flag} {kind(10)}")
    return value


def record_view(record: Record) -> dict[str, Any]:
    view = short(record)
    if record.get("result"):
        view["result"] = record["result"]  # whole, where status cuts it short
    return view


def report_finished(record: Record) -> int:
    """The end of `spawn --wait`: the record, and exit 0 only for success."""
    view = record_view(record)
    if record["state"] == "succeeded":
        output.success(view, render_record)
        return 0
    error = EnvoyError("worker_failed", f"worker {record['name']} ended {record['state']}"
                       + (f" ({record.get('reason')}): {record.get('error') or ''}" if record.get("reason") else ""),
                       f"envoy parallel results --worker {record['name']}")
    output.failure(error.as_dict(), view, render_record)
    return 1


def render_record(view: dict[str, Any]) -> str:
    lines = [f"{view['name']}: {view['state']}" + (f" ({view['reason']})" if view.get("reason") else "")
             + (f", position {view['queue_position']} in the queue" if view.get("queue_position") else ""),
             f"  branch   {view['branch']} (from {view.get('base') or 'its dependency, when it starts'})",
             f"  worktree {view['path']}",
             f"  session  {view.get('session_id', '-')}"]
    if view.get("cost_usd") or view.get("num_turns"):
        lines.append(f"  cost     ${view.get('cost_usd', 0):.4f}, {view.get('num_turns', 0)} turns, "
                     f"{output.duration(view.get('duration_s'))}")
    if view.get("error"):
        lines.append(f"  error    {view['error']}")
    if view.get("result"):
        lines.append("  result   " + output.one_line(view["result"], 400))
    return "\n".join(lines)


def summary(records: list[Record], cap: int) -> dict[str, Any]:
    counts: dict[str, Any] = {state: 0 for state in STATES}
    for record in records:
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    counts["total"] = len(records)
    counts["max_workers"] = cap
    counts["total_cost_usd"] = usage.total_cost(records)
    return counts


def render_status(data: dict[str, Any]) -> str:
    s = data["summary"]
    head = (f"{s['running'] + s['starting']}/{s['max_workers']} running, {s['queued']} queued, "
            f"{s['succeeded']} succeeded, {s['failed']} failed, {s['lost']} lost"
            + (f"; total cost ${s['total_cost_usd']:.4f}" if s["total_cost_usd"] else ""))
    broken = [f"broken record {b['file']}: {b['problem']}\n  try: envoy parallel cleanup --worker "
              f"{Path(b['file']).name[:-len('.json')]}" for b in data.get("broken", [])]
    if not data["workers"]:
        return "\n".join([head, "no workers (start one: envoy parallel spawn --branch NAME --task \"...\")", *broken])
    lines = [head, f"{'WORKER':<24} {'STATE':<10} {'REASON':<14} {'TIME':>7} {'COST':>9}  BRANCH <- BASE"]
    lines += [render_line(w) for w in data["workers"]]
    return "\n".join(lines + broken)


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
    if record.get("executor"):  # where it runs, on the rows of workers that run elsewhere
        view.update({k: record.get(k) for k in ("executor", "node", "job_id", "wip_ref", "cluster_error")})
        if record.get("state") == "queued" and record.get("job_status") == "PENDING":
            view["pending_on"] = "cluster"  # submitted; the cluster has no room for it yet
    return {k: v for k, v in view.items() if v is not None}


def render_line(view: dict[str, Any]) -> str:
    """One row of the status table, from a short view."""
    cost = view.get("cost_usd")
    return (f"{view['name']:<24} {view['state']:<10} {view.get('reason') or '':<14} "
            f"{format_duration(view.get('duration_s')):>7} "
            f"{'$%.4f' % cost if cost else '-':>9}  {view.get('branch')} <- {view.get('base')}"
            + (f"  [on {view.get('node') or 'the cluster'}]" if view.get("executor") else "")
            + (f"\n  ! {view['cluster_error']['message']}" if view.get("cluster_error") else ""))
