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
    candidates = [r for r in workers.all_refreshed(ws.state)
                  if r["state"] != "queued" and git.ref_exists(f"refs/heads/{r['branch']}")]
    pairs = pairwise(git, candidates)
    bases = []
    for r in candidates:
        base = r["base"] if r.get("base") and git.branch_exists(r["base"]) else r["base_sha"]
        files = into(git, r, base)
        bases.append({"name": r["name"], "base": r["base"], "clean": not files, "files": files})
    data = {"pairs": pairs, "into_base": bases,
            "conflicting_pairs": sum(p["conflict"] for p in pairs)}
    output.success(data, render)
    return 0


def pairwise(git: Git, records: list[Record]) -> list[dict[str, Any]]:
    """A dry-run merge of every pair of the workers' branch tips."""
    pairs = []
    for a, b in combinations(records, 2):
        _, files = git.merge_tree(f"refs/heads/{a['branch']}", f"refs/heads/{b['branch']}")
        pairs.append({"a": a["name"], "b": b["name"], "conflict": bool(files), "files": files})
    return pairs


def into(git: Git, record: Record, target: str) -> list[str]:
    """The files a merge of the worker's branch into `target` would conflict in."""
    return git.merge_tree(target, f"refs/heads/{record['branch']}")[1]


def render(data: dict[str, Any]) -> str:
    if not data["into_base"]:
        return "no workers with branches"
    lines = [f"{p['a']} x {p['b']}: " + (f"CONFLICT in {', '.join(p['files'])}" if p["conflict"] else "clean")
             for p in data["pairs"]]
    lines += [f"{b['name']} -> {b['base']}: " + ("merges cleanly" if b["clean"] else f"CONFLICT in {', '.join(b['files'])}")
              for b in data["into_base"]]
    return "\n".join(lines)
