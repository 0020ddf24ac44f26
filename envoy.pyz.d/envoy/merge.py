"""`envoy parallel merge`: integrate a worker's branch into a branch (default:
the base it was spawned from) without touching the user's checkout or index.

The merge is computed with `git merge-tree` (no checkout); a conflict changes
nothing and names the files. The target branch moves by compare-and-swap, or,
when it is checked out somewhere, by a fast-forward there, which git refuses
(changing nothing) if it would overwrite local changes.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import output, slots, workers
from .errors import EnvoyError
from .git import GitError
from .state import ACTIVE, Record, Staged, now_iso
from .workspace import Workspace, open_workspace


def run(args: argparse.Namespace) -> int:
    if args.squash and args.rebase:
        raise EnvoyError("invalid_input", "--squash and --rebase cannot be combined", "pick one, or neither for a merge commit")
    ws = open_workspace()
    record = workers.find(ws.state, args.worker)
    if record["state"] in ACTIVE or record["state"] == "queued":
        raise EnvoyError("still_running", f"worker {record['name']} is {record['state']}; its branch may still change",
                         f"envoy parallel wait --worker {record['name']}, then merge")
    into = args.into or record.get("base")
    if not into or not ws.git.branch_exists(into):
        raise EnvoyError("invalid_input", f"{into!r} is not a local branch to merge into",
                         "name one with --into BRANCH (e.g. --into main)")
    tip = ws.git.resolve_commit(f"refs/heads/{record['branch']}")
    if tip is None:
        raise EnvoyError("not_found", f"branch {record['branch']} of {record['name']} no longer exists",
                         "envoy parallel status shows its state")
    target = ws.git.resolve_commit(f"refs/heads/{into}")
    assert target is not None
    mode = "squash" if args.squash else "rebase" if args.rebase else "merge"
    result: dict[str, Any] = {"name": record["name"], "branch": record["branch"], "into": into, "mode": mode}
    if ws.git.is_ancestor(tip, target):
        result.update(merged=False, note=f"nothing to merge: {into} already contains {record['branch']}")
        remember(ws, record, into, tip).commit()
        output.success(result, render)
        return 0
    new = integrate(ws, record, mode, into, target, tip)
    staged = remember(ws, record, into, tip)  # a state that cannot be written refuses here, changing nothing
    try:
        move_branch(ws, into, target, new)
    except BaseException:
        staged.discard()
        raise
    staged.commit()
    result.update(merged=True, sha=new, commits=len(ws.git.commits(target, new)))
    dirty = workers_dirty(ws, record)
    if dirty:
        result["warning"] = f"{len(dirty)} uncommitted change(s) in the worktree were not merged: {', '.join(dirty[:5])}"
    output.success(result, render)
    return 0


def integrate(ws: Workspace, record: Record, mode: str, into: str, target: str, tip: str) -> str:
    """The commit `into` should move to."""
    git = ws.git
    if mode != "squash" and git.is_ancestor(target, tip):
        return tip  # a fast-forward, as git merge would
    if mode == "rebase":
        span = f"{git.run('merge-base', target, tip).strip()}..{tip}"
        with slots.launch_mutex(ws.state):  # it makes and removes a worktree (see cleanup._delete)
            new, conflicts = git.cherry_pick_onto(target, span)
    else:
        tree, conflicts = git.merge_tree(target, tip)
        new = None
        if tree is not None:
            commits = git.commits(target, tip)
            if mode == "squash":
                if len(commits) == 1:
                    message = f"{commits[0]['subject']}\n\n"
                else:
                    listing = "\n".join(f"- {c['subject']}" for c in reversed(commits))
                    message = f"Squashed {len(commits)} commits of {record['branch']}\n\n{listing}\n\n"
                new = git.commit_tree(tree, [target], message + f"(envoy worker {record['name']})")
            else:
                new = git.commit_tree(tree, [target, tip], f"Merge branch '{record['branch']}' into {into}\n\n"
                                      f"(envoy worker {record['name']}, {len(commits)} commit(s))")
    if new is None:
        raise EnvoyError("merge_conflict", f"{record['branch']} conflicts with {into} in: {', '.join(conflicts)}; "
                         "nothing was changed", f"resolve it yourself (git merge {record['branch']}), or resume the "
                         f"worker to rebase its work: envoy parallel resume --worker {record['name']} --task ...",
                         files=conflicts)
    return new


def move_branch(ws: Workspace, into: str, old: str, new: str) -> None:
    checked_out = ws.git.worktree_of(into)
    try:
        if checked_out is not None:
            ws.git.fast_forward(checked_out, new)
        else:
            ws.git.update_ref(f"refs/heads/{into}", new, old)  # fails if it moved meanwhile
    except GitError as exc:
        where = f" (checked out at {checked_out})" if checked_out else ""
        raise EnvoyError("git_error", f"could not move {into}{where}: {exc.message}; nothing was changed",
                         "commit or stash the local changes there, or merge --into another branch") from None


def remember(ws: Workspace, record: Record, into: str, tip: str) -> Staged:
    """So cleanup knows this tip is safe to delete (also after a squash or rebase).
    Staged, for the caller to commit: after moving the branch, yet known writable before."""
    fresh = ws.state.read(record["name"]) or record
    fresh.update(merged_into=into, merged_sha=tip, merged_at=now_iso())
    return ws.state.stage(fresh)


def workers_dirty(ws: Workspace, record: Record) -> list[str]:
    path = Path(record["path"])
    if not path.is_dir():
        return []
    copied = set(record.get("copied") or [])
    return [p for p in ws.git.dirty_paths(path) if p not in copied]


def render(data: dict[str, Any]) -> str:
    if not data.get("merged"):
        return f"{data['name']}: {data['note']}"
    text = f"merged {data['branch']} into {data['into']} ({data['mode']}): {data['sha'][:12]}, {data['commits']} commit(s)"
    return text + (f"\nwarning: {data['warning']}" if data.get("warning") else "")
