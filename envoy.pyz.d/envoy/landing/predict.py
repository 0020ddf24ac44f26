"""Predicting conflicts without merging anything: dry-run merges (`git merge-tree
--write-tree`) of workers' branch tips with each other and with a target. `conflicts`
shows them; `land` orders its queue by them."""
from __future__ import annotations

from itertools import combinations
from typing import Any

from envoy.git import Git
from envoy.worker.record import Record


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
