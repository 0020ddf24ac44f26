"""Is this process inside a worker? Workers do not start workers.

The environment says so (ENVOY_WORKER, PARALLEL_WORKER_DEPTH, set by the
supervisor), but an agent can unset it (`env -u ENVOY_WORKER ...`, `env -i`).
So the place says so too, whatever the environment: a checkout that an envoy
record names as a worker's worktree is a worker's. And so does the process's
ancestry, whatever the environment and the place (`cd` to the main checkout):
an ancestor that started with ENVOY_WORKER in its environment (/proc/<pid>/environ
is what it started with: a descendant cannot change it), or that holds a
worker's lock (the supervisor, its watcher) makes this a worker's process. Used by spawn and
resume, and by the enforce-limits hook: both apply this one rule. Read from
files, no git process (the hook is on the hot path).
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
    return worker_checkout(cwd) or worker_ancestor()


MAX_ANCESTORS = 256  # a loop guard: real process trees are a few dozen deep


def worker_ancestor(pid: int | None = None) -> str | None:
    """The envoy worker one of `pid`'s ancestors (default: this process's) belongs to,
    by /proc: one started with ENVOY_WORKER in its environment (an agent, and everything
    it started before a child scrubbed its environment), or one holding a worker's lock
    (its supervisor and watcher, which adopt orphans as subreapers). None when no
    ancestor is, or without /proc (not Linux: the environment and the place decide)."""
    current = os.getppid() if pid is None else _parent(pid)
    for _ in range(MAX_ANCESTORS):
        if current is None or current <= 1:
            return None
        name = _started_as_worker(current) or _holds_worker_lock(current)
        if name:
            return f"{name} (an ancestor process, pid {current})"
        current = _parent(current)
    return None


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _started_as_worker(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:  # gone, or not ours to read (another user's: not an envoy worker of ours)
        return None
    for item in environ.split(b"\0"):
        if item.startswith(b"ENVOY_WORKER=") and len(item) > len(b"ENVOY_WORKER="):
            return item[len(b"ENVOY_WORKER="):].decode("utf-8", "replace")
    return None


def _holds_worker_lock(pid: int) -> str | None:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        directory, _, file = target.rpartition("/")
        if directory.endswith("/envoy/locks") and file.startswith("worker-") and file.endswith(".lock"):
            return file[len("worker-"):-len(".lock")]
    return None


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
    try:
        records = State(common).all()
    except Exception:  # envoy's state unusable (a symlink planted there): the ancestry still decides
        return None
    for record in records:
        path = record.get("path") if isinstance(record, dict) else None
        if isinstance(path, str) and path and os.path.realpath(path) == here:
            return str(record.get("name") or path)
    return None
