"""`envoy parallel diff`: a worker's commits and full diff against its base,
plus what it has not committed."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from envoy import output
from envoy.errors import EnvoyError
from envoy.git import GitError
from envoy.worker import lookup, worktree
from envoy.worker.record import Record
from envoy.worker.workspace import open_workspace


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    record = lookup.find(ws.state, args.worker)
    # Resolved once, to a commit: the branch may move or go (a cleanup) while this runs,
    # and the commits and the diff must describe the same tip.
    base = record.get("base_sha")  # None: it never started (queued, or its dependency failed)
    tip = ws.git.branch_tip(record["branch"]) if record["state"] != "queued" and base else None
    if tip is None or base is None:
        raise gone(record)
    stat = ["--stat"] if args.stat else []
    commits = ws.git.commits(base, tip)
    data: dict[str, Any] = {
        "name": record["name"], "branch": record["branch"], "base": record["base"], "base_sha": record["base_sha"],
        "commits": [{"sha": c["sha"][:12], "subject": c["subject"]} for c in commits],
        "diff": ws.git.diff(*stat, base, tip, "--"),
    }
    omitted = ws.git.commit_count(base, tip) - len(commits)
    if omitted > 0:
        data["commits_omitted"] = omitted  # the oldest ones: the listing has a limit
    path = Path(record["path"])
    if path.is_dir():
        try:
            data["uncommitted_diff"] = ws.git.diff(*stat, "HEAD", "--", cwd=path)
            tracked_changes = set(ws.git.diff("--name-only", "HEAD", "--", cwd=path).split("\n"))
            data["untracked"] = [p for p in worktree.uncommitted(ws.git, record) if p not in tracked_changes]
        except GitError:
            if path.is_dir():
                raise
            # Removed meanwhile (a cleanup): no worktree, so nothing uncommitted to show.
            for key in ("uncommitted_diff", "untracked"):
                data.pop(key, None)
    output.success(data, render)
    return 0


def gone(record: Record) -> EnvoyError:
    return EnvoyError("not_found", f"worker {record['name']} has no branch yet" if record["state"] == "queued"
                      else f"branch {record['branch']} of {record['name']} no longer exists",
                      "envoy parallel status shows its state")


def render(data: dict[str, Any]) -> str:
    lines = [f"worker {data['name']}: {data['branch']} against {data['base']} ({data['base_sha'][:12]})"]
    lines += [f"commit {c['sha']} {c['subject']}" for c in data["commits"]] or ["no commits"]
    if data.get("commits_omitted"):
        lines.append(f"... and {data['commits_omitted']} more commits")
    if data["diff"]:
        lines += ["", data["diff"].rstrip("\n")]
    if data.get("uncommitted_diff") or data.get("untracked"):
        lines += ["", "uncommitted changes in the worktree:"]
        if data.get("uncommitted_diff"):
            lines.append(data["uncommitted_diff"].rstrip("\n"))
        lines += [f"?? {p}" for p in data.get("untracked", [])]
    return "\n".join(lines)
