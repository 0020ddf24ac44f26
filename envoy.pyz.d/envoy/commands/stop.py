"""`envoy parallel stop`: end a worker's run now, keeping its work.

Its agent and every process of its run end; worktree, branch and transcript
stay; the record says `stopped`, which `resume` continues and `cleanup` removes.
A queued worker is stopped before it starts."""
from __future__ import annotations

import argparse
from typing import Any

import time

from envoy import executors, output
from envoy.commands import common
from envoy.errors import EnvoyError
from envoy.worker import lookup, stop_request, stopping
from envoy.worker.record import ACTIVE, Record
from envoy.worker.workspace import Workspace, open_workspace

REMOTE_GRACE = 60.0  # seconds a cluster may take to end a job it was told to stop


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
        done, refused = stop_where_it_runs(ws, [record["name"]], reason, error)
        if refused:
            r = refused[0]
            raise EnvoyError(r["type"], r["message"], r.get("suggestion", ""))
        output.success(common.record_view(done[0]), common.render_record)
        return 0
    done, refused = stop_where_it_runs(ws, stop_request.stoppable(lookup.all_refreshed(ws.state)), reason, error)
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


def stop_where_it_runs(ws: Workspace, names: list[str], reason: str,
                       error: str) -> tuple[list[Record], list[dict[str, Any]]]:
    """Local workers through their supervisors (stopping.stop_many); a cluster's through
    its executor (its job is stopped there), then waited for until the cluster says so."""
    records = {r["name"]: r for r in ws.state.all() if r["name"] in names}
    remote = [n for n in names if n in records and stopping.by_executor(records[n])]
    done, refused = stopping.stop_many(ws.state, [n for n in names if n not in remote], reason, error)
    asked = executors.stop_many(ws, [records[n] for n in remote])
    refused += [{"name": n, **EnvoyError("still_running", f"worker {n} has no job on its cluster yet",
                                         "retry in a moment").as_dict()}
                for n in remote if n not in {r["name"] for r in asked}]
    deadline = time.monotonic() + REMOTE_GRACE
    while asked:
        fresh = lookup.refresh_all(ws.state, [ws.state.read(r["name"]) or r for r in asked])
        done += [r for r in fresh if r["state"] not in (*ACTIVE, "queued")]
        asked = [r for r in fresh if r["state"] in (*ACTIVE, "queued")]
        if asked and time.monotonic() > deadline:
            refused += [{"name": r["name"], **EnvoyError("still_running", f"worker {r['name']}'s job was told to stop "
                                                         f"but still runs after {REMOTE_GRACE:g}s",
                                                         "envoy parallel status shows when it ends").as_dict()}
                        for r in asked]
            break
        time.sleep(1.0)
    return done, refused


def render(data: dict[str, Any]) -> str:
    lines = [f"stopped {len(data['stopped'])} worker(s)" + (": " + ", ".join(data["stopped"]) if data["stopped"] else "")]
    if data.get("ended_meanwhile"):
        lines.append("ended by themselves meanwhile: " + ", ".join(data["ended_meanwhile"]))
    for r in data.get("refused", []):
        lines.append(f"not stopped {r['name']}: {r['message']}")
    if data["stopped"]:
        lines.append("continue one: envoy parallel resume --worker NAME --task \"...\"; remove: envoy parallel cleanup")
    return "\n".join(lines)
