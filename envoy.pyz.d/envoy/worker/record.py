"""A worker's record: its fields, its states, and what each field read from disk
may hold. Records on disk are untrusted (edited by hand, by a tool, by a bug):
every field envoy reads is checked here, once, when store.py reads the record."""
from __future__ import annotations

import math
import os
import re
import time
from datetime import datetime, timezone

TYPE_CHECKING = False  # typing's TypedDict is for mypy only: the watcher beside every agent loads this module
if TYPE_CHECKING:
    from typing import Any, Literal, TypedDict

    StateName = Literal["queued", "starting", "running", "succeeded", "failed", "lost", "stopped"]

    class Options(TypedDict, total=False):
        """How the agent runs: claude's flags, and envoy's own limits."""
        permission_mode: str | None
        allowed_tools: list[str]
        model: str | None
        max_turns: int | None
        budget_usd: float | None
        timeout_s: float | None
        setup: str | None
        on_end: str | None  # PARALLEL_ON_END / spawn --on-end: a shell command run once when it ends
        notify: bool  # a desktop notification when it ends (worker/on_end.py)

    class Run(TypedDict, total=False):
        """One run of the agent (the first, and each resume), in `runs`."""
        run: int
        state: StateName
        reason: str | None
        session_id: str | None
        exit_code: int | None
        cost_usd: float | None
        num_turns: int | None
        started_at: str | None
        finished_at: str | None
        duration_s: float | None

    class Record(TypedDict, total=False):
        """A worker, as .git/envoy/workers/<name>.json holds it. Every field envoy
        writes is here, so mypy checks each use; `problem_with` checks what is read."""
        # who it is
        name: str
        branch: str
        base: str | None  # as the user named it; None until an --after worker starts
        base_sha: str | None
        path: str  # its worktree
        repo: str  # the main checkout
        session_id: str
        agent: str  # the claude executable
        options: Options
        after: list[str]  # workers it waits for
        touches: list[str]  # globs of the paths it declared it changes (footprint.py)
        max_workers: int  # the cap when it was spawned
        task_chars: int
        task: str  # only while spawn builds it: the task lives in logs/<name>/<run>.task
        warnings: list[str]  # said at spawn: what it will not see of a dirty checkout
        # its state: changed only through `transition`
        state: StateName
        reason: str | None
        error: str | None
        queued_seq: int
        seq: int
        created_at: str
        started_at: str | None
        finished_at: str | None
        duration_s: float | None
        # the current run
        run: int
        run_id: str  # ENVOY_RUN_ID of its processes
        slot: int
        port: int
        supervisor_pid: int
        agent_pid: int
        exit_code: int | None
        result: str | None
        runs: list[Run]
        # what the last run left (worker/left.py): counts, and the reasons a person must look
        left: dict[str, int | bool | None] | None
        attention: list[str] | None  # empty or absent: a clean end
        cost_usd: float
        num_turns: int
        # its worktree
        checking_out: bool  # a checkout under way (or cut short)
        worktree_created: bool
        copied: list[str]  # untracked files copied in (.env, envoy.pyz, .worktreeinclude)
        # merged by `merge` or `land`, and kept by `cleanup`
        merged_into: str
        merged_sha: str
        merged_commit: str
        merged_at: str
        trash: dict[str, str]
        # where it runs (executors/): absent = this machine
        executor: str  # "local" or "ray"
        node: str | None  # the cluster node its job ran on
        cluster: str  # the Ray dashboard's URL
        remote_url: str  # the git remote the node fetches from and pushes to
        job_id: str  # the Ray job's submission id
        job_status: str  # as the cluster last said (PENDING, RUNNING, ...)
        resumes_run: int  # the run whose session a resumed run continues (the one before, unless cancelled)
        job_commit: str  # the commit its job ref was pushed at: a pending run is cancelled by deleting the ref
        submitted_at: str
        stop_requested: bool
        wip_ref: str  # uncommitted work the node kept, fetched here
        cluster_error: dict[str, str]  # shown, never written: the cluster could not be asked
        last_action: str | None  # a running remote worker's last action, from its job's log (ray_watch.py)
        last_action_at: str | None  # when the watcher first saw it
        stand_in: bool  # cleanup's stand-in for a broken record: never written
