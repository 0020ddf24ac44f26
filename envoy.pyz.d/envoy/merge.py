"""`envoy parallel merge`: integrate a worker's branch into a branch (default:
the base it was spawned from) without touching the user's checkout or index.

The merge is computed with `git merge-tree` (no checkout); a conflict changes
nothing and names the files. The target branch moves by compare-and-swap, or,
when it is checked out somewhere, by a fast-forward there, which git refuses
(changing nothing) if it would overwrite local changes.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from . import output, slots, workers
from .errors import EnvoyError
from .git import Git, GitError
from .state import ACTIVE, Record, now_iso
from .workspace import Workspace, open_workspace

MERGE_FIELDS = ("merged_into", "merged_sha", "merged_commit", "merged_at")
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def run(args: argparse.Namespace) -> int:
    if args.squash and args.rebase:
        raise EnvoyError("invalid_input", "--squash and --rebase cannot be combined", "pick one, or neither for a merge commit")
    ws = open_workspace()
    record = workers.find(ws.state, args.worker)
    _check_finished(record)
    into = check_target(ws, record, args.into or record.get("base"))
    mode = "squash" if args.squash else "rebase" if args.rebase else "merge"
    result: dict[str, Any] = {"name": record["name"], "branch": record["branch"], "into": into, "mode": mode}
    # Under the mutex cleanup decides "merged" under: the target moves and the record
    # says so as one step, and neither branch is deleted meanwhile.
    with slots.launch_mutex(ws.state, slots.BRANCHES):
        fresh = ws.state.read(record["name"])
        if fresh is None or fresh.get("session_id") != record.get("session_id"):
            raise EnvoyError("not_found", f"worker {record['name']} was removed meanwhile",
                             "envoy parallel status lists the workers")
        _check_finished(fresh)
        tip = ws.git.branch_tip(fresh["branch"])
        if tip is None:
            raise EnvoyError("not_found", f"branch {fresh['branch']} of {fresh['name']} no longer exists",
                             "envoy parallel status shows its state")
        target = ws.git.branch_tip(into)
        if target is None:
            raise EnvoyError("not_found", f"branch {into} was deleted meanwhile; nothing was changed",
                             "name another with --into BRANCH")
        if ws.git.is_ancestor(tip, target):
            result.update(merged=False, note=f"nothing to merge: {into} already contains {fresh['branch']}")
            remember(ws, fresh, into, tip, tip)
            output.success(result, render)
            return 0
        tree, conflicts = ws.git.merge_tree(target, tip)
        if tree is not None and tree == ws.git.tree_of(target) and changes_anything(ws.git, target, tip):
            result.update(merged=False, note=f"nothing to merge: {into} already has every change of "
                          f"{fresh['branch']} (merged before, say as a squash)")
            remember(ws, fresh, into, tip, target)
            output.success(result, render)
            return 0
        new = integrate(ws, fresh, mode, into, target, tip, tree, conflicts)
        # Recorded first: a merge cut short after this claims a commit its target lacks,
        # which still_merged sees; a target moved before a record that failed would be a lie.
        before = remember(ws, fresh, into, tip, new)
        try:
            move_branch(ws, into, target, new)
        except BaseException:
            forget(ws, fresh["name"], before)
            raise
    result.update(merged=True, sha=new, commits=ws.git.commit_count(target, new))
    dirty = workers_dirty(ws, fresh)
    if dirty:
        result["warning"] = f"{len(dirty)} uncommitted change(s) in the worktree were not merged: {', '.join(dirty[:5])}"
    output.success(result, render)
    return 0


def _check_finished(record: Record) -> None:
    if record["state"] in ACTIVE or record["state"] == "queued":
        raise EnvoyError("still_running", f"worker {record['name']} is {record['state']}; its branch may still change",
                         f"envoy parallel wait --worker {record['name']}, then merge")


def check_target(ws: Workspace, record: Record, into: str | None) -> str:
    """Refuse a target that is no branch to merge into: not a local branch (a tag,
    `main~1`, HEAD), the worker's own branch, or a branch a live worker works on."""
    if into == record["branch"]:
        raise EnvoyError("invalid_input", f"{into} is worker {record['name']}'s own branch: it cannot be merged "
                         "into itself", f"name the branch to merge it into, e.g. --into {record.get('base') or 'main'} "
                         "(without --into: its base)")
    if not into or ws.git.branch_tip(into) is None:
        raise EnvoyError("invalid_input", f"{into!r} is not a local branch to merge into",
                         "name one with --into BRANCH (e.g. --into main)")
    for other in ws.state.all():
        if other.get("branch") == into and other["name"] != record["name"]:
            other = workers.refresh(ws.state, other)
            if other["state"] in ACTIVE or other["state"] == "queued":
                raise EnvoyError("still_running", f"{into} is the branch of worker {other['name']}, which is "
                                 f"{other['state']}", f"envoy parallel wait --worker {other['name']}, then merge")
    return into


