"""`envoy parallel cleanup`: remove workers' worktrees, branches and records,
never losing work: dirty or unmerged workers are skipped unless --force, and
even then their work is kept under refs/envoy/trash/<name> first."""
from __future__ import annotations

import argparse
import os
import signal
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from . import merge, output, queueing, scheduler, slots, workers
from .errors import EnvoyError
from .state import ACTIVE, Record, State
from .workspace import Workspace, open_workspace

STOP_GRACE = 15.0  # the supervisor itself gives its agent 5 s between TERM and KILL


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    if args.worker and args.all:
        raise EnvoyError("invalid_input", "--worker and --all cannot be combined",
                         "use --worker NAME for one worker, --all for every worker")
    if args.worker:
        targets = [workers.find(ws.state, args.worker)]
    elif args.all:
        targets = workers.all_refreshed(ws.state)
    else:
        targets = [r for r in workers.all_refreshed(ws.state) if r["state"] not in (*ACTIVE, "queued")]
    may_stop = args.all or args.force
    removed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    # Queued ones first: stopping a running worker frees a slot the queue would take.
    for record in sorted(targets, key=lambda r: r["state"] != "queued"):
        try:
            outcome = clean_one(ws, record, force=args.force, may_stop=may_stop)
        except EnvoyError as exc:
            if args.worker:
                raise
            # This worker's failure: the others are still cleaned up, and what was removed is said.
            outcome = skip(record, exc.kind, exc.message, exc.suggestion)
        if outcome is None:  # another envoy process removed it meanwhile: not ours to report
            if args.worker:
                raise EnvoyError("not_found", f"worker {record['name']} was removed meanwhile by another envoy "
                                 "process", "envoy parallel status lists the workers")
            continue
        (removed if outcome.get("removed") else skipped).append(outcome)
    if removed:
        with slots.launch_mutex(ws.state):  # see remove
            ws.git.worktree_prune()
            queueing.dispatch(ws.git, ws.state)  # dependents of removed workers fail now, before this returns
    if args.worker and skipped:
        s = skipped[0]
        raise EnvoyError(s["reason"], s["message"], s["suggestion"])
    output.success({"removed": removed, "skipped": skipped}, render)
    return 0


def same_worker(fresh: Record | None, record: Record) -> bool:
    """Whether the record on disk is still the worker we set out to remove (not gone,
    not a new worker spawned under the same name since)."""
    return fresh is not None and fresh.get("session_id") == record.get("session_id")


def clean_one(ws: Workspace, record: Record, *, force: bool, may_stop: bool) -> dict[str, Any] | None:
    """Remove one worker, or say why not; None if another envoy process removed it first."""
    name = record["name"]
    if record["state"] == "queued":
        with slots.launch_mutex(ws.state, slots.BRANCHES), slots.launch_mutex(ws.state):  # the queue cannot start it
            fresh = ws.state.read(name)
            if not same_worker(fresh, record):
                return None
            assert fresh is not None
            if fresh["state"] == "queued":
                if fresh.get("checking_out"):  # the runner died checking it out
                    scheduler.discard_half_made(ws.git, fresh)
                done = remove(ws, fresh, force=force, locked=True)  # with its worktree, if the queue prepared one
                return {**done, "cancelled": True} if done["removed"] else done
    lock = slots.lock(ws.state, slots.worker(name))
    if not _take(ws.state, lock, record):
        fresh = ws.state.read(name)
        if not same_worker(fresh, record):
            return None
        if not may_stop:
            return skip(record, "still_running", f"worker {name} is running",
                        f"wait for it (envoy parallel status), or stop and remove it: envoy parallel cleanup --worker {name} --force")
        stop(ws.state, record)
        try:
            lock.acquire(timeout=STOP_GRACE, poll_interval=0.1)
        except Timeout:
            return skip(record, "still_running", f"worker {name} did not stop", "retry, or kill its processes")
    try:
        fresh = ws.state.read(name)
        if not same_worker(fresh, record):
            return None
        assert fresh is not None
        return remove(ws, fresh, force=force)
    finally:
        lock.release()


def _take(state: State, lock: FileLock, record: Record) -> bool:
    """The worker's lock, at once; or, while its record says it is not running, within
    a moment: then another envoy process holds it briefly (another cleanup removing
    it, a resume starting it), and the worker is not "running"."""
    deadline = time.monotonic() + STOP_GRACE
    while True:
        try:
            lock.acquire(timeout=0)
            return True
        except Timeout:
            pass
        fresh = state.read(record["name"])
        if not same_worker(fresh, record) or (fresh or {}).get("state") in ACTIVE or time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def stop(state: State, record: Record) -> None:
    """TERM the supervisor (it stops its agent's group and records `stopped`); the
    caller then waits for the worker's lock."""
    fresh = state.read(record["name"]) or record
    pid = fresh.get("supervisor_pid")
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)  # the lock is held, so this pid is still that supervisor
        except ProcessLookupError:
            pass


def unmerged(ws: Workspace, record: Record, tip: str, branch: str | None = None) -> int:
    """Commits of `tip` on no branch (but `branch`), tag or remote, unless an envoy merge
    put them on a branch that still has them (also as a squash or rebase)."""
    count = ws.git.unmerged_count(tip, branch)
    return 0 if count and merge.still_merged(ws.git, record, tip) else count


