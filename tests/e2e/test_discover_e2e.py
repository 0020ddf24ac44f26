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

from fake_model import FakeModel, RequestRecord, Step, delay, http_error, structured_output, text, write

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
from conftest import Result  # noqa: E402

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

    # Read-only by construction: plan mode, only the role's tools (+ the schema's tool).
    for role, record in first.items():
        web = ["WebFetch", "WebSearch"] if role == "researcher" else []
        assert sorted(record.tool_names) == sorted(["Glob", "Grep", "Read", "StructuredOutput", *web])
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
