"""`envoy hook <name>`: Claude Code hooks, on the hot path of every tool call.

Each hook is a pure function `(payload, environ) -> Decision` that tests call
directly; `main` only reads stdin once and prints the decision. A decision to
block is always JSON on stdout with exit 0, never an exit code: the command
`envoy init` installs turns every other exit (python3 missing, envoy.pyz
unreadable, an interpreter too old, a crash) into a non-blocking one, so only
envoy's own decision can stop a tool call. A hook never wedges a session: bad
input, a missing field, a repository without envoy state, or a bug all end in
exit 0 (fail open) with a line in envoy.log.
Imports are deferred to the branch that needs them: most calls are neither
a spawn nor a skill file, and must cost little more than Python's startup.
"""
from __future__ import annotations

import json
import os
import sys

TYPE_CHECKING = False  # typing's import would be paid on every tool call
if TYPE_CHECKING:
    from typing import Any, Mapping, NamedTuple

    class Decision(NamedTuple):
        exit_code: int = 0
        stdout: str = ""
        stderr: str = ""
else:
    from collections import namedtuple

    Decision = namedtuple("Decision", "exit_code stdout stderr", defaults=(0, "", ""))


ALLOW = Decision()


def validate_skill(payload: dict[str, Any], environ: Mapping[str, str]) -> Decision:
    """PostToolUse on Write|Edit|MultiEdit: block a bad SKILL.md, agent or command (the
    tool has run; the block feeds the problems back to Claude, which repairs the file)."""
    tool_input = payload.get("tool_input")
    path = tool_input.get("file_path") if isinstance(tool_input, dict) else None
    if not isinstance(path, str) or not path.endswith(".md"):
        return ALLOW
    from envoy.hooks import validate_skill

    if validate_skill.kind_of(path) is None:
        return ALLOW
    full = os.path.join(str(payload.get("cwd") or environ.get("CLAUDE_PROJECT_DIR") or "."), path)
    problems = validate_skill.file_problems(path, full)
    if not problems:
        return ALLOW
    lines = [f"{path} has {len(problems)} problem(s); Claude Code would load it silently broken:"]
    lines += [f"- {problem}" for problem in problems]
    return Decision(0, json.dumps({"decision": "block", "reason": "\n".join(lines)}))


def enforce_limits(payload: dict[str, Any], environ: Mapping[str, str]) -> Decision:
    """PreToolUse on Bash: deny `envoy parallel spawn` inside a worker or at the cap."""
    tool_input = payload.get("tool_input")
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    if not isinstance(command, str) or "spawn" not in command:
        return ALLOW
    from envoy.hooks import enforce_limits

    spawns = enforce_limits.spawn_invocations(command)
    if not spawns:
        return ALLOW
    reason = enforce_limits.refusal(spawns, str(payload.get("cwd") or environ.get("CLAUDE_PROJECT_DIR") or "."), environ)
    if reason is None:
        return ALLOW
    return Decision(0, json.dumps({"hookSpecificOutput": {
        "hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": reason}}))


WAKE = 2  # Claude Code wakes the model with the stderr of an asyncRewake hook that exits 2


def worker_ended(payload: dict[str, Any], environ: Mapping[str, str]) -> Decision:
    """PostToolUse on Bash, async (asyncRewake): once the workers a spawn or resume
    started have ended, wake the session and tell it how each ended."""
    from envoy.hooks import worker_ended as ended

    names = ended.started_workers(payload.get("tool_response"))
    if not names or ended.one_shot_session():
        return ALLOW
    from envoy.gitdir import find_common_dir
    from envoy.worker.store import State

    common = find_common_dir(str(payload.get("cwd") or environ.get("CLAUDE_PROJECT_DIR") or "."))
    if common is None:
        return ALLOW
    return Decision(WAKE, "", ended.message(State(common), names) + "\n")


HOOKS = {"validate-skill": validate_skill, "enforce-limits": enforce_limits, "worker-ended": worker_ended}


def main(name: str, stdin: Any = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    data = (stdin or sys.stdin.buffer).read()
    # bytes, decoded here: the text layer's decoding may be strict (PYTHONIOENCODING, a C locale)
    raw = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    payload: Any = None
    try:
        payload = json.loads(raw) if raw.strip() else None
        if not isinstance(payload, dict):
            log(f"hook {name}: stdin is not a JSON object ({raw[:80]!r}); allowed", None, environ)
            return 0
        decision = HOOKS[name](payload, environ)
    except Exception as exc:  # fail open: a broken hook must not stop the session
        log(f"hook {name}: {type(exc).__name__}: {exc}; allowed", payload, environ)
        return 0
    # UTF-8 whatever the locale says: Claude Code reads UTF-8, and an ASCII stdout would fail on a name
    if decision.stdout:
        sys.stdout.buffer.write((decision.stdout + "\n").encode("utf-8", "replace"))
    if decision.stderr:
        sys.stderr.buffer.write(decision.stderr.encode("utf-8", "replace"))
    return decision.exit_code


def log(message: str, payload: Any, environ: Mapping[str, str]) -> None:
    """A line in <git common dir>/envoy/envoy.log, if a repository can be found."""
    try:
        from envoy.gitdir import find_common_dir
        from envoy.worker.store import State

        start = (payload or {}).get("cwd") if isinstance(payload, dict) else None
        common = find_common_dir(str(start or environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()))
        if common is not None:
            State(common).log(message)
    except Exception:
        pass


def run(args: Any) -> int:
    return main(args.name)