def remove(ws: Workspace, record: Record, *, force: bool, locked: bool = False) -> dict[str, Any]:
    """Remove one worker whose lock we hold (or, `locked`, for a queued one: the
    branches and launch mutexes), after checking it holds no work to lose.

    "Its commits are on another branch" is only true while that branch stays: so the
    decision and the deletion happen under one mutex that every cleanup and merge
    takes, the branch is deleted only if it still points where the decision looked
    (compare-and-swap), and afterwards the commits are looked for again: a user can
    delete the other branch meanwhile (envoy cannot lock them out), and then the work
    goes to a trash ref that is reported."""
    name, branch, path = record["name"], record["branch"], Path(record["path"])
    # A worker that never started (queued, or failed waiting for a dependency) has no
    # worktree or branch of ours: a branch of that name now is someone else's.
    created = bool(record.get("worktree_created") or record.get("run"))
    dirty = []
    if created and path.is_dir():
        copied = set(record.get("copied") or [])
        dirty = [p for p in ws.git.dirty_paths(path) if p not in copied]
    if dirty and not force:
        return skip(record, "dirty", f"worker {name} has {len(dirty)} uncommitted change(s): {', '.join(dirty[:5])}",
                    f"commit them in {path}, or envoy parallel cleanup --worker {name} --force (kept in a trash ref)",
                    files=dirty[:20])
    with nullcontext() if locked else slots.launch_mutex(ws.state, slots.BRANCHES):
        tip = ws.git.branch_tip(branch) if created else None
        count = unmerged(ws, record, tip, branch) if tip else 0
        if count and not force:
            return skip(record, "unmerged", f"branch {branch} of worker {name} has {count} commit(s) on no other branch",
                        f"merge it first (envoy parallel merge --worker {name}), or "
                        f"envoy parallel cleanup --worker {name} --force (kept in a trash ref)", commits=count)
        # Under the launch mutex: every `git worktree add` runs under it too, and git fails
        # ("failed to read .git/worktrees/X/commondir") or worse (prune could drop the
        # half-made entry) when it meets a worktree being made.
        with nullcontext() if locked else slots.launch_mutex(ws.state):
            # update-ref deletes a branch whatever has it checked out; git branch -D would refuse.
            elsewhere = ws.git.worktree_of(branch) if tip is not None else None
            if elsewhere is not None and os.path.realpath(elsewhere) != os.path.realpath(path):
                return skip(record, "checked_out", f"branch {branch} of worker {name} is checked out at {elsewhere}",
                            f"switch that checkout to another branch, then envoy parallel cleanup --worker {name}")
            done: dict[str, Any] = {"name": name, "branch": branch, "removed": True}
            if dirty or count:
                done.update(keep_in_trash(ws, record, path, dirty, tip))
            # The worktree first: cut short after it, the branch is still there to decide
            # on again (a worktree whose branch went would look wholly uncommitted).
            if created and path.is_dir():
                ws.git.worktree_remove(path)
            elif created:
                ws.git.worktree_prune()  # deleted by hand: git still counts the branch as checked out
            if tip is not None and not ws.git.delete_branch_at(branch, tip) and ws.git.branch_exists(branch):
                kept = f"; its work so far is kept at {done['trash_ref']}" if done.get("trash_ref") else ""
                return skip(record, "busy", f"branch {branch} of worker {name} moved while cleanup removed its "
                            f"worktree; the branch was kept{kept}", f"envoy parallel cleanup --worker {name} again")
            if tip is not None and "trash_ref" not in done and unmerged(ws, record, tip):
                done.update(keep_in_trash(ws, record, path, [], tip))  # the other branch went meanwhile
        if "trash_ref" not in done and noted_trash(ws, record):  # kept by a cleanup cut short
            done.update(record["trash"])
        ws.state.delete(name)
    return done


def noted_trash(ws: Workspace, record: Record) -> bool:
    """Whether the record names a trash ref an earlier cleanup of it made (and was cut
    short before it could report it), one that still exists."""
    kept = record.get("trash")
    return (isinstance(kept, dict) and all(isinstance(kept.get(k), str) for k in ("trash_ref", "sha", "restore"))
            and kept["trash_ref"].startswith("refs/envoy/trash/") and ws.git.ref_exists(kept["trash_ref"]))


def keep_in_trash(ws: Workspace, record: Record, path: Path, dirty: list[str], tip: str | None) -> dict[str, Any]:
    """Save the branch tip (plus a commit of uncommitted work) under refs/envoy/trash/."""
    tip = tip or record["base_sha"]
    if dirty:
        snap = ws.git.snapshot(path, exclude=record.get("copied") or [],
                               message=f"envoy: uncommitted work of worker {record['name']} at cleanup")
        tip = snap or tip
    ref = ws.git.keep_in_trash(record["name"], tip)
    kept = {"trash_ref": ref, "sha": tip, "restore": f"git branch {record['branch']} {tip}"}
    ws.state.write({**record, "trash": kept})  # so a cleanup cut short after this still reports it when rerun
    return kept


def skip(record: Record, reason: str, message: str, suggestion: str, **extra: Any) -> dict[str, Any]:
    return {"name": record["name"], "branch": record["branch"], "removed": False, "reason": reason,
            "message": message, "suggestion": suggestion, **extra}


def render(data: dict[str, Any]) -> str:
    lines = []
    for r in data["removed"]:
        line = f"removed {r['name']} ({r['branch']})"
        if r.get("trash_ref"):
            line += f"; work kept at {r['trash_ref']} ({r['sha'][:12]}), restore with: {r['restore']}"
        lines.append(line)
    for s in data["skipped"]:
        lines.append(f"skipped {s['name']}: {s['message']}\n  try: {s['suggestion']}")
    return "\n".join(lines) or "nothing to clean up"
