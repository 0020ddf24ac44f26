"""The agent side: the `claude` command line envoy builds, starting it, and
reading the stream-json log it writes (final result, denials, a transcript)."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from envoy import files, processes
from envoy.errors import EnvoyError

TYPE_CHECKING = False  # typing and shutil are not loaded at run time: the finisher beside every agent imports this
if TYPE_CHECKING:
    from typing import Any, Iterator

    import subprocess


# What a worker needs to commit on its own branch, whatever the project allows.
GIT_RULES = [f"Bash(git {verb}:*)" for verb in
             ("add", "commit", "status", "diff", "log", "show", "rm", "mv", "restore")]


def new_session_id() -> str:
    """A random (version 4) UUID for claude --session-id, without the uuid module's
    import (3 ms of every spawn)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def find(executable: str) -> str:
    """The agent's path, or a clear `agent_missing` error before anything is created."""
    import shutil

    path = shutil.which(executable)
    if path is None:
        source = "ENVOY_CLAUDE" if executable != "claude" else "claude"
        raise EnvoyError(
            "agent_missing",
            f"cannot find the agent executable {executable!r} ({source}) on PATH",
            "install Claude Code (npm install -g @anthropic-ai/claude-code) or set ENVOY_CLAUDE to its path",
        )
    return os.path.abspath(path)


# Inherited from a calling Claude Code session, these would make an agent think it
# is nested inside that session.
PARENT_SESSION_VARS = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_SSE_PORT")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PARENT_SESSION_VARS}
    env.update(extra)
    return env


