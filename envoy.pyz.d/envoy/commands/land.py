"""`envoy parallel land`: take finished workers home like a merge queue.

Candidates (the named workers, or every succeeded one with commits not yet in
its target) are ordered (auto: what conflicts least first, from the
`conflicts` machinery; or fifo), then landed through lane.Lane: each merge
checked in a scratch worktree (a full checkout, whatever the user's sparse
cone; within a time limit; every process the check started ended with it),
the target moved by compare-and-swap only to a commit whose tree passed
(landing/target.py: refused over untracked or ignored files, or while a
rebase, merge or bisect is in progress). With --repair, a worker that conflicts or fails is
resumed in its own session to bring the target in and fix it, and re-enters
the queue. The user's checkout, index and branch are never touched.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

from filelock import Timeout

from envoy import output
from envoy.commands import common
from envoy.errors import EnvoyError, Terminated
from envoy.landing import lane, merging, predict, repair, scratch
from envoy.landing.lane import Entry
from envoy.landing.report import Report
from envoy.worker import lookup
from envoy.worker.record import Record
from envoy.worker.workspace import Workspace, open_workspace

LOCK_WAIT = 5.0  # a killed run's janitor holds the lock for a moment; a live run for long


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    command = check_command(ws, args)
    limit = check_timeout(ws, args)
    attempts = repair_attempts(args)
    if attempts:
        common.refuse_nesting()  # a repair resumes workers: workers do not start workers
    plan, skipped = candidates(ws, args)  # every refusal of bad input comes first, changing nothing
    if plan and not args.dry_run:
        ws.git.check_can_commit()  # every landing writes a commit
    if args.dry_run:
        output.success({"dry_run": True, "check": command, "order": args.order, "skipped": skipped,
                        "plan": dry_plan(ws, order(ws, plan, args.order)) if plan else []}, render_plan)
        return 0
    if not plan:  # all landed (a re-run), or nothing finished yet: no failure, unless one was left out (finish)
        return finish(Report(command, args.order, skipped), attempts)
    lock = scratch.land_lock(ws.state)
    ws.state.ensure()
    try:  # before ordering: that costs a dry-run merge of every pair, wasted if another land runs
        lock.acquire(timeout=LOCK_WAIT, poll_interval=0.05)
    except Timeout:
        raise EnvoyError("busy", "another envoy parallel land is running in this repository",
                         "wait for it to finish; it lands what this one would") from None
    try:
        lanes = order(ws, plan, args.order)
        report = Report(command, args.order, skipped)
        checks = scratch.Scratch(ws, ws.config.get("PARALLEL_MAX_WORKERS"), limit)
        scratch.sweep_all(ws, checks.dir)
        ws.state.private_dir(checks.dir)  # 0700, and never through a symlink planted at land/
        scratch.start_janitor(ws, checks.dir)
        try:
            repairs = repair.Repairs(ws, attempts, command, report)
            for into, entries in lanes.items():
                land_into(ws, into, entries, command, checks, report, repairs)
        except Terminated as ended:  # SIGTERM/SIGHUP: what landed before it is said, with the error
            ended.data = report.data()
            raise
        except EnvoyError as exc:  # a refusal mid-way (a copy into a scratch worktree, say): and what landed before
            exc.extra.setdefault("landed", report.data()["landed"])
            raise
        finally:
            checks.close()
    finally:
        lock.release()
    return finish(report, attempts)


def finish(report: Report, attempts: int = 0) -> int:
    """Exit 0 only if every candidate landed and no succeeded worker was left out for a
    problem (its branch gone, its target no local branch): those are said, never skipped silently."""
    data = report.data()
    left_out = [s for s in data["skipped"] if s["reason"] != "already_landed"]
    if not data["failed"] and not left_out:
        output.success(data, render)
        return 0
    problems = data["failed"] + left_out
    names = ", ".join(f"{f['name']} ({f['reason']})" for f in problems)
    first = problems[0]["name"]
    if attempts:  # repairs ran (or could not): another --repair would do the same again
        advice = (f"see what each one's repair said and did (envoy parallel results --worker {first}), then fix "
                  f"it in its worktree or give it a task of yours (envoy parallel resume --worker {first} --task "
                  f"\"...\"), and land again")
    else:
        advice = ("see each one's files, check output or message; fix it (envoy parallel resume), re-run "
                  "with --repair, or land one whose target is not a local branch with --worker NAME --into BRANCH")
    error = EnvoyError("not_landed", f"{len(problems)} of {len(problems) + len(data['landed'])} worker(s) "
                       f"did not land: {names}", advice)
    output.failure(error.as_dict(), data, render)
    return 1


def check_command(ws: Workspace, args: argparse.Namespace) -> str | None:
    if args.no_check:
        return None
    if args.check is not None:
        if not args.check.strip():
            raise EnvoyError("invalid_input", "the check command is empty",
                             'give a command (--check "make test"), or --no-check to land without one')
        return str(args.check)
    configured = ws.config.get("PARALLEL_CHECK")
    return configured.strip() or None if isinstance(configured, str) else None


def check_timeout(ws: Workspace, args: argparse.Namespace) -> float | None:
    """Seconds a check may run (--check-timeout, else PARALLEL_CHECK_TIMEOUT); None: no limit."""
    if args.check_timeout is not None:
        if not args.check_timeout >= 0 or args.check_timeout == float("inf"):  # NaN too
            raise EnvoyError("invalid_input", "--check-timeout must be a number of seconds, 0 or more",
                             "e.g. --check-timeout 600 (0: no limit)")
        seconds = float(args.check_timeout)
    else:
        seconds = float(ws.config.get("PARALLEL_CHECK_TIMEOUT"))
    return seconds or None


def repair_attempts(args: argparse.Namespace) -> int:
    if args.repair_attempts is not None and args.repair_attempts < 1:
        raise EnvoyError("invalid_input", "--repair-attempts must be at least 1", "e.g. --repair --repair-attempts 2")
    if not args.repair and args.repair_attempts is None:
        return 0
    return int(args.repair_attempts or 1)


def candidates(ws: Workspace, args: argparse.Namespace) -> tuple[list[tuple[Record, str, str]], list[dict[str, Any]]]:
    """(worker, target branch, branch tip) of each to land, and each succeeded worker not
    taken and why; a bad one named on the command line refuses it all."""
    git, named = ws.git, bool(args.worker)
    tips = git.branch_tips()  # one git call for all, not two per worker
    merged: dict[str, set[str]] = {}  # target tip -> the branches it already contains
    if args.into is not None and args.into not in tips:
        raise EnvoyError("invalid_input", f"{args.into!r} is not a local branch to land into",
                         "name one with --into BRANCH (e.g. --into main)")
    if named:
        records: list[Record] = []
        for key in args.worker:
            record = lookup.find(ws.state, key)
            if record["name"] not in (r["name"] for r in records):
                records.append(record)
    else:
        records = [r for r in lookup.all_refreshed(ws.state) if r["state"] == "succeeded"]
    chosen, skipped = [], []
    for record in records:
        name = record["name"]
        merging.check_finished(record, "land")
        into = args.into or record.get("base")
        if named:  # as merge refuses it: its own branch, a branch a live worker works on
            merging.check_target(ws, record, into, "land")
        into_tip = tips.get(into) if into else None
        tip = tips.get(record["branch"])
        if not named and (tip is None or into_tip is None):  # not a candidate: said why
            skipped.append(left_out(record, into, tip is None))
            continue
        if into_tip is None:
            raise EnvoyError("invalid_input", f"{name}'s target {into!r} is not a local branch to land into",
                             "name one with --into BRANCH (e.g. --into main)")
        if tip is None:
            raise EnvoyError("not_found", f"branch {record['branch']} of {name} no longer exists",
                             "envoy parallel status shows its state")
        if not named:
            if into_tip not in merged:
                merged[into_tip] = git.merged_into(into_tip)
            if record["branch"] in merged[into_tip]:
                skipped.append({"name": name, "branch": record["branch"], "into": into, "reason": "already_landed"})
                continue
        chosen.append((record, str(into), tip))
    return chosen, skipped


def left_out(record: Record, into: str | None, branch_gone: bool) -> dict[str, Any]:
    """Why a succeeded worker is no candidate of a plain `land`."""
    item: dict[str, Any] = {"name": record["name"], "branch": record["branch"], "into": into}
    if branch_gone:
        return {**item, "reason": "branch_gone", "message": f"its branch {record['branch']} no longer exists"}
    return {**item, "reason": "target_not_a_branch",
            "message": f"its target {into!r} is not a local branch (spawned on a detached HEAD, as CI checks out?): "
                       f"land it with --worker {record['name']} --into BRANCH"}


def order(ws: Workspace, plan: list[tuple[Record, str, str]], how: str) -> dict[str, list[Entry]]:
    """Per target, the queue: fifo is spawn order; auto puts first what conflicts least
    with the target and with the other candidates (spawn order breaks ties)."""
    plan = sorted(plan, key=lambda p: spawn_order(ws, p[0]))
    lanes: dict[str, list[Entry]] = {}
    for into in dict.fromkeys(i for _, i, _ in plan):
        records = [r for r, i, _ in plan if i == into]
        entries = [Entry(r, tip) for r, i, tip in plan if i == into]
        if how == "auto":
            clash: dict[str, set[str]] = {r["name"]: set() for r in records}
            for pair in predict.pairwise(ws.git, records):
                if pair["conflict"]:
                    clash[pair["a"]].add(pair["b"])
                    clash[pair["b"]].add(pair["a"])
            against = {r["name"]: predict.into(ws.git, f"refs/heads/{r['branch']}", f"refs/heads/{into}") for r in records}
            for entry in entries:
                entry.predicted, entry.clashes = against[entry.name], sorted(clash[entry.name])
            entries.sort(key=lambda e: (bool(against[e.name]), len(clash[e.name])))  # stable: fifo breaks ties
        lanes[into] = entries
    return lanes


def spawn_order(ws: Workspace, record: Record) -> tuple[str, int, str]:
    """created_at has whole seconds; the first task file, written once at spawn under
    the launch mutex, orders spawns within one second."""
    try:
        written = ws.state.run_file(record["name"], 1, "task").stat().st_mtime_ns
    except OSError:
        written = 0
    return record.get("created_at") or "", written, record["name"]


def dry_plan(ws: Workspace, lanes: dict[str, list[Entry]]) -> list[dict[str, Any]]:
    plan = []
    for into, entries in lanes.items():
        target = f"refs/heads/{into}"
        for n, entry in enumerate(entries, 1):
            files = entry.predicted if entry.predicted is not None else predict.into(ws.git, f"refs/heads/{entry.record['branch']}", target)
            plan.append({"order": n, "name": entry.name, "branch": entry.record["branch"], "into": into,
                         "commits": len(ws.git.commits(target, entry.tip)), "conflicts_with_target": files,
                         "conflicts_with": entry.clashes})
    return plan


def land_into(ws: Workspace, into: str, entries: list[Entry], command: str | None, checks: scratch.Scratch,
              report: Report, repairs: repair.Repairs) -> None:
    def landed(entry: Entry, how: str) -> None:
        report.landed(entry, into, how)
        output.progress(f"{entry.name}: landed on {into} ({how}) -> {str(entry.commit)[:12]}")

    def failed(entry: Entry) -> None:
        why = f"conflicts in {', '.join(entry.files)}" if entry.verdict == "conflict" else entry.verdict
        output.progress(f"{entry.name}: did not land ({why})")
        if entry.verdict == "target_refused" or not repairs.start(entry, into):
            report.failed(entry, into)

    merge_queue = lane.Lane(ws, into, command, ws.config.get("PARALLEL_MAX_WORKERS"), checks, landed, failed)
    merge_queue.queue = list(entries)
    output.progress(f"landing {len(entries)} worker(s) on {into}: {', '.join(e.name for e in entries)}"
                    + (f"; check: {command}" if command else "; merge only"))
    try:
        while merge_queue.step() or repairs.busy(into):
            merge_queue.queue += repairs.collect(into)
            if not merge_queue.queue and repairs.busy(into):
                time.sleep(repair.POLL)
    finally:
        merge_queue.close()


def render(data: dict[str, Any]) -> str:
    lines = [f"landed {d['order']}. {d['name']} into {d['into']} ({d['how']}): {str(d['sha'])[:12]}"
             + (f", after {d['repairs']} repair(s)" if d["repairs"] else "") for d in data["landed"]]
    for f in data["failed"]:
        lines.append(f"NOT landed: {f['name']} into {f['into']}: {f['reason']}"
                     + (f" in {', '.join(f['files'])}" if f.get("files") else "")
                     + (f", after {f['repairs']} repair(s)" if f["repairs"] else "")
                     + (f" ({f['error']})" if f.get("error") else ""))
        if f.get("output"):
            lines += ["  | " + line for line in f["output"].splitlines()[-10:]]
    if data["repairs"]:
        lines.append(f"repairs: {len(data['repairs'])}, ${data['repair_cost_usd']:.4f}")
    for s in data.get("skipped", []):
        lines.append(f"not taken: {s['name']}: " + (s.get("message") or f"already landed on {s['into']}"))
    return "\n".join(lines) or "nothing to land"


def render_plan(data: dict[str, Any]) -> str:
    lines = [f"plan (order {data['order']}, check: {data['check'] or 'none, merge only'}); nothing changed:"]
    lines += [f"not taken: {s['name']}: {s['message']}" for s in data["skipped"] if s.get("message")]
    for p in data["plan"]:
        clash = ([f"conflicts with {p['into']} in {', '.join(p['conflicts_with_target'])}"]
                 if p["conflicts_with_target"] else []) + (
                 [f"conflicts with {', '.join(p['conflicts_with'])}"] if p["conflicts_with"] else [])
        lines.append(f"{p['order']}. {p['name']} -> {p['into']}, {p['commits']} commit(s)"
                     + (f": {'; '.join(clash)}" if clash else ": clean"))
    return "\n".join(lines)