def changes_anything(git: Git, target: str, tip: str) -> bool:
    """Whether `tip` changes any file since it forked from `target` (commits that undo
    each other change nothing, and are merged as commits, not skipped)."""
    return git.tree_of(tip) != git.tree_of(git.merge_base(target, tip))


def still_merged(git: Git, record: Record, tip: str) -> bool:
    """Whether `envoy parallel merge` put this tip's work on a branch that still has it
    (also as a squash or rebase, whose commits are not the worker's): the record names
    the commit that merge made on that branch, and git is asked whether it is still there."""
    into, commit = record.get("merged_into"), record.get("merged_commit")
    if record.get("merged_sha") != tip or not isinstance(into, str) or into == record.get("branch"):
        return False
    if not isinstance(commit, str) or not _SHA.fullmatch(commit):
        return False
    target = git.branch_tip(into)
    return target is not None and git.is_ancestor(commit, target)


def integrate(ws: Workspace, record: Record, mode: str, into: str, target: str, tip: str,
              tree: str | None, conflicts: list[str]) -> str:
    """The commit `into` should move to; `tree` and `conflicts` are git merge-tree's."""
    git = ws.git
    if mode != "squash" and git.is_ancestor(target, tip):
        return tip  # a fast-forward, as git merge would
    new = None
    if mode == "rebase":
        with slots.launch_mutex(ws.state):  # it makes and removes a worktree (see cleanup.remove)
            new, conflicts = git.cherry_pick_onto(target, tip)
    elif tree is not None:
        commits, count = git.commits(target, tip), git.commit_count(target, tip)
        if mode == "squash":
            if count == 1:
                message = f"{commits[0]['subject']}\n\n"
            else:
                listing = "\n".join(f"- {c['subject']}" for c in reversed(commits))
                more = f"\n- ... and {count - len(commits)} earlier commit(s)" if count > len(commits) else ""
                message = f"Squashed {count} commits of {record['branch']}\n\n{listing}{more}\n\n"
            new = git.commit_tree(tree, [target], message + f"(envoy worker {record['name']})")
        else:
            new = git.commit_tree(tree, [target, tip], f"Merge branch '{record['branch']}' into {into}\n\n"
                                  f"(envoy worker {record['name']}, {count} commit(s))")
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


def remember(ws: Workspace, record: Record, into: str, tip: str, commit: str) -> dict[str, Any]:
    """Record that `tip` is merged into `into` as `commit` (so cleanup can check it is
    still there, also after a squash or rebase); returns the fields it replaced."""
    fresh = ws.state.read(record["name"]) or record
    before = {k: fresh[k] for k in MERGE_FIELDS if k in fresh}
    fresh.update(merged_into=into, merged_sha=tip, merged_commit=commit, merged_at=now_iso())
    ws.state.write(fresh)
    return before


def forget(ws: Workspace, name: str, before: dict[str, Any]) -> None:
    """Undo `remember` after the target could not move."""
    fresh = ws.state.read(name)
    if fresh is not None:
        for key in MERGE_FIELDS:
            fresh.pop(key, None)
        fresh.update(before)
        ws.state.write(fresh)


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
