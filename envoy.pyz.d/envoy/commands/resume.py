"""`envoy parallel resume`: a follow-up task in the same Claude Code session
(`claude --resume <session id>`) and the same worktree, as a new run of the
same worker, under the same cap. Results and cost accumulate per run."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from envoy import executors, output
from envoy.commands import common
from envoy.worker import lookup
from envoy.worker.workspace import open_workspace

if TYPE_CHECKING:
    from envoy.worker.record import Options


def run(args: argparse.Namespace) -> int:
    common.refuse_nesting()
    ws = open_workspace()
    task = common.read_task(args)
    record = lookup.find(ws.state, args.worker)
    executor = executors.of(record)
    executor.check_resumable(record)
    ws.git.check_can_commit()
    options: Options = {**record.get("options", {})}
    if args.timeout == 0:
        options["timeout_s"] = None  # no limit for this run, as PARALLEL_TIMEOUT=0 means
    timeout, max_turns, budget = (common.positive(args.timeout or None, "--timeout"),
                                  common.positive(args.max_turns, "--max-turns", int), common.positive(args.budget, "--budget"))
    if timeout is not None:
        options["timeout_s"] = timeout
    if args.model is not None:
        options["model"] = args.model
    if max_turns is not None:
        options["max_turns"] = max_turns
    if budget is not None:
        options["budget_usd"] = budget
    record = executor.relaunch(ws, record, task, options)
    if args.wait:
        from envoy.worker.join import wait_for

        return common.report_finished(wait_for(ws, [record["name"]], timeout=None)[0])
    output.success(common.record_view(record), common.render_record)
    return 0


