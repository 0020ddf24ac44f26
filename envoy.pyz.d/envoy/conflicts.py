"""`envoy parallel conflicts`: which workers collide before anyone merges.

For every pair of workers, and for each worker against its base, a dry-run
merge of the current branch tips with `git merge-tree --write-tree`: no
checkout, no worktree touched, fast."""
from __future__ import annotations

import argparse
from itertools import combinations
from typing import Any

from . import output, workers
from .workspace import open_workspace


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    git = ws.git
    # Each tip is resolved once, to a commit: a branch that a cleanup deletes meanwhile
    # leaves its commits, and the answer is about the tips this call saw.
    started = [r for r in workers.all_refreshed(ws.state) if r["state"] != "queued"]
    found = {r["name"]: git.branch_tip(r["branch"]) for r in started}
    tips = {name: tip for name, tip in found.items() if tip is not None}
    candidates = [r for r in started if r["name"] in tips]
    pairs = []
    for a, b in combinations(candidates, 2):
        _, files = git.merge_tree(tips[a["name"]], tips[b["name"]])
        pairs.append({"a": a["name"], "b": b["name"], "conflict": bool(files), "files": files})
    bases = []
    for r in candidates:
        base = (git.branch_tip(r["base"]) if r.get("base") else None) or r["base_sha"]
        _, files = git.merge_tree(base, tips[r["name"]])
        bases.append({"name": r["name"], "base": r["base"], "clean": not files, "files": files})
    data = {"pairs": pairs, "into_base": bases,
            "conflicting_pairs": sum(p["conflict"] for p in pairs)}
    output.success(data, render)
    return 0


def render(data: dict[str, Any]) -> str:
    if not data["into_base"]:
        return "no workers with branches"
    lines = [f"{p['a']} x {p['b']}: " + (f"CONFLICT in {', '.join(p['files'])}" if p["conflict"] else "clean")
             for p in data["pairs"]]
    lines += [f"{b['name']} -> {b['base']}: " + ("merges cleanly" if b["clean"] else f"CONFLICT in {', '.join(b['files'])}")
              for b in data["into_base"]]
    return "\n".join(lines)
