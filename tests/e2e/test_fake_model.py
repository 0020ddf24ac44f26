"""Tests of the e2e harness: FakeModel on its own, and the real claude CLI against it."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

from fake_model import (
    DONE_TEXT,
    FakeModel,
    Reply,
    RequestRecord,
    bash,
    delay,
    http_error,
    marker,
    text,
    tool,
    tools,
    write,
)

# The run_claude / start_claude fixtures (conftest.py; not importable by name).
RunClaude = Callable[..., Any]

# Tools a worker may use without prompts; the prompt goes on stdin because the
# variadic --allowedTools would swallow a positional one.
WORKER_FLAGS = ("--allowedTools", "Bash(*)", "Write", "Edit", "--permission-mode", "acceptEdits")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


# --------------------------------------------------------------------------
# The server alone (plain HTTP, no CLI needed)


def _request(
    fake: FakeModel, path: str, body: Optional[dict[str, Any]] = None, method: str = "POST"
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(fake.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _main_body(prompt: str, stream: bool = False) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 100, "stream": stream, "tools": [{"name": "Bash"}],
            "messages": [{"role": "user", "content": prompt}]}


def _sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in raw.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_other_paths_answer_404_without_crashing(fake_model: FakeModel) -> None:
    for method in ("GET", "HEAD", "POST"):
        status, body = _request(fake_model, "/nowhere", {} if method == "POST" else None, method)
        assert status == 404
        if method != "HEAD":
            assert json.loads(body)["type"] == "error"
    assert _request(fake_model, "/v1/messages/count_tokens", _main_body("x"))[0] == 200
    assert fake_model.errors == []


def test_streamed_tool_call_has_anthropic_event_order(fake_model: FakeModel) -> None:
    fake_model.script("s", [tools(bash("echo 1"), write("/tmp/x", "y"), text="two calls")])
    status, raw = _request(fake_model, "/v1/messages", _main_body(marker("s"), stream=True))
    assert status == 200
    names = [name for name, _ in _sse(raw)]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 3
    events = _sse(raw)
    json_deltas = [d["delta"]["partial_json"] for n, d in events
                   if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
    assert json.loads("".join(json_deltas[: len(json_deltas) // 2])) == {"command": "echo 1",
                                                                       "description": "scripted step"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    ids = fake_model.requests_for("s")[0].tool_use_ids
    assert len(set(ids)) == 2 and all(i.startswith("toolu_") for i in ids)


def test_side_requests_and_non_streaming_consume_no_steps(fake_model: FakeModel) -> None:
    fake_model.script("s", [text("first"), text("second")])
    side = dict(_main_body(marker("s")), tools=[])  # e.g. title generation
    side["output_config"] = {"format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}}
    status, raw = _request(fake_model, "/v1/messages", side)
    assert status == 200 and "title" in json.loads(json.loads(raw)["content"][0]["text"])
    answers = [json.loads(_request(fake_model, "/v1/messages", _main_body(marker("s")))[1])
               for _ in range(3)]
    assert [a["content"][0]["text"] for a in answers] == ["first", "second", DONE_TEXT]
    assert answers[0]["stop_reason"] == "end_turn"
    assert len(fake_model.side_requests()) == 1 and len(fake_model.requests_for("s")) == 3


def test_stop_interrupts_a_delay() -> None:
    fake = FakeModel().start()
    fake.script("slow", [delay(30, text("late"))])
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            _request(fake, "/v1/messages", _main_body(marker("slow")))
        except OSError as error:  # the server hangs up: what the CLI sees too
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    assert fake.wait_for(lambda requests: bool(requests), timeout=5)
    started = time.monotonic()
    fake.stop()
    caller.join(timeout=5)
    assert not caller.is_alive() and time.monotonic() - started < 3
    assert outcome and fake.requests[0].status == 0  # closed unanswered


def _conversation(*messages: dict[str, Any]) -> dict[str, Any]:
    return dict(_main_body(""), messages=list(messages))


def test_what_the_model_was_told_whatever_the_history_layout(fake_model: FakeModel) -> None:
    """Both CLI versions' shapes: 2.1.197 puts hook feedback in a system-reminder
    after the tool result; 2.1.332 merges consecutive assistant messages, adds
    reminder text blocks and sends the hook feedback as a system-role message."""
    fake_model.script("s", [text("a"), text("b"), text("c")])
    prompt = {"role": "user", "content": [{"type": "text", "text": "<system-reminder>context</system-reminder>"},
                                          {"type": "text", "text": marker("s") + " go"}]}
    call_1 = {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {}}
    call_2 = {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {}}
    result_1 = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "written"}
    result_2 = {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "ran"}]}
    old_shape = _conversation(prompt, {"role": "assistant", "content": [call_1]}, {"role": "user", "content": [
        result_1, {"type": "text", "text": "<system-reminder>hook said: bad name</system-reminder>"}]})
    new_shape = _conversation(
        prompt, {"role": "assistant", "content": [call_1, {"type": "text", "text": "and"}, call_2]},
        {"role": "user", "content": [result_1, result_2]},
        {"role": "system", "content": [{"type": "text", "text": "hook said: bad name"}]})
    for body in (old_shape, new_shape):
        assert _request(fake_model, "/v1/messages", body)[0] == 200
    old, new = fake_model.requests_for("s")
    assert "hook said: bad name" in old.user_text and "hook said: bad name" in new.user_text
    assert "hook said: bad name" in old.told and "ran" in new.told and "context" in new.told
    assert [(r.tool_name, r.content) for r in old.tool_results] == [("Write", "written")]
    # toolu_1 was answered in the session's earlier request: only toolu_2 is new.
    assert [(r.tool_name, r.content) for r in new.tool_results] == [("Bash", "ran")]
    assert old.step_index == 0 and new.step_index == 1
    assert "hook said: bad name" in fake_model.told("s")


# --------------------------------------------------------------------------
# The real CLI against the server


def test_bash_commit_round_trip(fake_model: FakeModel, run_claude: RunClaude, git_repo: Path) -> None:
    fake_model.script("commit", [
        bash('echo hi > hi.txt && git add hi.txt && git commit -qm "add hi"'),
        text("Added hi.txt and committed it."),
    ])
    run = run_claude(f"Add hi.txt and commit it. {marker('commit')}", *WORKER_FLAGS)

    assert run.returncode == 0, run.stderr
    result = run.result
    assert result["subtype"] == "success" and result["is_error"] is False
    assert result["result"] == "Added hi.txt and committed it."
    assert result["num_turns"] == 2
    assert result["session_id"] == run.init["session_id"]
    assert "add hi" in git(git_repo, "log", "--format=%s")
    assert git(git_repo, "ls-files", "hi.txt").strip() == "hi.txt"

    requests = fake_model.requests_for("commit")
    assert [r.step_index for r in requests] == [0, 1]
    assert {r.session_id for r in requests} == {result["session_id"]}
    [tool_result] = fake_model.tool_results("commit")
    assert tool_result.tool_name == "Bash" and tool_result.is_error is False
    # The id the server made is the one the CLI answered to.
    assert tool_result.tool_use_id == requests[0].tool_use_ids[0]
    assert fake_model.errors == []


def test_http_500_fails_fast(fake_model: FakeModel, run_claude: RunClaude) -> None:
    fake_model.script("boom", [http_error(500)])
    run = run_claude(f"Do anything. {marker('boom')}", *WORKER_FLAGS, timeout=30)

    assert run.returncode == 1
    assert run.result["is_error"] is True
    assert run.result["api_error_status"] == 500
    assert "scripted failure" in run.result["result"]
    assert run.duration < 10


def test_max_turns_ends_with_error_subtype(fake_model: FakeModel, run_claude: RunClaude) -> None:
    fake_model.script("long", [bash("echo 1"), bash("echo 2"), text("never said")])
    run = run_claude(f"Loop. {marker('long')}", "--max-turns", "1", *WORKER_FLAGS)

    assert run.returncode == 1
    assert run.result["subtype"] == "error_max_turns"
    assert run.result["is_error"] is True and "result" not in run.result
    assert len(fake_model.requests_for("long")) == 1


def test_write_step_creates_a_file(fake_model: FakeModel, run_claude: RunClaude, git_repo: Path) -> None:
    target = git_repo / "notes" / "out.txt"
    fake_model.script("write", [write(str(target), "written by the fake\n"), text("wrote it")])
    run = run_claude(f"Write a note. {marker('write')}", *WORKER_FLAGS)

    assert run.returncode == 0, run.stderr
    assert run.result["result"] == "wrote it"
    assert target.read_text() == "written by the fake\n"
    [tool_result] = fake_model.tool_results("write")
    assert tool_result.tool_name == "Write" and not tool_result.is_error


def test_callable_step_sees_the_tool_result(fake_model: FakeModel, run_claude: RunClaude) -> None:
    def react(request: RequestRecord) -> Reply:
        last = request.last_tool_result
        return text(f"tool said {last.content.strip()}" if last else "no tool result")

    fake_model.script("react", [bash("echo secret-42"), react])
    run = run_claude(f"Echo. {marker('react')}", *WORKER_FLAGS)

    assert run.returncode == 0, run.stderr
    assert run.result["result"] == "tool said secret-42"


def test_two_sessions_overlap_with_their_own_scripts(fake_model: FakeModel, start_claude: RunClaude) -> None:
    for name in ("alpha", "beta"):
        fake_model.script(name, [delay(1.5, bash(f"echo {name}")), text(f"{name} done")])
    processes = {name: start_claude(f"Work. {marker(name)}", *WORKER_FLAGS) for name in ("alpha", "beta")}
    runs = {name: process.finish(timeout=60) for name, process in processes.items()}

    for name, run in runs.items():
        assert run.returncode == 0, run.stderr
        assert run.result["result"] == f"{name} done"
    assert runs["alpha"].result["session_id"] != runs["beta"].result["session_id"]
    slow_alpha = fake_model.requests_for("alpha")[0]
    slow_beta = fake_model.requests_for("beta")[0]
    assert slow_alpha.finished - slow_alpha.arrived >= 1.4
    assert slow_alpha.overlaps(slow_beta)
    assert [t.content for t in fake_model.tool_results("alpha")] == ["alpha"]
    assert [t.content for t in fake_model.tool_results("beta")] == ["beta"]


def test_a_subagent_plays_its_own_script_and_its_answer_reaches_the_parent(
        fake_model: FakeModel, run_claude: RunClaude, git_repo: Path) -> None:
    """An Agent call whose prompt has a marker: the subagent plays that script
    (2.1.197 runs it in the foreground, 2.1.332 in the background, its answer
    then coming to the parent as a task notification, not a tool result)."""
    fake_model.script("child", [write(str(git_repo / "child.txt"), "from child"), text("child finished")])
    parent = fake_model.script("parent", [
        tool("Agent", {"description": "write a file", "prompt": marker("child") + " write child.txt",
                       "subagent_type": "general-purpose"}),
        text("parent done")])
    run = run_claude(f"{parent} delegate", "--permission-mode", "bypassPermissions", timeout=120)
    assert run.returncode == 0, run.stderr
    assert (git_repo / "child.txt").read_text() == "from child"
    children = fake_model.requests_for("child")
    assert children and all(r.subagent for r in children)
    assert [t.tool_name for r in children for t in r.tool_results] == ["Write"]
    assert "child finished" in fake_model.told("parent")
