"""`envoy parallel spawn --batch FILE`: every line of a batch (batch.py reads and
checks them) made a worker, in one process. All lines are checked first (a bad one
refuses the whole batch, naming it, with nothing made); then, under the launch
mutex, every worker is recorded and handed to its executor in one go
(Executor.start_many): locally queued and as many started as slots allow; on a Ray
cluster (--on ray://...) every job ref pushed in one `git push` and one job
submitted per line, the --after ones waiting unsubmitted as a single spawn's do.

The answer is one document: every worker's state in the batch's order, and counts.
A worker the cluster refused (its POST failed) is recorded failed (start_failed,
with the cluster's words); the others stay submitted, since they are real jobs, and
the answer is then an error (exit 1) that carries the same rows."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envoy import batch, executors, footprint, output
from envoy.commands import common
from envoy.errors import EnvoyError
from envoy.intake import check_budget, check_free, new_record, options_of, resolve_base, validate_branch
from envoy.worker import locks, queue
from envoy.worker.workspace import open_workspace

if TYPE_CHECKING:
    from envoy.worker.record import Record
    from envoy.worker.workspace import Workspace

FLAGS = ("branch", "task", "task_file", "from_ref", "after", "touches", "model", "permission_mode",
         "allowed_tools", "max_turns", "budget", "timeout", "setup", "wait")


def run(args: argparse.Namespace) -> int:
    """Every task of a batch file, in one process: all checked first (a bad line refuses
    the whole batch, naming it), then all started in one go under the launch mutex (see
    the module's words)."""
    given = [f"--{f.replace('_ref', '').replace('_', '-')}" for f in FLAGS if getattr(args, f, None)]
    if given:
        raise EnvoyError("invalid_input", f"--batch takes every option from its lines, not from {', '.join(given)}",
                         "put the option in each line of the batch (keys are spawn's long options)")
    try:
        if args.batch == "-":
            entries = batch.read(sys.stdin.buffer)
        else:
            with open(args.batch, "rb") as source:
                entries = batch.read(source)
    except OSError as exc:
        raise EnvoyError("invalid_input", f"cannot read --batch {args.batch}: {exc.strerror}",
                         "give a readable JSON Lines file, or - for standard input") from None
    common.refuse_nesting()
    ws = open_workspace()
    records, tasks = batch_records(ws, entries, args.on, args.remote)
    state = ws.state
    state.ensure()
    with locks.launch_mutex(state):
        taken = {r["name"] for r in state.all()}
        for record in records:  # again under the mutex: a spawn meanwhile may have taken a name
            if record["name"] in taken:
                raise EnvoyError("already_exists", f"a worker named {record['name']!r} already exists (spawned "
                                 "while this batch was checked); nothing of the batch was made",
                                 "drop that line, or pick another branch")
            check_free(ws, record["name"], Path(record["path"]))
        for record, task in zip(records, tasks):
            state.write_task(record["name"], 1, task)
        try:
            started = executors.of(records[0]).start_many(ws, records, tasks)
        except BaseException:
            for record in records:  # nothing of the batch was recorded: its tasks go too
                if state.read(record["name"]) is None:
                    state.delete(record["name"])
            raise
        after = state.all()
    positions = queue.queue_positions(after)
    rows: list[dict[str, Any]] = []
    for r, _ in started:  # in the batch's order
        row: dict[str, Any] = {"name": r["name"], "state": r["state"]}
        if r["name"] in positions:
            row["queue_position"] = positions[r["name"]]
        if r.get("job_id"):
            row["job_id"] = r["job_id"]
        if r.get("reason"):
            row["reason"] = r["reason"]
        if r["state"] == "failed" and r.get("error"):
            row["error"] = r["error"]
        rows.append(row)
    counts: dict[str, int] = {}
    for shown in rows:
        counts[shown["state"]] = counts.get(shown["state"], 0) + 1
    data = {"workers": rows, "counts": counts}
    refused = [(r, e) for r, e in started if e is not None]
    if not refused:
        output.success(data, render_batch)
        return 0
    first, why = refused[0]
    error = EnvoyError("start_failed", f"{len(refused)} of {len(rows)} workers of the batch could not be started "
                       f"(first: {first['name']}: {why.message}); the others were, as each row says",
                       "once the cause is fixed, envoy parallel cleanup --worker NAME for each failed one, then "
                       "spawn it again", failed=[r["name"] for r, _ in refused])
    output.failure(error.as_dict(), data, render_batch)
    return 1


def batch_records(ws: Workspace, entries: list[tuple[int, dict[str, Any]]], on: str | None = None,
                  remote: str | None = None) -> tuple[list[Record], list[str]]:
    """The records and tasks of a batch, every line checked, each placed where --on says
    (its executor's prepare: the agent, or the cluster and the remote); creates nothing.
    What every line shares (existing workers and branches, the base, the remote's URL)
    is looked up once."""
    check_budget(ws)
    kind, place = executors.placement(on if on is not None else ws.config.raw("PARALLEL_EXECUTOR")[0])
    executor = executors.get(kind)
    existing = ws.state.all()
    by_key: dict[str, Record] = {r["name"]: r for r in existing}
    by_key.update({r["branch"]: r for r in existing if r["branch"] not in by_key})
    branches = set(ws.git.branch_tips())
    bases: dict[str | None, tuple[str, str]] = {}
    where = ws.layout()
    mine: dict[str, int] = {}  # worker name (and branch) -> its line
    named: dict[str, str] = {}  # worker name (and branch) -> worker name
    lines: list[tuple[int, dict[str, Any], str]] = []
    for number, entry in entries:
        try:
            name = validate_branch(ws, entry["branch"])
            for key in (name, entry["branch"]):
                if key in mine:
                    raise EnvoyError("invalid_input", f"worker {name} is also line {mine[key]}'s",
                                     "give each task its own branch")
            in_way = _branch_in_the_way(entry["branch"], branches)
            if in_way is not None or name in by_key:
                raise EnvoyError("already_exists", f"branch {entry['branch']!r} " + (
                    "already exists" if in_way == entry["branch"] or name in by_key
                    else f"cannot be made while branch {in_way!r} exists"),
                    "pick another branch" + (f", or envoy parallel cleanup --worker {name}" if name in by_key else ""))
            mine[name] = mine[entry["branch"]] = number
            named[name] = named[entry["branch"]] = name
            lines.append((number, entry, name))
        except EnvoyError as exc:
            raise _on_line(number, exc) from None
    records: list[Record] = []
    tasks: list[str] = []
    edges: dict[str, list[str]] = {}
    for number, entry, name in lines:
        try:
            after = []
            for key in entry.get("after", []):
                if key in mine:
                    target = named[key]
                elif key in by_key:
                    found = by_key[key]
                    if found["state"] in ("failed", "lost", "stopped"):
                        raise EnvoyError("dependency_failed", f"dependency {found['name']} already ended "
                                         f"{found['state']}", f"resume or respawn {found['name']} first")
                    target = found["name"]
                else:
                    raise EnvoyError("not_found", f"\"after\" names {key!r}, which is no worker and no line of "
                                     "this batch", "name an existing worker or the branch of another line")
                if target == name:
                    raise EnvoyError("invalid_input", "\"after\" names this line's own worker: a dependency cycle",
                                     "a worker waits only for others")
                if target not in after:
                    after.append(target)
            edges[name] = [a for a in after if a in mine]
            task = _batch_task(entry)
            ns = argparse.Namespace(permission_mode=entry.get("permission_mode"), timeout=entry.get("timeout"),
                                    setup=entry.get("setup"), allowed_tools=entry.get("allowed_tools"),
                                    model=entry.get("model"), max_turns=entry.get("max_turns"),
                                    budget=entry.get("budget"), on_end=entry.get("on_end"))
            options = options_of(ws, ns)
            touches = footprint.check(entry.get("touches", []), '"touches"')
            if after and entry.get("from") is None:
                base, base_sha = None, None
            else:
                if entry.get("from") not in bases:
                    bases[entry.get("from")] = resolve_base(ws, entry.get("from"))
                base, base_sha = bases[entry.get("from")]
        except EnvoyError as exc:
            raise _on_line(number, exc) from None
        record = new_record(ws, name, entry["branch"], base, base_sha, where.path(name), task, "", options, after,
                            touches)
        executor.prepare(ws, record, place, remote)  # the same for every line: refused as the batch's, not a line's
        records.append(record)
        tasks.append(task)
    loop = batch.cycle(edges)
    if loop:
        first = mine[loop[0]]
        raise EnvoyError("invalid_input", f"batch line {first}: a dependency cycle in \"after\": "
                         + " -> ".join(loop), "a worker can wait only for workers that do not wait for it", line=first)
    for record in records:
        record.pop("task", None)
    return records, tasks


def _on_line(number: int, exc: EnvoyError) -> EnvoyError:
    return EnvoyError(exc.kind, f"batch line {number}: {exc.message}", exc.suggestion, line=number,
                      **{k: v for k, v in exc.extra.items() if k != "line"})


def _batch_task(entry: dict[str, Any]) -> str:
    if "task" in entry:
        return str(entry["task"])
    ns = argparse.Namespace(task=None, task_file=entry["task_file"])
    return common.read_task(ns)


def _branch_in_the_way(branch: str, branches: set[str]) -> str | None:
    """git.branch_in_the_way, against a set of branches read once."""
    parts = branch.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if prefix in branches:
            return prefix
    inside = branch + "/"
    return next((b for b in branches if b.startswith(inside)), None)


def render_batch(data: dict[str, Any]) -> str:
    lines = [", ".join(f"{n} {state}" for state, n in data["counts"].items())]
    lines += [f"  {r['name']}: {r['state']}" + (f" (position {r['queue_position']})" if r.get("queue_position") else "")
              + (f" ({r['reason']}: {r['error']})" if r.get("error") else "") for r in data["workers"]]
    return "\n".join(lines)