else:
    Record = dict

ACTIVE = ("starting", "running")
FINISHED = ("succeeded", "failed", "lost", "stopped")
STATES = ("queued", *ACTIVE, *FINISHED)

# The worker's state machine: from each state (None: a worker being made), the states
# it may go to. `transition` is the only place a record's state changes.
TRANSITIONS: dict[str | None, tuple[str, ...]] = {
    None: ("queued", "starting"),               # spawn (--queue, --after), or spawn at once
    "queued": ("starting", "failed", "stopped"),  # the queue starts it; or it can never start; or `stop`
    "starting": ("starting", "running", "failed", "lost", "stopped"),  # its supervisor holds its slot; a start failed
    "running": ("succeeded", "failed", "lost", "stopped"),  # the run ended; or its supervisor vanished
    "succeeded": ("starting",),                 # resume (and land --repair)
    "failed": ("starting",),
    "lost": ("starting",),
    "stopped": ("starting",),                   # `stop` (or the budget) ended it: resume, or cleanup
}


class TransitionError(Exception):
    """A change of state the state machine does not allow: a bug, never a user's mistake."""


def transition(record: Record, to: StateName, changes: Record | None = None) -> Record:
    """Move `record` to state `to`, with `changes` to its other fields, in place (the
    caller writes it). Refuses a transition TRANSITIONS does not allow."""
    now = record.get("state")
    if to not in TRANSITIONS.get(now, ()):
        raise TransitionError(f"worker {record.get('name')}: {now} -> {to} is not a change its state can make")
    if changes:
        if "state" in changes:
            raise TransitionError("the state changes through `to`, not among the other changes")
        record.update(changes)
    record["state"] = to
    return record


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(stamp: str | None) -> float | None:
    if not stamp:
        return None
    # fromisoformat, not strptime: _strptime costs 4 ms to import, on every status and finish
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def worker_name(branch: str) -> str:
    """A branch made safe as a file and directory name: quick/hook-fix -> quick-hook-fix."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", branch)
    name = re.sub(r"-{2,}", "-", name)
    return name.strip("-.")


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def is_worker_name(name: object) -> bool:
    """What worker_name makes: one plain path component, never '.', '..' or an option."""
    return isinstance(name, str) and bool(_NAME.fullmatch(name)) and worker_name(name) == name


def elapsed(record: Record) -> float | None:
    """Seconds the current run took (or has taken so far)."""
    start = parse_iso(record.get("started_at"))
    if start is None:
        return None
    end = parse_iso(record.get("finished_at")) or time.time()
    return round(max(0.0, end - start), 1)


MAX_ACTION = 240  # characters of a last action kept (the text is cut to 200 where it is read)

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_git_word(value: object) -> bool:
    """A branch as git allows it: never empty, never an option, no control characters,
    space or '..' (any other character may be in one, unassigned ones too)."""
    return (isinstance(value, str) and bool(value) and not value.startswith("-") and _no_controls(value)
            and " " not in value and ".." not in value)


def _no_controls(text: str) -> bool:
    return not any(ord(c) < 32 or c == "\x7f" for c in text)


_OPTIONAL: dict[str, Any] = {  # field -> test of its value when present and not null
    **dict.fromkeys(("run", "num_turns", "queued_seq", "seq", "port", "supervisor_pid", "agent_pid", "exit_code",
                     "slot", "task_chars", "resumes_run"), _is_int),
    **dict.fromkeys(("cost_usd", "duration_s"), _is_number),
    "max_workers": lambda v: _is_int(v) and v >= 1,
    **dict.fromkeys(("reason", "error", "result", "session_id", "agent", "repo"), lambda v: isinstance(v, str)),
    **dict.fromkeys(("worktree_created", "checking_out"), lambda v: isinstance(v, bool)),
    **dict.fromkeys(("base_sha", "merged_sha", "merged_commit", "job_commit"), lambda v: isinstance(v, str) and bool(_SHA.fullmatch(v))),
    "merged_into": _is_git_word,
    "base": lambda v: isinstance(v, str) and bool(v) and not v.startswith("-") and _no_controls(v),  # ':/a b' is one
    "run_id": lambda v: isinstance(v, str) and v.isalnum(),  # matched against processes' environments
    "options": lambda v: isinstance(v, dict) and _options_ok(v),
    "copied": lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
    "after": lambda v: isinstance(v, list) and all(is_worker_name(n) for n in v),
    "touches": lambda v: isinstance(v, list) and all(isinstance(g, str) and _no_controls(g) and g for g in v),
    "runs": lambda v: isinstance(v, list) and all(isinstance(r, dict) and _run_ok(r) for r in v),
    "attention": lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v),
    "left": lambda v: isinstance(v, dict) and all(isinstance(n, (int, bool)) or n is None for n in v.values()),
    "executor": lambda v: v in ("local", "ray"),
    **dict.fromkeys(("node", "job_id", "job_status"), lambda v: isinstance(v, str) and _no_controls(v)),
    "cluster": lambda v: isinstance(v, str) and v.startswith(("http://", "https://")) and _no_controls(v) and "@" not in v,
    "remote_url": lambda v: isinstance(v, str) and bool(v) and not v.startswith("-") and _no_controls(v),
    "stop_requested": lambda v: isinstance(v, bool),
    "last_action": lambda v: isinstance(v, str) and len(v) <= MAX_ACTION and v.isprintable(),
    "wip_ref": lambda v: isinstance(v, str) and v.startswith("refs/envoy/wip/") and _is_git_word(v),
    "trash": lambda v: (isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("trash_ref", "sha", "restore"))
                        and v["trash_ref"].startswith("refs/envoy/trash/")),  # cleanup reports it again
}


def _options_ok(options: dict[str, Any]) -> bool:
    """The run options the supervisor hands to the agent's command line."""
    numbers = all(options.get(k) is None or _is_number(options[k]) for k in ("timeout_s", "budget_usd", "max_turns"))
    texts = all(options.get(k) is None or isinstance(options[k], str)
                for k in ("setup", "model", "permission_mode", "on_end"))
    tools = options.get("allowed_tools") or []
    switches = options.get("notify") is None or isinstance(options["notify"], bool)
    return numbers and texts and switches and isinstance(tools, list) and all(isinstance(t, str) for t in tools)


