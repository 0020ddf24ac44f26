"""Integrating a worker's branch into a target branch without touching anyone's
checkout: the merge commit (or squash, or rebase) computed with git merge-tree, the
target moved by compare-and-swap, the one safe way (landing/target.py), and
the worker's record saying what it was merged as, so cleanup can tell it is safe to
remove (`still_merged`). `merge` and `land` both go through here."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, cast

from envoy.errors import EnvoyError
from envoy.git import Git
from envoy.landing import target
from envoy.worker import launch, locks, lookup, worktree
from envoy.worker.record import ACTIVE, Record, now_iso
from envoy.worker.workspace import Workspace

MERGE_FIELDS = ("merged_into", "merged_sha", "merged_commit", "merged_at")


_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def changes_anything(git: Git, target: str, tip: str) -> bool:
    """Whether `tip` changes any file since it forked from `target` (commits that undo
    each other change nothing, and are merged as commits, not skipped)."""
    return git.tree_of(tip) != git.tree_of(git.merge_base(target, tip))


def check_finished(record: Record, verb: str) -> None:
    """Refuse a worker whose branch may still change."""
    if record["state"] in ACTIVE or record["state"] == "queued":
        raise EnvoyError("still_running", f"worker {record['name']} is {record['state']}; its branch may still change",
                         f"envoy parallel wait --worker {record['name']}, then {verb}")


def check_target(ws: Workspace, record: Record, into: str | None, verb: str) -> str:
    """Refuse a target that is no branch to merge into: not a local branch (a tag,
    `main~1`, HEAD), the worker's own branch, or a branch a live worker works on."""
    if into == record["branch"]:
        raise EnvoyError("invalid_input", f"{into} is worker {record['name']}'s own branch: it cannot be merged "
                         "into itself", f"name the branch to {verb} it into, e.g. "
                         f"--into {record.get('base') or 'main'} (without --into: its base)")
    if not into or ws.git.branch_tip(into) is None:
        raise EnvoyError("invalid_input", f"{into!r} is not a local branch to {verb} into",
                         "name one with --into BRANCH (e.g. --into main)")
    for other in ws.state.all():
        if other.get("branch") == into and other["name"] != record["name"]:
            other = lookup.refresh(ws.state, other)
            if other["state"] in ACTIVE or other["state"] == "queued":
                raise EnvoyError("still_running", f"{into} is the branch of worker {other['name']}, which is "
                                 f"{other['state']}", f"envoy parallel wait --worker {other['name']}, then {verb}")
    return into


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
              trial: tuple[str | None, list[str]] | None = None) -> str:
    """The commit `into` should move to. `trial`: git merge-tree's (tree, conflicts) of
    target and tip, if the caller has it already."""
    git = ws.git
    if mode != "squash" and git.is_ancestor(target, tip):
        return tip  # a fast-forward, as git merge would
    new = None
    if mode == "rebase":
        new, conflicts = _rebase(ws, target, tip)
    else:
        tree, conflicts = trial or git.merge_tree(target, tip)
        if tree is not None:
            count = git.commit_count(target, tip)
            if mode == "squash":
                commits = git.commits(target, tip)  # their subjects make the message
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


def _rebase(ws: Workspace, target: str, tip: str) -> tuple[str | None, list[str]]:
    """`tip`'s commits replayed onto `target` in a private worktree, <common>/envoy/scratch/
    rebase, made and removed under the launch mutex (as every worktree add and prune is,
    see cleanup). A janitor waiting on that mutex removes it if this process dies first."""
    path = ws.state.root / "scratch" / "rebase"
    with locks.launch_mutex(ws.state):
        remove_scratch(ws, path)  # a killed merge's, whose janitor has not run yet
        ws.state.private_dir(path.parent)  # never through a symlink planted there (files.NotOurs)
        launch.start_janitor(ws.state, locks.LAUNCH, "rebase janitor", lambda: remove_scratch(ws, path))
        return ws.git.cherry_pick_onto(target, tip, path)


def remove_scratch(ws: Workspace, path: Path) -> None:
    """A scratch worktree a killed process left; the caller holds the launch mutex."""
    if os.path.lexists(path):
        worktree.remove_scratch(ws.git, ws.state.base, path)
        ws.git.worktree_prune()


def move_branch(ws: Workspace, into: str, old: str, new: str) -> None:
    """Move `into` from `old` (the commit checked) to `new`: see landing/target.py."""
    target.move(ws.git, into, old, new, ws.state.root)


def record_and_move(ws: Workspace, into: str, old: str, new: str, merged: list[tuple[Record, str, str]]) -> None:
    """Record each worker of `merged` (record, its tip, the commit on `into` that holds
    it) as merged, then move `into` from `old` to `new`; if it cannot move, the records
    are put back. Recorded first: one cut short after this claims a commit its target
    lacks, which still_merged sees; a target moved before a record that failed would be
    a lie. The caller holds the branches lock, under which cleanup decides "merged"."""
    before = [(record["name"], remember(ws, record, into, tip, commit)) for record, tip, commit in merged]
    try:
        if new != old:
            move_branch(ws, into, old, new)
    except BaseException:
        for name, fields in before:
            forget(ws, name, fields)
        raise


def remember(ws: Workspace, record: Record, into: str, tip: str, commit: str) -> Record:
    """Record that `tip` is merged into `into` as `commit` (so cleanup can check it is
    still there, also after a squash or rebase); returns the fields it replaced."""
    fresh = ws.state.read(record["name"]) or record
    before = cast(Record, {k: v for k, v in fresh.items() if k in MERGE_FIELDS})
    fresh.update({"merged_into": into, "merged_sha": tip, "merged_commit": commit, "merged_at": now_iso()})
    ws.state.write(fresh)
    return before


def forget(ws: Workspace, name: str, before: Record) -> None:
    """Undo `remember` after the target could not move."""
    fresh = ws.state.read(name)
    if fresh is not None:
        fields = cast(dict[str, Any], fresh)
        for key in MERGE_FIELDS:
            fields.pop(key, None)
        fresh.update(before)
        ws.state.write(fresh)

