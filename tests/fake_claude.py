#!/usr/bin/env python3
"""A stand-in for `claude -p --output-format stream-json --verbose`.

It reads the task from stdin (as envoy sends it) and obeys directive lines in
it, printing stream-json shaped like the real CLI's (../shared/claude-samples):

    @sleep SECONDS          wait (a tool call that takes time)
    @wait-for PATH          wait until PATH exists (at most 120 s): the test decides when to end
    @write PATH TEXT        write a file in the cwd (a Write tool call)
    @commit MESSAGE         git add -A && git commit (a Bash tool call)
    @run COMMAND            run a shell command (a Bash tool call), then its tool_result; for
                            one that fails an error ("Exit code N" and its stderr), as the CLI's
    @deny TOOL INPUT        a tool call the CLI refuses for want of a permission: its
                            tool_use, the refusal as its tool_result, and the result's
                            permission_denials entry (the CLI's three traces of it)
    @hook-block TOOL INPUT  the same, refused by a PreToolUse hook (exit 2)
    @result TEXT            the final answer (default "done")
    @fail SUBTYPE           end with that result subtype (error_max_turns, ...) and exit 1
    @api-error STATUS       end like an API failure (is_error, api_error_status) and exit 1
    @crash CODE             exit with CODE without printing a result
    @stamp DIR              write DIR/<session>.start and .end (time.time()) for overlap checks
    @as ROLE DIRECTIVE      obey DIRECTIVE only in the discovery stream ROLE (env ENVOY_DISCOVERY)
    @structured JSON|none   with --json-schema: the structured_output to answer (none: answer text only)
    @emit LINE              print LINE as it is (malformed stream-json); `@emit-hex HEX`: those bytes
    @huge-line MIB          print one assistant message MIB MiB long
    @stray PIDFILE          leave a process behind: double-forked, in its own session, asleep for
                            300 s; it writes its pid to PIDFILE once it is on its own

With --json-schema the answer goes through a StructuredOutput tool call, as
the real CLI's does: `structured_output` in the result (by default one
finding naming the stream) and `result` its JSON text.

If FAKE_CLAUDE_ON_RESUME holds directive lines, a resumed run (--resume) obeys
them after its task's own: a follow-up envoy writes itself (land --repair's)
carries none.

If FAKE_CLAUDE_RECORD names a directory, argv, cwd, selected env and the task
are saved there as <session-id>.json, so tests can assert what envoy passed.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid


def emit(message):
    print(json.dumps(message), flush=True)


def main():
    argv = sys.argv[1:]
    task = sys.stdin.buffer.read().decode("utf-8")
    session = None
    for flag in ("--session-id", "--resume"):
        if flag in argv:
            session = argv[argv.index(flag) + 1]
    session = session or str(uuid.uuid4())
    record_dir = os.environ.get("FAKE_CLAUDE_RECORD")
    if record_dir:
        env = {k: v for k, v in os.environ.items() if k.startswith(("ENVOY_", "PARALLEL_", "CLAUDE"))}
        run = 1 + sum(1 for f in os.listdir(record_dir) if f.startswith(session))
        with open(os.path.join(record_dir, f"{session}.{run}.json"), "w", encoding="utf-8") as f:
            json.dump({"argv": argv, "cwd": os.getcwd(), "env": env, "task": task, "pid": os.getpid()}, f)
    emit({"type": "system", "subtype": "init", "session_id": session, "cwd": os.getcwd(),
          "tools": ["Bash", "Edit", "Read", "Write"], "model": "fake-model", "permissionMode": "acceptEdits"})
    result, denials, turns, stamp, structured = "done", [], 1, None, None
    role = os.environ.get("ENVOY_DISCOVERY")
    lines = task.splitlines()
    if "--resume" in argv:
        lines += os.environ.get("FAKE_CLAUDE_ON_RESUME", "").splitlines()
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        if word == "@as":
            who, _, line = rest.partition(" ")
            if who != role:
                continue
            word, _, rest = line.strip().partition(" ")
        if word == "@structured":
            structured = "none" if rest.strip() == "none" else json.loads(rest)
        elif word == "@stamp":
            stamp = rest
            with open(os.path.join(stamp, f"{session}.start"), "w") as f:
                f.write(repr(time.time()))
        elif word == "@sleep":
            time.sleep(float(rest))
        elif word == "@wait-for":
            deadline = time.time() + 120
            while not os.path.exists(rest) and time.time() < deadline:
                time.sleep(0.05)
        elif word == "@write":
            path, _, text = rest.partition(" ")
            tool_use("Write", {"file_path": path, "content": text}, session)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            turns += 1
        elif word in ("@commit", "@run"):
            command = f"git add -A && git commit -qm {json.dumps(rest)}" if word == "@commit" else rest
            ident = tool_use("Bash", {"command": command}, session)
            with tempfile.TemporaryFile() as err:  # a file, not a pipe: a command's & child may keep it open
                code = subprocess.run(command, shell=True, check=False, stderr=err).returncode
                err.seek(0)
                said = err.read()
            sys.stderr.buffer.write(said)
            tool_result(ident, f"Exit code {code}\n" + said.decode("utf-8", "replace") if code else "", session,
                        failed=code != 0)
            turns += 1
        elif word in ("@deny", "@hook-block"):
            tool, _, tool_input = rest.partition(" ")
            ident = tool_use(tool, {"command": tool_input}, session)
            why = (f"Claude requested permissions to use {tool}, but you haven't granted it yet." if word == "@deny"
                   else f"PreToolUse:{tool} hook error: [./policy.sh]: blocked by policy\n")
            tool_result(ident, why, session)
            denials.append({"tool_name": tool, "tool_use_id": ident, "tool_input": {"command": tool_input}})
        elif word == "@emit":
            print(rest, flush=True)
        elif word == "@emit-hex":
            sys.stdout.buffer.write(bytes.fromhex(rest) + b"\n")
            sys.stdout.flush()
        elif word == "@huge-line":
            text = "x" * int(float(rest) * 1024 * 1024)
            emit({"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}, "session_id": session})
        elif word == "@stray":
            stray(rest)
        elif word == "@result":
            result = rest
        elif word == "@crash":
            sys.exit(int(rest or 1))
        elif word == "@fail":
            finish(session, turns, None, denials, subtype=rest, stamp=stamp)
            sys.exit(1)
        elif word == "@api-error":
            finish(session, turns, f"API Error: {rest} scripted failure", denials, api_status=int(rest), stamp=stamp)
            sys.exit(1)
    emit({"type": "assistant", "message": {"id": "msg_1", "type": "message", "role": "assistant",
          "content": [{"type": "text", "text": result}]}, "session_id": session})
    if "--json-schema" in argv and structured != "none":
        if structured is None:
            structured = {"findings": [{"title": f"{role or 'fake'} finding", "detail": result, "files": []}],
                          "open_questions": []}
        tool_use("StructuredOutput", structured, session)
        result, turns = json.dumps(structured), turns + 1
    else:
        structured = None
    finish(session, turns, result, denials, stamp=stamp, structured=structured)


def stray(pidfile):
    """A grandchild that escapes the agent's process group and session, as a tool's
    daemon would, and outlives the agent's exit unless someone ends it."""
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        deadline = time.time() + 10
        while not os.path.exists(pidfile) and time.time() < deadline:
            time.sleep(0.01)
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    os.execvp("sleep", ["sleep", "300"])


