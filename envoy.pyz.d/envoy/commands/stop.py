"""`envoy parallel stop`: end a worker's run now, keeping its work.

Its agent and every process of its run end; worktree, branch and transcript
stay; the record says `stopped`, which `resume` continues and `cleanup` removes.
A queued worker is stopped before it starts."""
from __future__ import annotations

import argparse
from typing import Any

from envoy import output
from envoy.commands import common
from envoy.errors import EnvoyError
from envoy.worker import lookup, stop_request, stopping
from envoy.worker.record import ACTIVE
from envoy.worker.workspace import open_workspace


def run(args: argparse.Namespace) -> int:
    if bool(args.worker) == bool(args.all):
        raise EnvoyError("invalid_input", "say which workers to stop: --worker NAME or --all",
                         "envoy parallel stop --worker NAME (envoy parallel status lists them)")
    ws = open_workspace()
    reason, error = stopping.USER
    if args.worker:
        record = lookup.find(ws.state, args.worker)
        if record["state"] not in (*ACTIVE, "queued"):
            raise stopping.refuse(record)
        done, refused = stopping.stop_many(ws.state, [record["name"]], reason, error)
        if refused:
            r = refused[0]
            raise EnvoyError(r["type"], r["message"], r.get("suggestion", ""))
        output.success(common.record_view(done[0]), common.render_record)
        return 0
    done, refused = stopping.stop_many(ws.state, stop_request.stoppable(lookup.all_refreshed(ws.state)), reason, error)
    # workers that ended by themselves meanwhile are not news; anything else is said
    refused = [r for r in refused if r["type"] not in ("not_running", "already_stopped", "not_found")]
    data: dict[str, Any] = {"stopped": [r["name"] for r in done if r["state"] == "stopped"],
                            "ended_meanwhile": [r["name"] for r in done if r["state"] != "stopped"],
                            "refused": refused}
    if refused:
        failure = EnvoyError(refused[0]["type"], f"{len(refused)} worker(s) could not be stopped: "
                             + ", ".join(r["name"] for r in refused), refused[0].get("suggestion", ""))
        output.failure(failure.as_dict(), data, render)
        return 1
    output.success({k: v for k, v in data.items() if v or k == "stopped"}, render)
    return 0


def render(data: dict[str, Any]) -> str:
    lines = [f"stopped {len(data['stopped'])} worker(s)" + (": " + ", ".join(data["stopped"]) if data["stopped"] else "")]
    if data.get("ended_meanwhile"):
        lines.append("ended by themselves meanwhile: " + ", ".join(data["ended_meanwhile"]))
    for r in data.get("refused", []):
        lines.append(f"not stopped {r['name']}: {r['message']}")
    if data["stopped"]:
        lines.append("continue one: envoy parallel resume --worker NAME --task \"...\"; remove: envoy parallel cleanup")
    return "\n".join(lines)
