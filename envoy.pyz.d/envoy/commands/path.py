"""`envoy parallel path --worker X`: a worker's worktree path, bare, for
`cd "$(envoy parallel path --worker X)"`.

Inside `$(...)` stdout is a pipe, where every other verb prints JSON: this one
prints the path alone (JSON only with --json), and a refusal goes to stderr as
text, so a failed `cd` shows the reason instead of changing into nonsense."""
from __future__ import annotations

import argparse
from pathlib import Path

from envoy import output
from envoy.errors import EnvoyError
from envoy.worker import lookup
from envoy.worker.workspace import open_workspace


def run(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    output.set_mode(as_json, not as_json)
    ws = open_workspace()
    record = lookup.find(ws.state, args.worker)
    path = Path(record["path"])
    if record["state"] == "queued" or not path.is_dir():
        why = "it is queued: its worktree is made when it starts" if record["state"] == "queued" else \
            "its worktree is gone"
        raise EnvoyError("not_found", f"worker {record['name']} has no worktree at {path}: {why}",
                         f"envoy parallel status --worker {record['name']}")
    output.success({"name": record["name"], "path": str(path)}, lambda data: str(data["path"]))
    return 0
