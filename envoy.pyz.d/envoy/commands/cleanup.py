"""`envoy parallel cleanup`: remove workers' worktrees, branches and records,
never losing work: dirty or unmerged workers are skipped unless --force, and
even then their work is kept under refs/envoy/trash/<name> first."""
from __future__ import annotations

import argparse
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from envoy import executors, output, processes
from envoy.errors import EnvoyError
from envoy.landing import merging
from envoy.worker import locks, lookup, queue, submodules, worktree
from envoy.worker.record import ACTIVE, Record, is_worker_name, worker_name
from envoy.worker.store import State
from envoy.worker.workspace import Workspace, open_workspace

STOP_GRACE = 15.0  # the supervisor itself gives its agent 5 s between TERM and KILL


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    if args.worker and args.all:
        raise EnvoyError("invalid_input", "--worker and --all cannot be combined",
                         "use --worker NAME for one worker, --all for every worker")
    found, broken = ws.state.scan()  # one read of the records: the valid ones and the broken ones
    if args.worker:
        broken = [b for b in broken if Path(b["file"]).name == f"{args.worker}.json"]
        targets = [] if broken else [lookup.find(ws.state, args.worker)]
    else:
        everyone = lookup.refresh_all(ws.state, found)
        targets = everyone if args.all else [r for r in everyone if r["state"] not in (*ACTIVE, "queued")]
    may_stop = args.all or args.force
    removed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for entry in broken:
        gone = clean_broken(ws, entry, force=args.force)
        (removed if gone.get("removed") else skipped).append(gone)
    # Workers elsewhere (a cluster's jobs) are asked to stop all at once first, as each
    # would be below (a fleet of pending jobs is taken back in one go, not one by one).
    elsewhere = [r for r in targets if not executors.is_local(r) and r.get("job_id")
                 and (r["state"] == "queued" or may_stop and r["state"] in ACTIVE)]
    if len(elsewhere) > 1:
        executors.stop_many(ws, elsewhere)
        targets = [ws.state.read(r["name"]) or r if r in elsewhere else r for r in targets]
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
        with locks.launch_mutex(ws.state):  # see remove
            ws.git.worktree_prune()
            queue.dispatch(ws.git, ws.state)  # dependents of removed workers fail now, before this returns
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
    if not executors.is_local(record) and record.get("job_id") and record["state"] in (*ACTIVE, "queued"):
        problem = stop_elsewhere(ws, record, may_stop=may_stop)
        if problem is not None:
            return problem
        record = ws.state.read(name) or record
    if record["state"] == "queued":
        with locks.launch_mutex(ws.state, locks.BRANCHES), locks.launch_mutex(ws.state):  # the queue cannot start it
            fresh = ws.state.read(name)
            if not same_worker(fresh, record):
                return None
            assert fresh is not None
            if fresh["state"] == "queued":
                done = remove(ws, fresh, force=force, locked=True)  # with its worktree, if the queue prepared one
                return {**done, "cancelled": True} if done["removed"] else done
    lock = locks.lock(ws.state, locks.worker(name))
    if not _take(ws.state, lock, record):
        fresh = ws.state.read(name)
        if not same_worker(fresh, record):
            return None
        if not may_stop:
            return skip(record, "still_running", f"worker {name} is running",
                        f"wait for it (envoy parallel status), or stop and remove it: envoy parallel cleanup --worker {name} --force")
        if not stop(ws, record):
            return skip(record, "still_running", f"worker {name} is running, and its record does not name the "
                        "process that holds its lock", f"stop that process yourself, then envoy parallel cleanup --worker {name}")
        try:
            lock.acquire(timeout=STOP_GRACE, poll_interval=0.1)
        except Timeout:
            return skip(record, "still_running", f"worker {name} did not stop", "retry, or kill its processes")
    try:
        fresh = ws.state.read(name)
        if not same_worker(fresh, record):
            return None
        assert fresh is not None
        processes.end_run(fresh.get("run_id"))  # any process of it that outlived its supervisor
        done = remove(ws, fresh, force=force)
        if done.get("removed"):
            executors.of(fresh).forget(ws, fresh)
        return done
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


