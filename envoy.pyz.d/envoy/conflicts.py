"""`envoy parallel conflicts`: which workers collide before anyone merges.

For every pair of workers, and for each worker against its base, a dry-run
merge of the current branch tips with `git merge-tree --write-tree`: no
checkout, no worktree touched, fast."""
from __future__ import annotations

import argparse
from itertools import combinations
from typing import Any

from . import output, workers
from .git import Git
from .state import Record
from .workspace import open_workspace


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    git = ws.git
    # Each tip is resolved once, to a commit: a branch that a cleanup deletes meanwhile
    # leaves its commits, and the answer is about the tips this call saw.
    started = [r for r in workers.all_refreshed(ws.state) if r["state"] != "queued"]
    tips = tips_of(git, started)
    candidates = [r for r in started if r["name"] in tips]
    pairs = pairwise(git, candidates, tips)
    bases = []
    for r in candidates:
        base = (git.branch_tip(r["base"]) if r.get("base") else None) or r["base_sha"]
        files = into(git, tips[r["name"]], base)
        bases.append({"name": r["name"], "base": r["base"], "clean": not files, "files": files})
    data = {"pairs": pairs, "into_base": bases,
            "conflicting_pairs": sum(p["conflict"] for p in pairs)}
    output.success(data, render)
    return 0


def tips_of(git: Git, records: list[Record]) -> dict[str, str]:
    """Each worker's branch tip by name, looked up once (workers without a branch left out)."""
    found = {r["name"]: git.branch_tip(r["branch"]) for r in records}
    return {name: tip for name, tip in found.items() if tip is not None}


def pairwise(git: Git, records: list[Record], tips: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A dry-run merge of every pair of the workers' branch tips."""
    tips = tips_of(git, records) if tips is None else tips
    pairs = []
    for a, b in combinations([r for r in records if r["name"] in tips], 2):
        _, files = git.merge_tree(tips[a["name"]], tips[b["name"]])
        pairs.append({"a": a["name"], "b": b["name"], "conflict": bool(files), "files": files})
    return pairs


def into(git: Git, tip: str, target: str) -> list[str]:
    """The files a merge of commit `tip` into `target` would conflict in."""
    return git.merge_tree(target, tip)[1]


def render(data: dict[str, Any]) -> str:
    if not data["into_base"]:
        return "no workers with branches"
    lines = [f"{p['a']} x {p['b']}: " + (f"CONFLICT in {', '.join(p['files'])}" if p["conflict"] else "clean")
             for p in data["pairs"]]
    lines += [f"{b['name']} -> {b['base']}: " + ("merges cleanly" if b["clean"] else f"CONFLICT in {', '.join(b['files'])}")
              for b in data["into_base"]]
    return "\n".join(lines)
