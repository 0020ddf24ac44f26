"""The `worker-ended` hook: tells the orchestrating Claude Code session when the
workers it spawned have ended, without it polling.

Installed by `envoy init` as a PostToolUse hook on Bash, started only for a
`parallel spawn` or `parallel resume` (its `if` conditions: any other tool call
starts no process), with `asyncRewake`: Claude Code runs it in the background
and, when it exits 2, wakes the model with what it printed on stderr. It reads
the workers' names from the verb's JSON answer (the tool's stdout), waits for
their records to say they ended (a stat a second; the records are read again
only when their file changed), and tells how each one ended.
"""
from __future__ import annotations

import json
import os
import time

TYPE_CHECKING = False  # typing's import is paid by every hook process
if TYPE_CHECKING:
    from typing import Any

    from envoy.worker.record import Record
    from envoy.worker.store import State

ENDED = ("succeeded", "failed", "lost", "stopped")  # `stopped`: issue 20's state
POLL = 1.0  # seconds between looks at the records' directory
LIMIT = 7200.0  # seconds it waits at most (PARALLEL_TIMEOUT's default); init gives the hook a little more


def started_workers(tool_response: Any) -> list[str]:
    """The workers a spawn or resume started (and that had not ended when it returned),
    from its JSON answer: one document a line on the tool's stdout."""
    stdout = tool_response.get("stdout") if isinstance(tool_response, dict) else tool_response
    names: list[str] = []
    for line in stdout.splitlines() if isinstance(stdout, str) else []:
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        data = document.get("data") if isinstance(document, dict) else None
        if document.get("status") == "success" and isinstance(data, dict) and isinstance(data.get("name"), str) \
                and data.get("state") not in ENDED and data["name"] not in names:
            names.append(data["name"])
    return names


def one_shot_session(pid: int | None = None, depth: int = 6) -> bool:
    """Whether the Claude Code session that started this hook (the nearest ancestor that
    is a `claude` executable) is a one-shot `claude -p`: its prompt an argument or stdin
    text, not `--input-format stream-json`. Measured on 2.1.197 and 2.1.332: such a
    session runs an asyncRewake hook in the foreground, so waiting here would hold its
    spawn until the worker ends; and its turn is over for good by then. Its
    orchestrator uses `wait` instead."""
    pid = os.getppid() if pid is None else pid
    for _ in range(depth):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode("utf-8", "replace").split("\0")
            with open(f"/proc/{pid}/stat", "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])
            exe = os.readlink(f"/proc/{pid}/exe")
        except (OSError, ValueError, IndexError):
            return False
        names = [os.path.basename(a) for a in (*argv[:2], exe)]
        if any(n.startswith("claude") or n == "cli.js" and "claude-code" in " ".join(argv[:2]) for n in names):
            streamed = "--input-format=stream-json" in argv or any(
                a == "--input-format" and b == "stream-json" for a, b in zip(argv, argv[1:]))
            return ("-p" in argv or "--print" in argv) and not streamed
        if parent <= 1:
            return False
        pid = parent
    return False


def wait_for(state: State, names: list[str], limit: float = LIMIT) -> dict[str, Record | None]:
    """The records of `names` once every one has ended (None: removed meanwhile), or
    as they are when `limit` passes."""
    deadline = time.monotonic() + limit
    records: dict[str, Record | None] = {}
    stamp = None
    while True:
        try:
            now = os.stat(state.workers).st_mtime_ns
        except FileNotFoundError:
            now = None
        if now != stamp or not records:
            stamp = now
            for name in names:
                try:
                    records[name] = state.read(name)
                except Exception:  # a broken record: nothing more to learn of it here
                    records[name] = None
        if all(r is None or r.get("state") in ENDED for r in records.values()) or time.monotonic() > deadline:
            return records
        time.sleep(POLL)


def describe(state: State, name: str, record: Record | None) -> str:
    if record is None:
        return f"worker {name} was removed"
    if record.get("state") not in ENDED:
        return f"worker {name} is still {record.get('state')} (envoy parallel wait --worker {name})"
    parts = [f"worker {name} ended: {record.get('state')}" + (f" ({record['reason']})" if record.get("reason") else "")]
    commits = commit_count(state, record)
    if commits is not None:
        parts.append(f"{commits} commit(s)")
    if record.get("cost_usd"):
        parts.append(f"${float(record.get('cost_usd') or 0):.4f}")
    attention = record.get("attention") or []  # issue 16's field; absent on a clean end
    if isinstance(attention, list) and attention:
        parts.append("needs attention: " + "; ".join(str(a) for a in attention[:5]))
    return ", ".join(parts) + f". Next: envoy parallel results --worker {name}"


def commit_count(state: State, record: Record) -> int | None:
    left = record.get("left")
    counted = left.get("commits") if isinstance(left, dict) else None
    if isinstance(counted, int) and not isinstance(counted, bool):
        return counted
    base = record.get("base_sha")
    if not base:
        return None
    try:
        from envoy.git import Git

        git = Git(state.root.parent, state.root.parent)
        tip = git.branch_tip(record["branch"])
        return git.commit_count(base, tip) if tip else None
    except Exception:
        return None


def message(state: State, names: list[str], limit: float = LIMIT) -> str:
    records = wait_for(state, names, limit)
    return "envoy: " + "\n".join(describe(state, name, records[name]) for name in names)
