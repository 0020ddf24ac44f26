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
from envoy.worker.record import FINISHED, STATES, Record

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


ATTENTION_EXIT = 3  # every worker succeeded, and some left something a person must look at


def attention(record: Record) -> list[str]:
    """Why a person must look at this worker's work (worker/left.py); [] for a clean end."""
    reasons = record.get("attention")
    return [r for r in reasons if isinstance(r, str)] if isinstance(reasons, list) else []


def note_attention(records: list[Record]) -> int:
    """The exit code of workers that all succeeded: ATTENTION_EXIT if some need a look
    (said on stderr, whatever the output mode), else 0."""
    flagged = [r for r in records if attention(r)]
    for record in flagged:
        output.progress(f"{record['name']} needs attention: {'; '.join(attention(record))}")
    if flagged:
        denied = any(reason.startswith("denied: ") for r in flagged for reason in attention(r))
        output.progress(f"envoy parallel results --worker {flagged[0]['name']} shows what it left"
                        + (" and the rules that would allow what was denied" if denied else ""))
    return ATTENTION_EXIT if flagged else 0


def report_finished(record: Record) -> int:
    """The end of `spawn --wait` and `resume --wait`: the record; exit 0 for a clean
    success, ATTENTION_EXIT for one that needs a look, 1 for any other end."""
    view = record_view(record)
    if record["state"] == "succeeded":
        output.success(view, render_record)
        return note_attention([record])
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
    for reason in view.get("attention") or []:
        lines.append(f"  ! {reason}")
    if view.get("result"):
        lines.append("  result   " + output.one_line(view["result"], 400))
    lines += [output.paint(f"  warning  {w}", "yellow") for w in view.get("warnings") or []]
    return "\n".join(lines)


def summary(records: list[Record], cap: int) -> dict[str, Any]:
    counts: dict[str, Any] = {state: 0 for state in STATES}
    for record in records:
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    counts["total"] = len(records)
    flagged = sum(bool(attention(r)) for r in records if r.get("state") in FINISHED)
    if flagged:
        counts["attention"] = flagged  # absent: none (a clean fleet's answer stays as small as it was)
    counts["max_workers"] = cap
    counts["total_cost_usd"] = usage.total_cost(records)
    return counts


def render_status(data: dict[str, Any]) -> str:
    s = data["summary"]
    head = (f"{s['running'] + s['starting']}/{s['max_workers']} running, {s['queued']} queued, "
            f"{s['succeeded']} succeeded, {s['failed']} failed, {s['lost']} lost"
            + (f", {s['stopped']} stopped" if s.get("stopped") else "")
            + (f", {s['attention']} need attention" if s.get("attention") else "")
            + (f"; total cost ${s['total_cost_usd']:.4f}" if s["total_cost_usd"] else ""))
    if s.get("budget", {}).get("exceeded"):
        b = s["budget"]
        head += (f"\nover budget: ${b['spent_usd']:.4f} of PARALLEL_BUDGET_USD ${b['limit_usd']:g}; "
                 f"{b.get('stopped_by_budget', 0)} stopped by it" + (f", stopping {b['stopping']}" if b.get("stopping") else ""))
    broken = [f"broken record {b['file']}: {b['problem']}\n  try: envoy parallel cleanup --worker "
              f"{Path(b['file']).name[:-len('.json')]}" for b in data.get("broken", [])]
    if not data["workers"] and not data.get("folded"):
        return "\n".join([head, "no workers (start one: envoy parallel spawn --branch NAME --task \"...\")", *broken])
    lines = [head, f"  {'WORKER':<24} {'STATE':<10} {'REASON':<14} {'TIME':>7} {'COST':>9}  BRANCH <- BASE"]
    lines += [render_line(w) for w in data["workers"]]
    folded = data.get("folded")
    if folded:  # a text table folds {state: count}; a JSON answer's note has `by_state`
        from envoy.fleet import folded_line

        lines.append(folded_line(folded.get("by_state", folded), folded.get("all", "envoy parallel status --all")
                                 if "by_state" in folded else "envoy parallel status --all"))
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
    reasons = attention(record)
    if reasons and record.get("state") in FINISHED:  # a clean end adds nothing to the row
        view["attention"] = reasons
        counts = record.get("left")
        if isinstance(counts, dict):
            view["left"] = {k: v for k, v in counts.items() if v}
    if record.get("executor"):  # where it runs, on the rows of workers that run elsewhere
        view.update({k: record.get(k) for k in ("executor", "node", "job_id", "wip_ref", "cluster_error")})
        if record.get("state") == "queued" and record.get("job_status") == "PENDING":
            view["pending_on"] = "cluster"  # submitted; the cluster has no room for it yet
        if record.get("state") == "running" and record.get("last_action"):  # from its job's log (ray_watch.py)
            view["last_action"], view["last_action_at"] = record["last_action"], record.get("last_action_at")
    return {k: v for k, v in view.items() if v is not None}


STATE_COLOURS = {"succeeded": "green", "failed": "red", "lost": "red", "running": "cyan", "starting": "cyan",
                 "queued": "yellow", "stopped": "yellow"}


def render_line(view: dict[str, Any]) -> str:
    """One row of the status table, from a short view."""
    cost = view.get("cost_usd")
    reasons = view.get("attention") or []
    marker = output.paint("! ", "yellow") if reasons else "  "  # the marker column: a person must look at this one
    reason = view.get("reason") or ("touches" if view.get("waits_for") else "")
    state = output.paint(f"{view['state']:<10}", STATE_COLOURS.get(view["state"], ""))  # padded, then painted
    return (f"{marker}{view['name']:<24} {state} {reason:<14} "
            f"{format_duration(view.get('duration_s')):>7} "
            f"{'$%.4f' % cost if cost else '-':>9}  {view.get('branch')} <- {view.get('base')}"
            + (f"  [on {view.get('node') or 'the cluster'}]" if view.get("executor") else "")
            + (f"\n    > {view['last_action']}" if view.get("last_action") else "")
            + (f"\n  ! {view['cluster_error']['message']}" if view.get("cluster_error") else "")
            + "".join(f"\n    ! {why}" for why in reasons))


def fleet_data(records: list[Record], views: list[dict[str, Any]], rest: dict[str, Any],
               every: bool = False) -> dict[str, Any]:
    """`{"workers": views, **rest}`, folded to fit when there are many: at most
    fleet.BYTES of JSON, or one screen of text (`every`: no folding)."""
    from envoy import fleet

    if every:
        return {"workers": views, **rest}
    if output.json_mode():
        return fleet.fold(records, views, rest)
    shown, folded = fleet.fold_rows(records, views, fleet.screen_rows(5))
    return {"workers": shown, **rest, **({"folded": folded} if folded else {})}