def tool_use(name, tool_input, session):
    ident = "toolu_" + uuid.uuid4().hex[:20]
    emit({"type": "assistant", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [
        {"type": "tool_use", "id": ident, "name": name, "input": tool_input}]},
        "session_id": session})
    return ident


def tool_result(ident, text, session, failed=True):
    """A tool's answer, as the CLI hands it to the model (and logs it)."""
    emit({"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "content": text, "is_error": failed, "tool_use_id": ident}]}, "session_id": session})


def finish(session, turns, result, denials, subtype="success", api_status=None, stamp=None, structured=None):
    message = {"type": "result", "subtype": subtype, "is_error": subtype != "success" or api_status is not None,
               "api_error_status": api_status, "duration_ms": 10, "num_turns": turns, "session_id": session,
               "total_cost_usd": 0.0011 * turns, "permission_denials": denials,
               "terminal_reason": "completed" if subtype == "success" else subtype.replace("error_", "")}
    if structured is not None:
        message["structured_output"] = structured
    if result is not None:
        message["result"] = result
    else:
        message["errors"] = [f"scripted {subtype}"]
    emit(message)
    if stamp:
        with open(os.path.join(stamp, f"{session}.end"), "w") as f:
            f.write(repr(time.time()))


if __name__ == "__main__":
    main()