def start(argv: list[str], stdin: Any, out: Any, err: Any, cwd: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a process (the agent, a worker's setup command, a discovery stream) in its
    own session, reading stdin from a file and writing straight to files (no pty, no
    pump threads, so it runs on unattended), dying with its parent. Not sh: its
    background threads reap the process, so one that exits at once was gone before
    the watcher could wait for it (the run was recorded `lost`). Only its starter
    waits for it (see watch.has_exited)."""
    import subprocess  # here: 8 ms that only the starters of processes pay

    return subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, cwd=cwd, env=env, start_new_session=True,
                            preexec_fn=processes.die_with_parent())


def command(executable: str, *, session_id: str, resume: bool, system_prompt: str,
            permission_mode: str | None, allowed_tools: list[str], model: str | None = None,
            max_turns: int | None = None, budget_usd: float | None = None) -> list[str]:
    """argv for a headless run. The task is not in it: it goes on stdin, so its
    size and characters never meet argv limits or a shell."""
    argv = [executable, "-p", "--output-format", "stream-json", "--verbose",
            "--resume" if resume else "--session-id", session_id,
            *(["--permission-mode", permission_mode] if permission_mode else []),
            "--append-system-prompt", system_prompt]
    if model:
        argv += ["--model", model]
    if max_turns is not None:
        argv += ["--max-turns", str(max_turns)]
    if budget_usd is not None:
        argv += ["--max-budget-usd", f"{budget_usd:g}"]
    # Variadic: it would swallow a positional prompt, so it goes last and the
    # prompt comes on stdin.
    argv += ["--allowedTools", *allowed_tools]
    return argv


def allowed_tools(project_rules: list[str], extra: list[str]) -> list[str]:
    rules: list[str] = []
    for rule in [*project_rules, *extra, *GIT_RULES]:
        if rule not in rules:
            rules.append(rule)
    return rules


# -- reading the stream-json log ------------------------------------------
# Everything in it is untrusted input: any line may be cut short, not JSON, not an
# object, or carry fields of any type. Readers below take only what has the type
# the CLI gives it, and treat the rest as absent.
MAX_LINE = 8 * 1024 * 1024  # bytes; no real message is this long: a longer line is skipped unread


def _no_constant(name: str) -> None:
    return None  # NaN and Infinity: not JSON, and poison for sums and records


def messages(log: Path) -> Iterator[dict[str, Any]]:
    try:
        f = files.open_log(log)  # never through a symlink planted there
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # ELOOP: a symlink (or not a file): read as no transcript at all
            raise
        return
    with f:
        while line := f.readline(MAX_LINE + 1):
            if len(line) > MAX_LINE:
                while line and not line.endswith(b"\n"):  # the rest of it, a chunk at a time
                    line = f.readline(1024 * 1024)
                continue
            line = line.strip()
            if line.startswith(b"{"):
                try:
                    message = json.loads(line.decode("utf-8", "replace"), parse_constant=_no_constant)
                except (ValueError, RecursionError):
                    continue  # a line cut short by a kill, or garbage
                if isinstance(message, dict):
                    yield message


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def session_id(value: Any) -> str | None:
    """A session id as the CLI makes them (a UUID): never a flag or a path, as it goes
    back on the command line of a resume."""
    if isinstance(value, str) and 0 < len(value) <= 128 and value.isascii() and value[0] != "-" \
            and value.replace("-", "").isalnum():
        return value
    return None


def checked_result(message: dict[str, Any]) -> dict[str, Any]:
    """The fields of a `result` message envoy uses, each of the type the CLI gives it,
    else None (False, [] for flags and lists)."""
    from envoy import usage

    errors, denied, status = message.get("errors"), message.get("permission_denials"), message.get("api_error_status")
    return {
        "type": "result", "subtype": _text(message.get("subtype")), "is_error": message.get("is_error") is True,
        "api_error_status": status if isinstance(status, (int, str)) and not isinstance(status, bool) and status
        else None,
        "result": _text(message.get("result")),
        "errors": [e if isinstance(e, str) else json.dumps(e) for e in errors] if isinstance(errors, list) else [],
        "total_cost_usd": usage.cost(message.get("total_cost_usd")), "num_turns": usage.turns(message.get("num_turns")),
        "permission_denials": [d for d in denied if isinstance(d, dict)] if isinstance(denied, list) else [],
        "structured_output": message.get("structured_output"),  # discovery's answer: findings.py checks it
        "session_id": session_id(message.get("session_id")),
    }


def outcome(log: Path) -> dict[str, Any]:
    """What the run reported: the init's session id and the final `result` message (checked)."""
    found: dict[str, Any] = {"session_id": None, "result": None}
    for message in messages(log):
        if message.get("type") == "system" and message.get("subtype") == "init":
            found["session_id"] = session_id(message.get("session_id")) or found["session_id"]
        elif message.get("type") == "result":
            found["result"] = checked_result(message)
    return found


def failure_reason(result: dict[str, Any] | None) -> str | None:
    """Why a run that produced a result failed, as a stable word (None: it did not)."""
    if result is None:
        return "no_result"
    subtype = result.get("subtype")
    if subtype == "error_max_turns":
        return "max_turns"
    if subtype == "error_max_budget_usd":
        return "budget"
    if result.get("api_error_status"):
        return "api_error"
    if result.get("is_error") or subtype != "success":
        return "agent_error"
    return None


def failure(result: dict[str, Any] | None, exit_code: int | None, err_path: Path) -> tuple[str | None, str | None]:
    """Why an agent that exited by itself failed, as (reason, error); (None, None) if it succeeded."""
    from envoy.output import one_line

    if exit_code is not None and exit_code < 0 and result is None:
        return "killed", f"agent killed by signal {-exit_code}"
    reason = failure_reason(result) or ("exit_code" if exit_code not in (0, None) else None)
    if reason is None:
        return None, None
    detail = (result or {}).get("errors") or (result or {}).get("result") or files.last_line(err_path)
    if isinstance(detail, list):
        detail = "; ".join(str(d) for d in detail)
    return reason, f"{reason} (exit {exit_code})" + (f": {one_line(str(detail), 300)}" if detail else "")


def denials(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Tool calls the agent was refused: the usual reason a worker got stuck."""
    out = []
    for denial in (result or {}).get("permission_denials") or []:
        if isinstance(denial, dict):
            out.append({"tool": _text(denial.get("tool_name")), "input": _tool_summary(denial.get("tool_input"))})
    return out


def tool_summary(tool_input: Any, limit: int = 200) -> str:
    """A tool call's input in one line: its command, path or pattern, else its JSON."""
    return _tool_summary(tool_input, limit)


def _tool_summary(tool_input: Any, limit: int = 200) -> str:
    from envoy.output import one_line

    if isinstance(tool_input, dict):
        for key in ("command", "file_path", "pattern", "url", "description", "prompt"):
            if isinstance(tool_input.get(key), str):
                text = tool_input[key]
                break
        else:
            text = json.dumps(tool_input, ensure_ascii=False)
    else:
        text = str(tool_input)
    return one_line(text, limit)


TRANSCRIPT_LINE = 2000  # characters: a caller (often an agent) reads every one


FINAL_ANSWER_LINE = "(the final answer, shown above)"


def transcript(log: Path, final: str | None = None) -> list[str]:
    """A readable transcript: assistant text, one line per tool call, errors, the end;
    each line cut to TRANSCRIPT_LINE. The last text block that is the `final` answer
    becomes one line pointing to it: a reader is not told a long answer twice."""
    lines: list[str] = []
    last_final: tuple[int, int] | None = None  # (start, end) in lines of the last block that is `final`
    for message in messages(log):
        kind = message.get("type")
        body = message.get("message")
        content = body.get("content") if isinstance(body, dict) else None
        if kind == "system" and message.get("subtype") == "init":
            lines.append(f"== session {_text(message.get('session_id'))} ({_text(message.get('model'))})")
        elif kind == "assistant":
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            for block in content if isinstance(content, list) else []:
                if not isinstance(block, dict):
                    continue
                text = block.get("text")
                if block.get("type") == "text" and isinstance(text, str) and text.strip():
                    start = len(lines)
                    lines.extend(text.rstrip().splitlines())
                    if final is not None and text.strip() == final.strip():
                        last_final = (start, len(lines))
                elif block.get("type") == "tool_use":
                    lines.append(f"-> {_text(block.get('name'))}: {_tool_summary(block.get('input'))}")
        elif kind == "user":
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result" and block.get("is_error"):
                    text = block.get("content")
                    if isinstance(text, list):
                        text = " ".join(b["text"] for b in text
                                        if isinstance(b, dict) and isinstance(b.get("text"), str))
                    lines.append(f"   ! {_tool_summary(text)}")
        elif kind == "result":
            result = checked_result(message)
            turns = "?" if result["num_turns"] is None else result["num_turns"]
            lines.append(f"== {result['subtype']}{' (error)' if result['is_error'] else ''}: "
                         f"{turns} turns, ${result['total_cost_usd'] or 0:.4f}")
    if last_final is not None:
        lines[last_final[0]:last_final[1]] = [FINAL_ANSWER_LINE]
    return [line if len(line) <= TRANSCRIPT_LINE else line[:TRANSCRIPT_LINE - 1] + "…" for line in lines]


def last_action(line: bytes) -> str | None:
    """The worker's last action in one stream-json line: its last tool call or line
    of text; None for a line that says neither."""
    from envoy.output import one_line  # here: the finisher beside every agent imports this module

    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "assistant":
        return None
    body = message.get("message")
    content = body.get("content") if isinstance(body, dict) else None
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    found = None
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_use":
            given = block.get("input")
            tool_input: dict[str, Any] = given if isinstance(given, dict) else {}
            detail = next((tool_input[k] for k in ("command", "file_path", "pattern", "url", "description", "prompt")
                           if isinstance(tool_input.get(k), str)), "")
            found = f"{str(block.get('name'))[:40]}: {one_line(detail, 200)}"
        elif block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"].strip():
            found = one_line(block["text"].strip().splitlines()[-1], 200)
    return found