def clean_broken(ws: Workspace, entry: dict[str, str], *, force: bool) -> dict[str, Any]:
    """Remove a record file that is not a valid record. Nothing it says is believed:
    the worktree and branch go too only if git confirms them (a worktree where envoy
    puts this worker's, and the branch git says is checked out there), and then with
    the same checks for work as any worker's."""
    file = Path(entry["file"])
    stem = file.name[:-len(".json")]
    gone = {"name": stem, "branch": None, "removed": True, "broken_record": str(file)}
    if not is_worker_name(stem):  # no worker could have this file: it is only a file
        ws.state.remove(file)  # a directory or a symlink planted there too: removed as itself, never followed
        return gone
    lock = locks.lock(ws.state, locks.worker(stem))
    try:
        lock.acquire(timeout=0)
    except Timeout:  # its supervisor lives; its pid, in the broken record, cannot be trusted to stop it
        return {**gone, "removed": False, "reason": "still_running", "message": f"worker {stem} is running",
                "suggestion": f"wait for it to end, then envoy parallel cleanup --worker {stem}"}
    try:
        where = ws.layout()
        path = next((p for p in where.paths(stem) if worktree.verify(ws.git, where, stem, p) is None), where.path(stem))
        branch = worktree.checked_out_at(ws.git, path) if worktree.verify(ws.git, where, stem, path) is None else None
        if branch is None or worker_name(branch) != stem:
            ws.state.delete(stem)
            return gone
        found: Record = {"name": stem, "branch": branch, "path": str(path), "base_sha": None, "worktree_created": True,
                         "copied": [], "stand_in": True}
        done = remove(ws, found, force=force)
        return {**done, "broken_record": str(file), **({"path": str(path)} if done["removed"] else {})}
    finally:
        lock.release()


def stop(ws: Workspace, record: Record) -> bool:
    """Ask the worker's executor to stop it (it records `stopped`); the caller then
    waits for the worker's lock. False if it cannot be asked (see executors/)."""
    return executors.of(record).stop(ws, record)


def stop_elsewhere(ws: Workspace, record: Record, *, may_stop: bool) -> dict[str, Any] | None:
    """A worker running (or pending) on another executor holds no lock here: stop it
    there and wait until its end is recorded (its work fetched back). None once it
    has ended; else why it is skipped."""
    name = record["name"]
    if record["state"] != "queued" and not may_stop:
        return skip(record, "still_running", f"worker {name} is running on {record.get('cluster') or 'its cluster'}",
                    f"wait for it (envoy parallel status), or stop and remove it: envoy parallel cleanup --worker {name} --force")
    stop(ws, record)
    deadline = time.monotonic() + 4 * STOP_GRACE
    while time.monotonic() < deadline:
        fresh = lookup.refresh(ws.state, ws.state.read(name) or record)
        if fresh["state"] not in (*ACTIVE, "queued"):
            return None
        time.sleep(0.5)
    return skip(record, "still_running", f"worker {name} did not stop on {record.get('cluster')}",
                f"retry, or stop its job there (ray job stop {record.get('job_id')})")


