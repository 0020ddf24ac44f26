"""`envoy parallel cleanup`: remove workers' worktrees, branches and records,
never losing work: dirty or unmerged workers are skipped unless --force, and
even then their work is kept under refs/envoy/trash/<name> first."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from filelock import Timeout

from . import output, processes, queueing, slots, workers, worktrees
from .errors import EnvoyError
from .state import ACTIVE, Record, State, is_worker_name, worker_name
from .workspace import Workspace, open_workspace

STOP_GRACE = 15.0  # the supervisor itself gives its agent 5 s between TERM and KILL


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    if args.worker and args.all:
        raise EnvoyError("invalid_input", "--worker and --all cannot be combined",
                         "use --worker NAME for one worker, --all for every worker")
    broken = ws.state.broken()
    if args.worker:
        broken = [b for b in broken if Path(b["file"]).name == f"{args.worker}.json"]
        targets = [] if broken else [workers.find(ws.state, args.worker)]
    elif args.all:
        targets = workers.all_refreshed(ws.state)
    else:
        targets = [r for r in workers.all_refreshed(ws.state) if r["state"] not in (*ACTIVE, "queued")]
    may_stop = args.all or args.force
    removed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for entry in broken:
        outcome = clean_broken(ws, entry, force=args.force)
        (removed if outcome.get("removed") else skipped).append(outcome)
    # Queued ones first: stopping a running worker frees a slot the queue would take.
    for record in sorted(targets, key=lambda r: r["state"] != "queued"):
        outcome = clean_one(ws, record, force=args.force, may_stop=may_stop)
        (removed if outcome.get("removed") else skipped).append(outcome)
    if removed:
        with slots.launch_mutex(ws.state):  # see _delete
            ws.git.worktree_prune()
            queueing.dispatch(ws.git, ws.state)  # dependents of removed workers fail now, before this returns
    if args.worker and skipped:
        s = skipped[0]
        raise EnvoyError(s["reason"], s["message"], s["suggestion"])
    output.success({"removed": removed, "skipped": skipped}, render)
    return 0


def clean_one(ws: Workspace, record: Record, *, force: bool, may_stop: bool) -> dict[str, Any]:
    name = record["name"]
    if record["state"] == "queued":
        with slots.launch_mutex(ws.state):  # so the queue cannot start it meanwhile
            fresh = ws.state.read(name)
            if fresh is not None and fresh["state"] == "queued":
                done = remove(ws, fresh, force=force, mutex_held=True)  # with its worktree, if the queue prepared one
                return {**done, "cancelled": True} if done["removed"] else done
        record = ws.state.read(name) or record
    lock = slots.lock(ws.state, slots.worker(name))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not may_stop:
            return skip(record, "still_running", f"worker {name} is running",
                        f"wait for it (envoy parallel status), or stop and remove it: envoy parallel cleanup --worker {name} --force")
        if not stop(ws.state, record):
            return skip(record, "still_running", f"worker {name} is running, and its record does not name the "
                        "process that holds its lock", f"stop that process yourself, then envoy parallel cleanup --worker {name}")
        try:
            lock.acquire(timeout=STOP_GRACE, poll_interval=0.1)
        except Timeout:
            return skip(record, "still_running", f"worker {name} did not stop", "retry, or kill its processes")
    try:
        record = ws.state.read(name) or record
        processes.end_run(record.get("run_id"))  # any process of it that outlived its supervisor
        return remove(ws, record, force=force)
    finally:
        lock.release()


def clean_broken(ws: Workspace, entry: dict[str, str], *, force: bool) -> dict[str, Any]:
    """Remove a record file that is not a valid record. Nothing it says is believed:
    the worktree and branch go too only if git confirms them (a worktree where envoy
    puts this worker's, and the branch git says is checked out there), and then with
    the same checks for work as any worker's."""
    file = Path(entry["file"])
    stem = file.name[:-len(".json")]
    gone = {"name": stem, "branch": None, "removed": True, "broken_record": str(file)}
    if not is_worker_name(stem):  # no worker could have this file: it is only a file
        file.unlink(missing_ok=True)
        return gone
    lock = slots.lock(ws.state, slots.worker(stem))
    try:
        lock.acquire(timeout=0)
    except Timeout:  # its supervisor lives; its pid, in the broken record, cannot be trusted to stop it
        return {**gone, "removed": False, "reason": "still_running", "message": f"worker {stem} is running",
                "suggestion": f"wait for it to end, then envoy parallel cleanup --worker {stem}"}
    try:
        path = ws.layout().path(stem)
        branch = worktrees.checked_out_at(ws.git, path) if worktrees.verify(ws.git, ws.layout(), stem, path) is None else None
        if branch is None or worker_name(branch) != stem:
            ws.state.delete(stem)
            return gone
        found: Record = {"name": stem, "branch": branch, "path": str(path), "base_sha": None, "worktree_created": True,
                 "copied": []}
        return {**remove(ws, found, force=force), "broken_record": str(file)}
    finally:
        lock.release()


def stop(state: State, record: Record) -> bool:
    """TERM the supervisor (it stops its agent's group and records `stopped`); the
    caller then waits for the worker's lock. False if the record's pid is not the
    process holding the lock: a pid read from disk is never signalled on its word."""
    fresh = state.read(record["name"]) or record
    pid = fresh.get("supervisor_pid")
    if not pid or not slots.opened_by(state, slots.worker(record["name"]), pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    return True


def remove(ws: Workspace, record: Record, *, force: bool, mutex_held: bool = False) -> dict[str, Any]:
    """Remove one worker whose lock we hold (or the launch mutex, for a queued one),
    after checking it holds no work to lose."""
    name, branch, path = record["name"], record["branch"], Path(record["path"])
    if record.get("checking_out"):  # its checkout died half-way (no agent ever ran there)
        try:
            with _mutex(ws, mutex_held):
                worktrees.discard(ws.git, ws.layout(), record)
        except EnvoyError as exc:
            return skip(record, exc.kind, exc.message, exc.suggestion)
        ws.state.delete(name)
        return {"name": name, "branch": branch, "removed": True}
    # A worker that never started (queued, or failed waiting for a dependency) has no
    # worktree or branch of ours: a branch of that name now is someone else's.
    created = bool(record.get("worktree_created") or record.get("run"))
    has_branch = created and ws.git.branch_exists(branch)
    dirty = []
    if created and path.is_dir():
        copied = set(record.get("copied") or [])
        dirty = [p for p in ws.git.dirty_paths(path) if p not in copied]
    unmerged = ws.git.unmerged_count(branch) if has_branch else 0
    if unmerged and record.get("merged_sha") == ws.git.resolve_commit(f"refs/heads/{branch}"):
        unmerged = 0  # integrated by envoy parallel merge (also as a squash or rebase)
    if dirty and not force:
        return skip(record, "dirty", f"worker {name} has {len(dirty)} uncommitted change(s): {', '.join(dirty[:5])}",
                    f"commit them in {path}, or envoy parallel cleanup --worker {name} --force (kept in a trash ref)",
                    files=dirty[:20])
    if unmerged and not force:
        return skip(record, "unmerged", f"branch {branch} of worker {name} has {unmerged} commit(s) on no other branch",
                    f"merge it first (git merge {branch}), or envoy parallel cleanup --worker {name} --force "
                    "(kept in a trash ref)", commits=unmerged)
    done: dict[str, Any] = {"name": name, "branch": branch, "removed": True}
    if dirty or unmerged:
        done.update(keep_in_trash(ws, record, path, dirty))
    try:
        with _mutex(ws, mutex_held):
            _delete(ws, name, path, branch, created, has_branch)
    except EnvoyError as exc:  # what could not be verified, or is still there, stays: said so
        kept = {k: v for k, v in done.items() if k in ("trash_ref", "sha", "restore")}
        return skip(record, exc.kind, exc.message, exc.suggestion, **kept)
    ws.state.delete(name)
    return done


def _mutex(ws: Workspace, held: bool) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext() if held else slots.launch_mutex(ws.state)


def _delete(ws: Workspace, name: str, path: Path, branch: str, created: bool, has_branch: bool) -> None:
    """The worktree and branch, under the launch mutex: every `git worktree add` runs
    under it too, and git fails (branch -D: "failed to read .git/worktrees/X/commondir")
    or worse (prune could drop the half-made entry) when it meets a worktree being made.
    Raises if either is still there after."""
    if created and (path.exists() or path.is_symlink()):
        worktrees.remove(ws.git, ws.layout(), name, path)
    elif created:
        ws.git.worktree_prune()  # deleted by hand: git still counts the branch as checked out
    if has_branch:
        ws.git.delete_branch(branch)
        if ws.git.branch_exists(branch):
            raise EnvoyError("cleanup_incomplete", f"branch {branch} of worker {name} is still there",
                             f"git branch -D {branch}, then envoy parallel cleanup --worker {name}")


def keep_in_trash(ws: Workspace, record: Record, path: Path, dirty: list[str]) -> dict[str, Any]:
    """Save the branch tip (plus a commit of uncommitted work) under refs/envoy/trash/."""
    tip = ws.git.resolve_commit(f"refs/heads/{record['branch']}") or record["base_sha"]
    if dirty:
        snap = ws.git.snapshot(path, exclude=record.get("copied") or [],
                               message=f"envoy: uncommitted work of worker {record['name']} at cleanup")
        tip = snap or tip
    ref = f"refs/envoy/trash/{record['name']}"
    n = 1
    while ws.git.ref_exists(ref):
        n += 1
        ref = f"refs/envoy/trash/{record['name']}-{n}"
    ws.git.update_ref(ref, tip)
    return {"trash_ref": ref, "sha": tip, "restore": f"git branch {record['branch']} {tip}"}


def skip(record: Record, reason: str, message: str, suggestion: str, **extra: Any) -> dict[str, Any]:
    return {"name": record["name"], "branch": record["branch"], "removed": False, "reason": reason,
            "message": message, "suggestion": suggestion, **extra}


def render(data: dict[str, Any]) -> str:
    lines = []
    for r in data["removed"]:
        line = f"removed {r['name']}" + (f" ({r['branch']})" if r.get("branch") else "")
        if r.get("broken_record"):
            line += f", a broken record ({r['broken_record']})"
        if r.get("trash_ref"):
            line += f"; work kept at {r['trash_ref']} ({r['sha'][:12]}), restore with: {r['restore']}"
        lines.append(line)
    for s in data["skipped"]:
        lines.append(f"skipped {s['name']}: {s['message']}\n  try: {s['suggestion']}")
    return "\n".join(lines) or "nothing to clean up"
