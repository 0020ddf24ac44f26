"""`envoy discover` end to end: the built envoy.pyz running the real claude CLI's
read-only streams at once against the fake model server.

Every stream gets the same task (one script marker), so the scripts below
pick each stream's next step by the role envoy names in its system prompt."""
from __future__ import annotations

import itertools
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from fake_model import (FakeModel, Reply, RequestRecord, Step, bash, delay, edit, http_error, structured_output, text,
                        tool, write)

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
from conftest import Result, git  # noqa: E402

Envoy = Callable[..., Result]
ROLE_IN_PROMPT = re.compile(r'You are the "([\w-]+)" stream')


def role_of(record: RequestRecord) -> str:
    found = ROLE_IN_PROMPT.search(record.system)
    assert found, "envoy did not name the stream's role in its system prompt"
    return found.group(1)


def per_role(steps: dict[str, list[Step]]) -> list[Step]:
    """One script whose i-th step is the i-th step of the asking stream's role."""
    def pick(i: int) -> Step:
        def step(record: RequestRecord) -> Step:
            mine = steps[role_of(record)]
            return mine[i] if i < len(mine) else text("done")
        return step
    return [pick(i) for i in range(max(len(s) for s in steps.values()))]


# Tools that can change a file or run a program, on either pinned CLI
# (ToolSearch could load deferred ones; Agent and Workflow run other sessions).
WRITE_CAPABLE = {"Write", "Edit", "MultiEdit", "NotebookEdit", "Bash", "BashOutput", "KillShell", "Agent", "Task",
                 "ToolSearch", "Workflow", "Skill", "SlashCommand", "ExitPlanMode", "EnterWorktree"}


def callable_tools(record: RequestRecord) -> list[str]:
    """The tools the CLI offered the model in this request, less `defer_loading`
    entries (2.1.332's DeferredToolPlaceholder: a name the model cannot call)."""
    offered = record.body.get("tools") or []
    return [str(t.get("name")) for t in offered if isinstance(t, dict) and not t.get("defer_loading")]


def answer(title: str, files: list[str]) -> dict[str, Any]:
    return {"findings": [{"title": title, "detail": f"{title}, in detail", "files": files}],
            "open_questions": [f"{title}?"]}


