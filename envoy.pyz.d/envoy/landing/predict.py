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


def footprints(git: Git, records: list[Record], tips: dict[str, str]) -> dict[str, tuple[set[str], set[str]]]:
    """Per worker with commits, what its branch changes since its base: (files, the
    directories above them). Workers whose tip is still their base have no commits:
    they are left out (merging them changes nothing)."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for r in records:
        tip, base = tips.get(r["name"]), r.get("base_sha")
        if tip is None or not base or tip == base:
            continue
        found[r["name"]] = footprint_of(git, base, tip)
    return found


def footprint_of(git: Git, base: str, tip: str) -> tuple[set[str], set[str]]:
    """(the files a diff from `base` to `tip` changes, the directories above them)."""
    files = set(git.changed_files(base, tip))
    return files, {f.rsplit("/", i)[0] for f in files for i in range(1, f.count("/") + 1)}


def may_collide(a: tuple[set[str], set[str]], b: tuple[set[str], set[str]]) -> bool:
    """Whether two branches from one base can conflict: only where both change a path,
    or one changes a file where the other makes a directory (x and x/y)."""
    return bool(a[0] & b[0] or a[0] & b[1] or a[1] & b[0])


def pairwise_pruned(git: Git, records: list[Record], tips: dict[str, str],
                    changes: dict[str, tuple[set[str], set[str]]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The dry-run merges of the pairs of workers with commits that can conflict: pairs
    from the same base whose changed files are disjoint are clean without a merge.
    (every pair merged, with its verdict; counts: pairs, merged, pruned)."""
    with_commits = [r for r in records if r["name"] in changes]
    pairs: list[dict[str, Any]] = []
    pruned = 0
    for a, b in combinations(with_commits, 2):
        if a.get("base_sha") == b.get("base_sha") and not may_collide(changes[a["name"]], changes[b["name"]]):
            pruned += 1
            continue
        _, files = git.merge_tree(tips[a["name"]], tips[b["name"]])
        pairs.append({"a": a["name"], "b": b["name"], "conflict": bool(files), "files": files})
    return pairs, {"pairs": len(with_commits) * (len(with_commits) - 1) // 2, "merged": len(pairs), "pruned": pruned}
