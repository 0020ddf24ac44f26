"""`envoy parallel conflicts`: which workers collide before anyone merges.

Dry-run merges of branch tips (`git merge-tree --write-tree`: no checkout, no
worktree touched), only where a conflict is possible: workers without commits
are skipped, and two workers from the same base whose changed files are
disjoint are clean without a merge. The answer is bounded: counts, and the
conflicting pairs (and workers that conflict with their base)."""
from __future__ import annotations

import argparse
from typing import Any

from envoy import output
from envoy.landing import predict
from envoy.worker import lookup
from envoy.worker.workspace import open_workspace

SHOWN = 50  # conflicting pairs listed at most; the count says how many there are


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    git = ws.git
    # Each tip is resolved once, to a commit (one git call for all): a branch that a
    # cleanup deletes meanwhile leaves its commits, and the answer is about the tips seen.
    started = [r for r in lookup.all_refreshed(ws.state) if r["state"] != "queued" and r.get("base_sha")]
    every_tip = git.branch_tips()
    tips = {r["name"]: every_tip[r["branch"]] for r in started if r["branch"] in every_tip}
    candidates = [r for r in started if r["name"] in tips]
    changes = predict.footprints(git, candidates, tips)
    merged, counts = predict.pairwise_pruned(git, candidates, tips, changes)
    conflicting = [p for p in merged if p["conflict"]]
    into_base: list[dict[str, Any]] = []
    base_moves: dict[tuple[str, str], tuple[set[str], set[str]] | None] = {}
    for r in candidates:
        if r["name"] not in changes:
            continue  # no commits: nothing to merge
        named = r.get("base")
        base = (every_tip.get(named) if named else None) or str(r["base_sha"])
        if base == r["base_sha"]:
            continue  # the base has not moved: the worker's branch is on top of it
        moved = (str(r["base_sha"]), base)
        if moved not in base_moves:  # what the base changed since, once per (old, new) base
            # a base rewritten rather than moved on (not a descendant) is always merged
            base_moves[moved] = predict.footprint_of(git, *moved) if git.is_ancestor(*moved) else None
        base_change = base_moves[moved]
        if base_change is not None and not predict.may_collide(changes[r["name"]], base_change):
            continue
        files = predict.into(git, tips[r["name"]], base)
        if files:
            into_base.append({"name": r["name"], "base": r["base"], "files": files})
    data: dict[str, Any] = {
        "workers": len(candidates), "without_commits": len(candidates) - len(changes),
        "pairs": counts["pairs"], "pairs_merged": counts["merged"], "pairs_pruned": counts["pruned"],
        "conflicting_pairs": len(conflicting),
        "conflicts": [{"a": p["a"], "b": p["b"], "files": p["files"][:20]} for p in conflicting[:SHOWN]],
        "conflicting_with_base": into_base[:SHOWN],
    }
    output.success(data, render)
    return 0


def render(data: dict[str, Any]) -> str:
    if not data["workers"]:
        return "no workers with branches"
    lines = [f"{data['workers']} worker(s), {data['without_commits']} without commits; {data['pairs']} pair(s): "
             f"{data['pairs_pruned']} disjoint, {data['pairs_merged']} dry-run merged, "
             f"{data['conflicting_pairs']} conflicting"]
    lines += [f"{p['a']} x {p['b']}: CONFLICT in {', '.join(p['files'])}" for p in data["conflicts"]]
    if data["conflicting_pairs"] > len(data["conflicts"]):
        lines.append(f"... {data['conflicting_pairs'] - len(data['conflicts'])} more conflicting pair(s)")
    lines += [f"{b['name']} -> {b['base']}: CONFLICT in {', '.join(b['files'])}" for b in data["conflicting_with_base"]]
    if not data["conflicts"] and not data["conflicting_with_base"]:
        lines.append("no conflicts")
    return "\n".join(lines)