def test_streams_run_at_once_read_only_and_report_structured_findings(
        repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    target = repo / "pwned.txt"
    marker = fake_model.script("discover", per_role({
        "explorer": [delay(3.0, then=structured_output(answer("Entry point", ["README:1"])))],
        "curator": [delay(3.0, then=write(str(target), "should never exist")),
                    structured_output(answer("No conventions yet", ["README"]))],
        "researcher": [delay(3.0, then=structured_output(answer("Docs", ["https://example.com/docs"])))],
    }))
    result = envoy("discover", f"{marker} How is this project laid out?")
    assert result.code == 0, result.stdout + result.stderr
    data = result.data
    requests = fake_model.requests_for("discover")
    sessions = {role_of(r): r.session_id for r in requests}
    assert set(sessions) == {"explorer", "curator", "researcher"} and len(set(sessions.values())) == 3

    # (a) At the same time: every stream's first model call was in flight while the others' were.
    first = {role: next(r for r in requests if r.session_id == sid) for role, sid in sessions.items()}
    for a, b in itertools.combinations(first.values(), 2):
        assert a.overlaps(b), "discovery streams ran one after another"

    # Read-only by construction: plan mode, the role's tools, and nothing that can write.
    for role, record in first.items():
        web = {"WebFetch", "WebSearch"} if role == "researcher" else set()
        assert {"Glob", "Grep", "Read", "StructuredOutput", *web} <= set(callable_tools(record))
        assert not set(callable_tools(record)) & WRITE_CAPABLE, callable_tools(record)
        assert "Plan mode is active" in str(record.body["messages"])
        assert "How is this project laid out?" in record.prompt  # the task came on stdin
    # (b) The curator's Write came back as an error, and nothing was written.
    (denied,) = fake_model.tool_results("discover")
    assert denied.tool_name == "Write" and denied.is_error and "No such tool available" in denied.content
    assert not target.exists()

    # (c) The structured answers came back, attributed, with cost and session ids.
    streams = {s["role"]: s for s in data["streams"]}
    assert streams["explorer"]["findings"] == answer("Entry point", ["README:1"])["findings"]
    assert streams["curator"]["findings"][0]["title"] == "No conventions yet"
    assert streams["researcher"]["open_questions"] == ["Docs?"]
    for role, stream in streams.items():
        assert stream["error"] is None and stream["session_id"] == sessions[role]
        assert stream["cost_usd"] > 0 and stream["duration_s"] >= 3
    assert data["total_cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in streams.values()))
    # explorer and curator both cite README with different claims: a possible conflict.
    assert [c["file"] for c in data["conflicts"]] == ["README"]


def test_a_stream_past_its_timeout_is_killed_and_reported(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    marker = fake_model.script("slow", per_role({
        "explorer": [structured_output(answer("Quick", []))],
        "researcher": [delay(120.0, then=text("too late"))],
    }))
    started = time.monotonic()
    result = envoy("discover", f"{marker} look", "--roles", "explorer,researcher", "--timeout", "8")
    assert time.monotonic() - started < 40
    assert result.code == 0, result.stdout + result.stderr
    streams = {s["role"]: s for s in result.data["streams"]}
    assert streams["explorer"]["error"] is None and streams["explorer"]["findings"][0]["title"] == "Quick"
    assert streams["researcher"]["reason"] == "timeout" and streams["researcher"]["findings"] == []


def test_every_stream_failing_is_exit_1(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    marker = fake_model.script("down", [http_error(500)])
    result = envoy("discover", f"{marker} look", "--roles", "explorer,curator")
    assert result.code == 1
    assert result.error["type"] == "discovery_failed"
    assert [s["reason"] for s in result.error["streams"]] == ["api_error", "api_error"]


def test_a_stream_cannot_write_edit_or_run_anything(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    """discover's promise, checked on every pinned CLI: a stream that tries to
    write, edit, run a command, load a deferred tool (2.1.332's ToolSearch) or
    start a subagent gets an error for each, and nothing changes on disk."""
    readme = (repo / "README").read_text()
    attempts: list[Step] = [
        write(str(repo / "pwned.txt"), "should never exist"),
        edit(str(repo / "README"), readme.strip(), "edited"),
        bash(f"touch {repo / 'ran.txt'}"),
        tool("NotebookEdit", {"notebook_path": str(repo / "n.ipynb"), "new_source": "x", "edit_mode": "insert",
                              "cell_type": "code"}),
        tool("ToolSearch", {"query": "select:Write,Edit,Bash", "max_results": 5}),
        tool("DeferredToolPlaceholder", {}),
        write(str(repo / "pwned.txt"), "after ToolSearch"),
        tool("Agent", {"description": "write", "prompt": f"write {repo / 'pwned.txt'}",
                       "subagent_type": "general-purpose"}),
    ]
    marker = fake_model.script("hostile", per_role({
        "explorer": [structured_output(answer("Layout", ["README"]))],
        "curator": [*attempts, structured_output(answer("Tried", []))],
    }))
    result = envoy("discover", f"{marker} look", "--roles", "explorer,curator")
    assert result.code == 0, result.stdout + result.stderr

    tried = [step.calls[0].name for step in attempts if isinstance(step, Reply)]
    results = fake_model.tool_results("hostile")
    assert [r.tool_name for r in results] == tried
    for outcome in results:
        assert outcome.is_error, outcome
    assert (repo / "README").read_text() == readme
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    streams = {s["role"]: s for s in result.data["streams"]}
    assert streams["curator"]["findings"][0]["title"] == "Tried"  # the stream went on and answered
