"""`envoy parallel merge`: integrate a worker's branch into a branch (default:
the base it was spawned from) without touching the user's checkout or index.

The merge is computed with `git merge-tree` (no checkout); a conflict changes
nothing and names the files. The target branch moves by compare-and-swap; where
it is checked out, its files follow, and the move is refused (changing nothing)
if it would overwrite local changes or untracked or ignored files, or while a
rebase, merge or bisect is under way (landing/target.py).
"""
from __future__ import annotations

import argparse
from typing import Any

from envoy import output
from envoy.errors import EnvoyError
from envoy.landing import merging
from envoy.worker import locks, lookup, worktree
from envoy.worker.record import Record
from envoy.worker.workspace import Workspace, open_workspace


def run(args: argparse.Namespace) -> int:
    if args.squash and args.rebase:
        raise EnvoyError("invalid_input", "--squash and --rebase cannot be combined", "pick one, or neither for a merge commit")
    ws = open_workspace()
    record = lookup.find(ws.state, args.worker)
    merging.check_finished(record, "merge")
    into = merging.check_target(ws, record, args.into or record.get("base"), "merge")
    ws.git.check_can_commit()  # a merge or rebase commit would fail half-way
    mode = "squash" if args.squash else "rebase" if args.rebase else "merge"
    result: dict[str, Any] = {"name": record["name"], "branch": record["branch"], "into": into, "mode": mode}
    # Under the mutex cleanup decides "merged" under: the target moves and the record
    # says so as one step, and neither branch is deleted meanwhile.
    with locks.launch_mutex(ws.state, locks.BRANCHES):
        fresh = ws.state.read(record["name"])
        if fresh is None or fresh.get("session_id") != record.get("session_id"):
            raise EnvoyError("not_found", f"worker {record['name']} was removed meanwhile",
                             "envoy parallel status lists the workers")
        merging.check_finished(fresh, "merge")
        tip = ws.git.branch_tip(fresh["branch"])
        if tip is None:
            raise EnvoyError("not_found", f"branch {fresh['branch']} of {fresh['name']} no longer exists",
                             "envoy parallel status shows its state")
        target = ws.git.branch_tip(into)
        if target is None:
            raise EnvoyError("not_found", f"branch {into} was deleted meanwhile; nothing was changed",
                             "name another with --into BRANCH")
        if ws.git.is_ancestor(tip, target):
            return already(ws, fresh, result, tip, tip, f"{into} already contains {fresh['branch']}")
        tree, conflicts = ws.git.merge_tree(target, tip)
        if tree is not None and tree == ws.git.tree_of(target) and merging.changes_anything(ws.git, target, tip):
            return already(ws, fresh, result, tip, target,
                           f"{into} already has every change of {fresh['branch']} (merged before, say as a squash)")
        new = merging.integrate(ws, fresh, mode, into, target, tip, (tree, conflicts))
        if new == target:  # a rebase with nothing left to replay
            return already(ws, fresh, result, tip, target,
                           f"{into} already has every commit of {fresh['branch']} (cherry-picked, say)")
        merging.record_and_move(ws, into, target, new, [(fresh, tip, new)])
    if new == tip and mode != "squash":
        result["mode"] = "fast-forward"  # as git performed it: the target only moved up to the worker's tip
    result.update(merged=True, sha=new, commits=ws.git.commit_count(target, new))
    dirty = worktree.uncommitted(ws.git, fresh)
    if dirty:
        result["warning"] = f"{len(dirty)} uncommitted change(s) in the worktree were not merged: {', '.join(dirty[:5])}"
    output.success(result, render)
    return 0


def already(ws: Workspace, record: Record, result: dict[str, Any], tip: str, commit: str, why: str) -> int:
    """Nothing to merge: said so, and recorded as merged (as `commit`), so cleanup agrees."""
    result.update(merged=False, note=f"nothing to merge: {why}")
    merging.remember(ws, record, result["into"], tip, commit)
    output.success(result, render)
    return 0


def render(data: dict[str, Any]) -> str:
    if not data.get("merged"):
        return f"{data['name']}: {data['note']}"
    text = f"merged {data['branch']} into {data['into']} ({data['mode']}): {data['sha'][:12]}, {data['commits']} commit(s)"
    return text + (f"\nwarning: {data['warning']}" if data.get("warning") else "")
