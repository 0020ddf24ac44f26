"""`envoy discover`: Mode 1 (parallel discovery) from the command line and CI.

2 to 4 read-only headless sessions run at the same time in this checkout,
one per role, each told its own scope and the others', and limited to
read-only tools in plan mode (no worktree: nothing can be written). They
answer through `--json-schema`; envoy merges their findings into one report
(findings.py). A stream that fails or times out is reported, and does not
sink the others.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envoy import agent, gitdir, output, processes
from envoy.commands import common
from envoy.config import Config
from envoy.discovery import findings, roles
from envoy.discovery.roles import Role
from envoy.errors import EnvoyError
from envoy.processes import kill_group
from envoy.worker.watcher import has_exited, reap

DEFAULT_ROLES = "explorer,curator,researcher"
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_WORDS = roles.DEFAULT_MAX_WORDS
MIN_STREAMS, MAX_STREAMS = 2, 4
ROLE_NAME = re.compile(r"[A-Za-z0-9_-]+")

# Small on purpose: the coordinator (you, or the agent that called envoy) reads every word.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "findings": {"type": "array", "items": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "detail": {"type": "string"},
                           "files": {"type": "array", "items": {"type": "string"},
                                     "description": "path:line (or URL) the finding rests on"}},
            "required": ["title", "detail", "files"]}},
        "open_questions": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["findings", "open_questions"],
}

STREAM_PROMPT = """\
You are the "{name}" stream of an envoy parallel discovery: {count} read-only headless sessions work on \
the same task at the same time, each from its own angle, and envoy merges their findings.
Your scope: {scope}
{others}
You are read-only: your only tools are {tools}. Plan mode is on only to enforce that: do not write a \
plan file and do not ask to leave plan mode.
Answer by calling the StructuredOutput tool once, at the end: at most {max_words} words in all, each \
finding a short title, a concise detail, and the files it rests on as path:line (URLs for external \
sources); what you could not settle goes in open_questions. No preamble, no repetition."""


@dataclass
class Stream:
    role: Role
    process: Any  # subprocess.Popen: only its pid is used, and only here is it waited for
    log: Path
    err: Path
    started: float
    finished: float | None = None
    timed_out: bool = False
    exit_code: int | None = None

    def alive(self) -> bool:
        return not has_exited(self.process.pid)

    def end(self) -> float:
        """Once it has exited (or been killed): strays in its group, then reap it. When it ended."""
        while self.alive():
            time.sleep(0.01)
        kill_group(self.process.pid, None)  # still unreaped: the group id is still its own
        self.exit_code = reap(self.process.pid)
        self.process.returncode = -1 if self.exit_code is None else self.exit_code  # never waited for again
        self.finished = time.monotonic()
        return self.finished


def run(args: argparse.Namespace) -> int:
    task = read_task(args)
    top = gitdir.toplevel_of(os.getcwd()) or Path.cwd()
    chosen = choose_roles(top, args.roles)
    max_words = DEFAULT_MAX_WORDS if args.max_words is None else args.max_words
    if max_words < 1:
        raise EnvoyError("invalid_input", f"--max-words {max_words} is not a positive number of words",
                         f"give a word budget per stream, e.g. --max-words {roles.DEFAULT_MAX_WORDS}")
    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    if timeout < 0:  # the parser takes only finite numbers
        raise EnvoyError("invalid_input", f"--timeout {args.timeout} is not a number of seconds",
                         "give seconds per stream, e.g. --timeout 600 (0: no limit)")
    executable = agent.find(Config(top).get("ENVOY_CLAUDE"))
    with tempfile.TemporaryDirectory(prefix="envoy-discover-") as tmp:
        endings = run_streams(executable, chosen, task, Path(tmp), top, args.model, max_words, timeout)
    report = findings.report(task, endings, top)
    if not any(s["error"] is None for s in report["streams"]):
        failures = "; ".join(f"{s['role']}: {s['error']}" for s in report["streams"])
        raise EnvoyError("discovery_failed", f"every discovery stream failed ({failures})",
                         "check that claude runs here (claude -p 'hi'), or raise --timeout",
                         streams=report["streams"])
    output.success(report, findings.render)
    return 0


def read_task(args: argparse.Namespace) -> str:
    """The task from the argument, a file or stdin (spawn's reader, discovery's wording)."""
    if args.task is None and args.task_file is None:
        raise EnvoyError("invalid_input", "no task given", 'envoy discover "what to find out" (or --task-file PATH)')
    if args.task is not None and args.task_file is not None:
        raise EnvoyError("invalid_input", "give the task once: as the argument or with --task-file, not both",
                         "drop the argument or --task-file")
    if args.task is not None and not args.task.strip():
        raise EnvoyError("invalid_input", "the task is empty", 'say what to find out: envoy discover "..."')
    try:
        return common.read_task(args)
    except EnvoyError as exc:
        if exc.message == "the task is empty":
            raise EnvoyError("invalid_input", "the task file is empty", "put what to find out in the file") from None
        raise


def choose_roles(top: Path, spec: str | None) -> list[Role]:
    """The streams to run: 2-4 distinct roles, each built in or a project agent."""
    names = [name.strip() for name in (spec if spec is not None else DEFAULT_ROLES).split(",") if name.strip()]
    if len(names) != len(set(names)):
        raise EnvoyError("invalid_input", f"--roles names a role twice ({', '.join(names)})",
                         "two streams with one scope only repeat each other: name each role once")
    if not MIN_STREAMS <= len(names) <= MAX_STREAMS:
        why = ("one perspective is a single question: ask one session (claude -p) instead"
               if len(names) < MIN_STREAMS else
               "more streams overlap and cost more than they add: merge scopes or run two discoveries")
        raise EnvoyError("invalid_input", f"discovery runs {MIN_STREAMS} to {MAX_STREAMS} streams, not {len(names)}",
                         f"discovery is only worth it with 2-4 perspectives; {why} (e.g. --roles {DEFAULT_ROLES})")
    chosen = []
    for name in names:
        role = roles.BUILT_IN.get(name) or (roles.load_agent(top, name) if ROLE_NAME.fullmatch(name) else None)
        if role is None:
            agents = [a for a in roles.agent_names(top) if a not in roles.BUILT_IN]
            raise EnvoyError("invalid_input", f"unknown role {name!r}",
                             f"use {', '.join(roles.BUILT_IN)}"
                             + (f", or an agent of .claude/agents: {', '.join(agents)}" if agents else
                                " (no other agent found in .claude/agents)"),
                             roles=list(roles.BUILT_IN), agents=agents)
        chosen.append(role)
    return chosen


def command(executable: str, role: Role, chosen: list[Role], model: str | None, max_words: int) -> list[str]:
    """argv for one stream; the task goes on stdin."""
    others = [r for r in chosen if r is not role]
    prompt = STREAM_PROMPT.format(
        name=role.name, count=len(chosen), scope=role.scope, tools=", ".join(role.tools), max_words=max_words,
        others="Leave to the other streams what they cover: "
               + "; ".join(f"{r.name} ({r.description or r.scope[:200]})" for r in others))
    argv = [executable, "-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "plan",
            "--append-system-prompt", prompt, "--json-schema", json.dumps(SCHEMA, separators=(",", ":"))]
    if model:
        argv += ["--model", model]
    return argv + ["--tools", ",".join(role.tools)]


def run_streams(executable: str, chosen: list[Role], task: str, tmp: Path, top: Path, model: str | None,
                max_words: int, timeout: float) -> list[dict[str, Any]]:
    """Start every stream, wait for all (killing those past the timeout), and say how each ended."""
    task_file = tmp / "task"
    task_file.write_bytes(task.encode("utf-8"))
    streams: list[Stream] = []
    processes.become_subreaper()  # what a stream leaves behind comes to us, to be ended with it
    run_id = processes.new_run_id()
    with ExitStack() as files:
        try:
            for role in chosen:
                log, err = tmp / f"{role.name}.jsonl", tmp / f"{role.name}.err"
                process = agent.start(
                    command(executable, role, chosen, model, max_words), files.enter_context(open(task_file, "rb")),
                    files.enter_context(open(log, "wb")), files.enter_context(open(err, "wb")), str(top),
                    agent.environment(ENVOY_DISCOVERY=role.name, **{processes.RUN_ID: run_id}))
                streams.append(Stream(role, process, log, err, time.monotonic()))
            output.progress(f"discovery: {len(streams)} streams at work ({', '.join(r.name for r in chosen)})")
            _wait_all(streams, timeout)
        finally:  # Ctrl-C or a failed start: leave no stream running (they are in their own sessions)
            for stream in streams:
                if stream.finished is None:
                    kill_group(stream.process.pid, stream.alive, grace=1.0)
                    stream.end()
            processes.end_strays(run_id, {str(s.process.pid) for s in streams})  # and nothing they started
    return [_ending(stream, timeout) for stream in streams]


def _wait_all(streams: list[Stream], timeout: float) -> None:
    while any(s.finished is None for s in streams):
        for stream in streams:
            if stream.finished is not None:
                continue
            if stream.alive():
                if timeout and time.monotonic() - stream.started > timeout:
                    stream.timed_out = True
                    kill_group(stream.process.pid, stream.alive)
                else:
                    continue
            took = stream.end() - stream.started
            output.progress(f"discovery: {stream.role.name} {'timed out' if stream.timed_out else 'done'} "
                            f"after {output.duration(took)}")
        time.sleep(0.1)


def _ending(stream: Stream, timeout: float) -> dict[str, Any]:
    """How one stream ended: its result message (or None) and, if it failed, why."""
    found = agent.outcome(stream.log)
    result = found["result"]
    code = stream.exit_code
    reason: str | None
    error: str | None
    if stream.timed_out:
        reason, error = "timeout", f"timeout: killed after the {timeout:g}s limit"
    else:
        reason, error = agent.failure(result, code, stream.err)
    return {"role": stream.role, "result": result, "session_id": found["session_id"],
            "duration_s": round((stream.finished or time.monotonic()) - stream.started, 2),
            "reason": reason, "error": error}