def _run_ok(run: dict[str, Any]) -> bool:
    return all(run.get(k) is None or _is_number(run[k]) for k in ("run", "cost_usd", "num_turns", "duration_s"))


def _time_ok(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_iso(value)
    except ValueError:
        return False
    return True


def problem_with(data: Any, stem: str) -> str | None:
    """What makes `data`, read from workers/<stem>.json, not a worker record (None: it
    is one). Every field envoy reads is checked here, once: a name or path from a
    record is used as a file name, a branch or base is handed to git."""
    if not isinstance(data, dict):
        return f"not a record (JSON {type(data).__name__})"
    name, branch, path = data.get("name"), data.get("branch"), data.get("path")
    if name != stem or not is_worker_name(name):
        return f"its name {name!r} is not the worker name of its file ({stem!r})"
    if not isinstance(branch, str) or not _is_git_word(branch) or worker_name(branch) != name:
        return f"its branch {branch!r} is not a branch of worker {name}"
    if data.get("state") not in STATES:
        return f"its state {data.get('state')!r} is not one of {', '.join(STATES)}"
    if (not isinstance(path, str) or not os.path.isabs(path) or os.path.normpath(path) != path
            or not os.path.basename(path).endswith(name)):
        return f"its path {path!r} is not a worktree path of worker {name}"
    for key, ok in _OPTIONAL.items():
        value = data.get(key)
        if value is not None and not ok(value):
            return f"its {key} {str(value)[:60]!r} is not valid"
    for key in ("created_at", "started_at", "finished_at", "merged_at", "submitted_at", "last_action_at"):
        if data.get(key) is not None and not _time_ok(data[key]):
            return f"its {key} {str(data[key])[:60]!r} is not a time"
    return None
