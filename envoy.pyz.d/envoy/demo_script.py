"""What `envoy demo` runs: a tiny scratch project, five workers' tasks, and the
scripted stand-in agent that does them in place of `claude`.

The stand-in is a real executable the worker starts exactly as it starts
`claude` (`envoy.pyz _standin`, behind a two-line shell script the demo writes):
it reads the task on stdin, speaks claude's stream-json, writes the files its
script gives for the worker's branch and commits them. No model, no account,
no network: every worker costs $0. With `envoy demo --agent claude` the same
tasks go to the real CLI instead.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CHECK = "python3 -m unittest -q"
REPO_NAME = "shop"
GATE_VAR = "ENVOY_DEMO_GATE"  # the stand-in commits only once this file exists (the demo has shown the cap)
PACE_VAR = "ENVOY_DEMO_PACE"  # seconds per tool call, so the queue is visible
STANDIN_MODEL = "envoy-demo-stand-in"

_APP = 'GREETING = "{0}"\n\n\ndef greet(name):\n    return f"{{GREETING}}, {{name}}!"\n'
_APP_TEST = ('import unittest\n\nfrom app import greet\n\n\nclass GreetTest(unittest.TestCase):\n'
             '    def test_greet(self):\n        self.assertEqual(greet("Ada"), "{0}, Ada!")\n')

PROJECT = {
    ".gitignore": "__pycache__/\n",
    "README.md": "# shop\n\nA tiny project for envoy's demo: `greet()` in app.py, tests beside it.\n",
    "app.py": _APP.format("Hello"),
    "test_app.py": _APP_TEST.format("Hello"),
}


@dataclass(frozen=True)
class Job:
    branch: str
    task: str
    files: dict[str, str] = field(default_factory=dict)
    message: str = ""
    answer: str = ""


JOBS = [
    Job("feat/farewell",
        "Add farewell(name) in farewell.py, returning 'Goodbye, NAME.', with a unittest in test_farewell.py. "
        "Commit your work.",
        {"farewell.py": 'def farewell(name):\n    return f"Goodbye, {name}."\n',
         "test_farewell.py": 'import unittest\n\nfrom farewell import farewell\n\n\n'
                             'class FarewellTest(unittest.TestCase):\n    def test_farewell(self):\n'
                             '        self.assertEqual(farewell("Ada"), "Goodbye, Ada.")\n'},
        "Add farewell()", "Added farewell() in farewell.py, with a test."),
    Job("fix/greeting-hi",
        "Change the greeting from Hello to Hi, in app.py and its test. Commit your work.",
        {"app.py": _APP.format("Hi"), "test_app.py": _APP_TEST.format("Hi")},
        "Greet with Hi", "The greeting is now Hi (app.py, test_app.py)."),
    Job("docs/usage",
        "Write USAGE.md: how to call greet() from Python, in a few lines. Commit your work.",
        {"USAGE.md": "# Using shop\n\n```python\nfrom app import greet\nprint(greet(\"Ada\"))\n```\n"},
        "Document greet()", "Wrote USAGE.md."),
    Job("feat/shout",
        "Add shout(text) in shout.py: the text in capitals followed by '!', with a unittest in test_shout.py. "
        "Commit your work.",
        # the stand-in's slip, on purpose: no '!', so its own test fails and land's check keeps it out
        {"shout.py": "def shout(text):\n    return text.upper()\n",
         "test_shout.py": 'import unittest\n\nfrom shout import shout\n\n\n'
                          'class ShoutTest(unittest.TestCase):\n    def test_shout(self):\n'
                          '        self.assertEqual(shout("hi"), "HI!")\n'},
        "Add shout()", "Added shout() in shout.py, with a test."),
    Job("fix/greeting-hey",
        "Change the greeting from Hello to Hey, in app.py and its test. Commit your work.",
        {"app.py": _APP.format("Hey"), "test_app.py": _APP_TEST.format("Hey")},
        "Greet with Hey", "The greeting is now Hey (app.py, test_app.py)."),
]


def job_for(branch: str | None) -> Job | None:
    return next((job for job in JOBS if job.branch == branch), None)


# -- the stand-in agent ----------------------------------------------------------
def _emit(message: dict[str, object]) -> None:
    print(json.dumps(message), flush=True)


def _tool_use(session: str, step: int, name: str, tool_input: dict[str, str]) -> None:
    _emit({"type": "assistant", "session_id": session, "message": {
        "id": f"msg_demo_{step}", "type": "message", "role": "assistant", "model": STANDIN_MODEL,
        "content": [{"type": "tool_use", "id": f"toolu_demo_{step}", "name": name, "input": tool_input}]}})


def _wait_for_gate(deadline_s: float = 120) -> None:
    gate = os.environ.get(GATE_VAR)
    end = time.monotonic() + deadline_s
    while gate and not os.path.exists(gate) and time.monotonic() < end:
        time.sleep(0.05)


def standin_main(argv: list[str]) -> int:
    """Do the scripted job of the branch checked out here, printing what `claude -p
    --output-format stream-json --verbose` would. Exit 0 on success, 1 (with an
    error result) when there is no script for this branch."""
    from envoy.git import Git

    sys.stdin.buffer.read()  # the task: the script, not the words, decides what is done
    session = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--session-id", "--resume")), "demo")
    try:
        pace = max(0.0, min(float(os.environ.get(PACE_VAR, "0.5")), 10.0))
    except ValueError:
        pace = 0.5
    git = Git(Path.cwd())
    head = git.head()
    job = job_for(head[1] if head else None)
    _emit({"type": "system", "subtype": "init", "session_id": session, "cwd": os.getcwd(),
           "tools": ["Bash", "Write"], "model": STANDIN_MODEL, "permissionMode": "acceptEdits"})
    if job is None:
        _emit({"type": "result", "subtype": "error_during_execution", "is_error": True, "num_turns": 1,
               "session_id": session, "total_cost_usd": 0.0, "duration_ms": 0, "permission_denials": [],
               "errors": ["envoy demo's stand-in agent has no script for this branch"]})
        return 1
    step = 0
    for path, text in job.files.items():
        step += 1
        _tool_use(session, step, "Write", {"file_path": path, "content": text})
        Path(path).write_text(text, encoding="utf-8")
        time.sleep(pace)
    _wait_for_gate()
    step += 1
    _tool_use(session, step, "Bash", {"command": f"git add -A && git commit -m {json.dumps(job.message)}"})
    git.commit_all(job.message)
    _emit({"type": "assistant", "session_id": session, "message": {
        "id": f"msg_demo_{step + 1}", "type": "message", "role": "assistant", "model": STANDIN_MODEL,
        "content": [{"type": "text", "text": job.answer}]}})
    _emit({"type": "result", "subtype": "success", "is_error": False, "result": job.answer, "num_turns": step + 1,
           "session_id": session, "total_cost_usd": 0.0, "duration_ms": int(pace * 1000 * step),
           "permission_denials": [], "terminal_reason": "completed"})
    return 0
