"""`envoy parallel resume`: a follow-up task in the same Claude Code session
(`claude --resume <session id>`) and the same worktree, as a new run of the
same worker, under the same cap. Results and cost accumulate per run."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import output, slots, workers, worktrees
from .errors import EnvoyError
from .scheduler import start
from .spawn import limit_exceeded, positive, read_task, record_view, refuse_nesting, render, report_finished
from .state import ACTIVE, Record
from .workspace import Workspace, open_workspace


def run(args: argparse.Namespace) -> int:
    refuse_nesting()
    ws = open_workspace()
    task = read_task(args)
    record = workers.find(ws.state, args.worker)
    check_resumable(record)
    problem = worktrees.verify(ws.git, ws.layout(), record["name"], Path(record["path"]))
    if problem:  # the path is read from the record: an agent runs only where envoy made its worktree
        raise EnvoyError("unverified_worktree", f"will not run {record['name']}'s agent there: {problem}",
                         "spawn a new worker instead")
    options = dict(record["options"])
    for key, value in (("timeout_s", positive(args.timeout, "--timeout")), ("model", args.model),
                       ("max_turns", positive(args.max_turns, "--max-turns", int)),
                       ("budget_usd", positive(args.budget, "--budget"))):
        if value is not None:
            options[key] = value
    record = relaunch(ws, record, task, options)
    if args.wait:
        from .waiting import wait_for

        return report_finished(wait_for(ws, [record["name"]], timeout=None)[0])
    output.success(record_view(record), render)
    return 0


def relaunch(ws: Workspace, record: Record, task: str, options: dict[str, Any] | None = None) -> Record:
    """Start the worker's next run on `task` in its session (resume and land --repair)."""
    state = ws.state
    cap = ws.config.get("PARALLEL_MAX_WORKERS")
    with slots.launch_mutex(state):
        record = workers.refresh(state, state.read(record["name"]) or record)
        check_resumable(record)  # again, under the mutex
        slot_index = slots.free_slot(state, cap)
        if slot_index is None:
            raise limit_exceeded(ws, cap)
        run_number = int(record.get("run") or 0) + 1
        state.write_task(record["name"], run_number, task)
        record.update(options=options or record["options"], state="starting", reason=None, error=None)
        state.write(record)
        return start(state, record, slot_index)


def check_resumable(record: Record) -> None:
    name = record["name"]
    if record["state"] in ACTIVE:
        raise EnvoyError("still_running", f"worker {name} is still running",
                         f"wait for it first: envoy parallel wait --worker {name}")
    if record["state"] == "queued" or not record.get("run"):
        raise EnvoyError("invalid_input", f"worker {name} has not started yet, so there is no session to resume",
                         f"wait for it to run: envoy parallel wait --worker {name}")
    if not Path(record["path"]).is_dir():
        raise EnvoyError("not_found", f"the worktree of {name} ({record['path']}) is gone",
                         "spawn a new worker instead")
