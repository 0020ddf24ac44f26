"""Is this process inside a worker? Workers do not start workers.

The environment says so (ENVOY_WORKER, PARALLEL_WORKER_DEPTH, set by the
supervisor), but an agent can unset it (`env -u ENVOY_WORKER ...`). So the
place says so too, whatever the environment: a checkout that an envoy record
names as a worker's worktree is a worker's. Used by spawn and resume, and by
the enforce-limits hook: both apply this one rule. Read from files, no git
process (the hook is on the hot path).
"""
from __future__ import annotations

import os

TYPE_CHECKING = False  # typing's import would be paid on every hook call
if TYPE_CHECKING:
    from typing import Mapping


def worker_here(cwd: str, environ: Mapping[str, str]) -> str | None:
    """Which worker a process in `cwd` with `environ` runs in (its name, or how we
    know), or None when it is not in one."""
    if environ.get("ENVOY_WORKER"):
        return environ["ENVOY_WORKER"]
    if environ.get("PARALLEL_WORKER_DEPTH", "0") not in ("", "0"):
        return "PARALLEL_WORKER_DEPTH set"
    return worker_checkout(cwd)


def worker_checkout(cwd: str) -> str | None:
    """The worker whose worktree contains `cwd`, by the records, or None."""
    from envoy.gitdir import find_common_dir, toplevel_of

    top = toplevel_of(cwd)
    if top is None or not os.path.isfile(top / ".git"):
        return None  # the main checkout (a directory .git) is never a worker's
    common = find_common_dir(str(top))
    if common is None:
        return None
    from envoy.worker.store import State

    here = os.path.realpath(top)
    for record in State(common).all():
        path = record.get("path") if isinstance(record, dict) else None
        if isinstance(path, str) and path and os.path.realpath(path) == here:
            return str(record.get("name") or path)
    return None