def unmerged(ws: Workspace, record: Record, tip: str, branch: str | None = None) -> int:
    """Commits of `tip` on no branch (but `branch`), tag or remote, unless an envoy merge
    put them on a branch that still has them (also as a squash or rebase)."""
    count = ws.git.unmerged_count(tip, branch)
    return 0 if count and merging.still_merged(ws.git, record, tip) else count


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
    if record.get("checking_out"):  # its checkout died half-way (no agent ever ran there)
        try:
            with nullcontext() if locked else locks.launch_mutex(ws.state):
                worktree.discard(ws.git, ws.layout(), record)
        except EnvoyError as exc:
            return skip(record, exc.kind, exc.message, exc.suggestion)
        ws.state.delete(name)
        return {"name": name, "branch": branch, "removed": True}
    # A worker that never started (queued, or failed waiting for a dependency) has no
    # worktree or branch of ours: a branch of that name now is someone else's.
    created = bool(record.get("worktree_created") or record.get("run"))
    dirty = worktree.uncommitted(ws.git, record) if created else []
    if dirty and not force:
        return skip(record, "dirty", f"worker {name} has {len(dirty)} uncommitted change(s): {', '.join(dirty[:5])}",
                    f"commit them in {path}, or envoy parallel cleanup --worker {name} --force (kept in a trash ref)",
                    files=dirty[:20])
    with nullcontext() if locked else locks.launch_mutex(ws.state, locks.BRANCHES):
        tip = ws.git.branch_tip(branch) if created else None
        own = ws.git.unmerged_count(tip, branch) if tip else 0  # its commits no other ref reaches
        count = 0 if own and tip and merging.still_merged(ws.git, record, tip) else own
        if count and not force:
            return skip(record, "unmerged", f"branch {branch} of worker {name} has {count} commit(s) on no other branch",
                        f"merge it first (envoy parallel merge --worker {name}), or "
                        f"envoy parallel cleanup --worker {name} --force (kept in a trash ref)", commits=count)
        try:  # before its worktree goes: submodule commits made there live only in it
            kept_sub = submodules.keep_commits(ws.git, record, path, tip) if tip and created else []
        except EnvoyError as exc:
            return skip(record, exc.kind, exc.message, exc.suggestion)
        # Under the launch mutex: every `git worktree add` runs under it too, and git fails
        # ("failed to read .git/worktrees/X/commondir") or worse (prune could drop the
        # half-made entry) when it meets a worktree being made.
        with nullcontext() if locked else locks.launch_mutex(ws.state):
            # update-ref deletes a branch whatever has it checked out; git branch -D would refuse.
            elsewhere = ws.git.worktree_of(branch) if tip is not None else None
            if elsewhere is not None and os.path.realpath(elsewhere) != os.path.realpath(path):
                return skip(record, "checked_out", f"branch {branch} of worker {name} is checked out at {elsewhere}",
                            f"switch that checkout to another branch, then envoy parallel cleanup --worker {name}")
            done: dict[str, Any] = {"name": name, "branch": branch, "removed": True}
            if kept_sub:
                done["submodule_commits_kept"] = kept_sub
            if dirty or own:  # merged as a squash or rebase too: its own commits are on no ref but this one
                done.update(keep_in_trash(ws, record, path, dirty, tip))
            try:
                # The worktree first: cut short after it, the branch is still there to decide
                # on again (a worktree whose branch went would look wholly uncommitted).
                if created and (path.exists() or path.is_symlink()):
                    worktree.remove(ws.git, ws.layout(), name, path)  # only a worktree verified as this worker's
                elif created:
                    ws.git.worktree_prune()  # deleted by hand: git still counts the branch as checked out
            except EnvoyError as exc:  # what could not be verified, or is still there, stays: said so
                kept = {k: v for k, v in done.items() if k in ("trash_ref", "sha", "restore")}
                return skip(record, exc.kind, exc.message, exc.suggestion, **kept)
            if tip is not None and not ws.git.delete_branch_at(branch, tip) and ws.git.branch_exists(branch):
                kept_note = f"; its work so far is kept at {done['trash_ref']}" if done.get("trash_ref") else ""
                return skip(record, "busy", f"branch {branch} of worker {name} moved while cleanup removed its "
                            f"worktree; the branch was kept{kept_note}", f"envoy parallel cleanup --worker {name} again")
            if tip is not None and "trash_ref" not in done and unmerged(ws, record, tip):
                done.update(keep_in_trash(ws, record, path, [], tip))  # the other branch went meanwhile
        if "trash_ref" not in done and noted_trash(ws, record):  # kept by a cleanup cut short
            done.update(record["trash"])
        ws.state.delete(name)
    return done


def noted_trash(ws: Workspace, record: Record) -> bool:
    """Whether the record names a trash ref an earlier cleanup of it made (and was cut
    short before it could report it), one that still exists. Its shape was checked when
    the record was read (record.problem_with)."""
    kept = record.get("trash")
    return kept is not None and ws.git.ref_exists(kept["trash_ref"])


def keep_in_trash(ws: Workspace, record: Record, path: Path, dirty: list[str], tip: str | None) -> dict[str, Any]:
    """Save the branch tip (plus a commit of uncommitted work) under refs/envoy/trash/."""
    tip = tip or record.get("base_sha")
    if dirty:
        snap = ws.git.snapshot(path, exclude=record.get("copied") or [],
                               message=f"envoy: uncommitted work of worker {record['name']} at cleanup")
        tip = snap or tip
    if tip is None:
        return {}  # no branch, no base, nothing uncommitted: no work of its own to keep
    ref = ws.git.keep_in_trash(record["name"], tip)
    kept = {"trash_ref": ref, "sha": tip, "restore": f"git branch {record['branch']} {tip}"}
    if not record.get("stand_in"):  # a broken record's stand-in has no record to note it in
        ws.state.write({**record, "trash": kept})  # so a cleanup cut short after this still reports it when rerun
    return kept


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
