"""`envoy parallel wait`: the join of parallel streams and of CI. Exit 0: every
worker succeeded and none needs attention; 3: all succeeded, some need attention
(common.ATTENTION_EXIT); 1: one did not succeed (failed, lost), or the timeout passed."""
from __future__ import annotations

import argparse

from envoy import output
from envoy.commands import common
from envoy.errors import EnvoyError
from envoy.worker import lookup
from envoy.worker.join import wait_for
from envoy.worker.workspace import open_workspace


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    if args.timeout is not None and args.timeout < 0:
        raise EnvoyError("invalid_input", "--timeout must be 0 or more seconds", "e.g. --timeout 600")
    if args.worker:
        names = list(dict.fromkeys(lookup.find(ws.state, key)["name"] for key in args.worker))
    else:  # the join: every worker not yet cleaned up, those that ended before this call too
        names = [r["name"] for r in lookup.all_refreshed(ws.state)]
    try:
        records = wait_for(ws, names, args.timeout)
    except EnvoyError as exc:
        if exc.kind != "timeout":
            raise
        current = [lookup.refresh(ws.state, r) for r in ws.state.all() if r["name"] in names]
        output.failure(exc.as_dict(), common.fleet_data(current, [common.short(r) for r in current], {
            "summary": common.summary(current, ws.config.get("PARALLEL_MAX_WORKERS"))}), common.render_status)
        return 1
    data = common.fleet_data(records, [common.short(r) for r in records],  # a fleet's answer fits in a few KB
                             {"summary": common.summary(records, ws.config.get("PARALLEL_MAX_WORKERS"))})
    failed = [r["name"] for r in records if r["state"] != "succeeded"]  # lost and stopped too: never a success
    if not failed:
        output.success(data, common.render_status)
        return common.note_attention(records)
    error = EnvoyError("worker_failed", f"{len(failed)} of {len(records)} worker(s) did not succeed: "
                       + ", ".join(failed[:20]) + (f" and {len(failed) - 20} more" if len(failed) > 20 else ""),
                       "envoy parallel results --worker " + failed[0])
    output.failure(error.as_dict(), data, common.render_status)
    return 1
