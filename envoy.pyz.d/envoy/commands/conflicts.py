"""`envoy parallel conflicts`: which workers collide before anyone merges.

For every pair of workers, and for each worker against its base, a dry-run
merge of the current branch tips with `git merge-tree --write-tree`: no
checkout, no worktree touched, fast."""
from __future__ import annotations

import argparse
from typing import Any

from envoy import output
from envoy.landing import predict
from envoy.worker import lookup
from envoy.worker.workspace import open_workspace


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    git = ws.git
    # Each tip is resolved once, to a commit: a branch that a cleanup deletes meanwhile
    # leaves its commits, and the answer is about the tips this call saw.
    started = [r for r in lookup.all_refreshed(ws.state) if r["state"] != "queued" and r.get("base_sha")]
    tips = predict.tips_of(git, started)
    candidates = [r for r in started if r["name"] in tips]
    pairs = predict.pairwise(git, candidates, tips)
    bases = []
    for r in candidates:
        named = r.get("base")
        base = (git.branch_tip(named) if named else None) or str(r["base_sha"])
        files = predict.into(git, tips[r["name"]], base)
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
