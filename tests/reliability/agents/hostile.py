#!/usr/bin/env python3
"""Agents that misbehave, for tests/reliability/test_hostile_agents.py. The first
word of the task (stdin) picks the misbehaviour; the rest are its arguments.

    silent                 print nothing, exit 0
    hang                   print nothing, never end (until killed)
    slow SECONDS           a valid run that takes SECONDS
    garbage                binary junk, JSON that is not a message, messages with
                           wrong types, then a result whose numbers are words
    huge MB                MB megabytes of transcript (one line of MB/2), then a result
    stubborn DIR           ignore SIGTERM (touching DIR/got-term when it comes), touch
                           DIR/working, never end (until SIGKILL)
    grandchildren WHERE    leave a sleeper behind, in its process group (WHERE:
                           its-group, `sleep 300`) or in a new session (new-session,
                           `sleep 301`), then answer and exit at once
"""
import json
import os
import signal
import subprocess
import sys
import time

SESSION = "00000000-0000-4000-8000-000000000001"


def emit(message):
    sys.stdout.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
    sys.stdout.flush()


def result(text="ok", **extra):
    emit({"type": "result", "subtype": "success", "is_error": False, "duration_ms": 5, "num_turns": 1,
          "result": text, "session_id": SESSION, "total_cost_usd": 0.001, "permission_denials": [], **extra})


def main():
    words = sys.stdin.read().split()
    mode, args = (words[0], words[1:]) if words else ("silent", [])
    if mode == "silent":
        return 0
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, lambda *_: open(os.path.join(args[0], "got-term"), "w").close())
        open(os.path.join(args[0], "working"), "w").close()
        while True:
            time.sleep(0.05)
    if mode == "hang":
        while True:
            time.sleep(1)
    emit({"type": "system", "subtype": "init", "session_id": SESSION, "cwd": os.getcwd(), "tools": [],
          "model": "hostile"})
    if mode == "slow":
        time.sleep(float(args[0]))
        result("slow but fine")
    elif mode == "garbage":
        sys.stdout.buffer.write(b"\x00\xff\xfe garbage \x80\x81\n{\"unterminated\": \n")
        for line in ("[1,2,3]", "\"a string\"", "null", "42", "{}", "{\"type\": 7}",
                     json.dumps({"type": "assistant", "message": {"content": "content as a string"}}),
                     json.dumps({"type": "assistant", "message": "a message as a string"}),
                     json.dumps({"type": "assistant", "message": {"content": [1, "x", None, {"type": 3}]}}),
                     json.dumps({"type": "assistant", "message": {"content": [
                         {"type": "tool_use", "name": ["Bash"], "input": "not an object"}]}}),
                     json.dumps({"type": "user", "message": {"content": [{"type": "tool_result", "content": 5}]}})):
            emit(line)
        emit({"type": "result", "subtype": "success", "is_error": "no", "num_turns": "many",
              "total_cost_usd": "free", "result": {"not": "text"}, "session_id": 5, "duration_ms": "long",
              "permission_denials": "none", "structured_output": [1]})
    elif mode == "huge":
        megabytes = float(args[0])
        chunk = "x" * 100_000
        text = {"type": "assistant", "message": {"role": "assistant", "content": [{"type": "text", "text": chunk}]},
                "session_id": SESSION}
        for _ in range(int(megabytes * 5)):
            emit(text)
        emit({"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "text", "text": "y" * int(megabytes * 500_000)}]}, "session_id": SESSION})
        result("huge " + "z" * 200_000)
    elif mode == "grandchildren":
        escape = args[0] == "new-session"
        sleeper = subprocess.Popen(["sleep", "301" if escape else "300"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=escape)
        # Popen returns once the exec succeeded: the pid in the answer is a sleeper that ran
        result(f"left a sleeper behind: pid {sleeper.pid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
