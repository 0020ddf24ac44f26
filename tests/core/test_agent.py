"""agent.py: the Claude Code command line, and its stream-json read on real CLI output (tests/samples)."""
from __future__ import annotations

import pytest

from conftest import SAMPLES, bounded
from envoy import agent


@pytest.mark.parametrize("sample,reason", [("success.jsonl", None), ("max-turns.jsonl", "max_turns"),
                                           ("api-error-500.jsonl", "api_error"), ("permission-denied.jsonl", None),
                                           ("hook-blocked.jsonl", None)])
def test_outcome_of_real_cli_output(sample, reason):
    found = agent.outcome(SAMPLES / sample)
    assert found["session_id"] and found["result"]["session_id"] == found["session_id"]
    assert agent.failure_reason(found["result"]) == reason


def test_denials_from_real_output():
    found = agent.outcome(SAMPLES / "permission-denied.jsonl")
    assert agent.denials(found["result"]) == [{"tool": "Bash", "input": "echo denied > d.txt"}]


def test_transcript_of_real_output():
    lines = agent.transcript(SAMPLES / "success.jsonl")
    assert lines[0].startswith("== session e7644995")
    assert lines[1].startswith("-> Bash: echo hi > hi.txt")
    assert "Added hi.txt and committed it." in lines
    assert lines[-1].startswith("== success: 2 turns")
    blocked = agent.transcript(SAMPLES / "hook-blocked.jsonl")
    assert any(line.startswith("   ! PreToolUse:Bash hook error") for line in blocked)


def test_no_result_and_cut_lines(tmp_path):
    log = tmp_path / "1.jsonl"
    log.write_text((SAMPLES / "success.jsonl").read_text().splitlines()[0] + '\n{"type":"assis')
    found = agent.outcome(log)
    assert found["result"] is None and agent.failure_reason(None) == "no_result"
    assert agent.outcome(tmp_path / "missing.jsonl") == {"session_id": None, "result": None}


def test_command_puts_variadic_tools_last():
    argv = agent.command("claude", session_id="s", resume=False, system_prompt="p", permission_mode="acceptEdits",
                         allowed_tools=["Edit", "Bash(git commit:*)"], max_turns=3)
    assert argv[-3:] == ["--allowedTools", "Edit", "Bash(git commit:*)"]
    assert "--session-id" in argv and "--resume" not in argv
    resumed = agent.command("claude", session_id="s", resume=True, system_prompt="p", permission_mode="plan",
                            allowed_tools=[])
    assert resumed[resumed.index("--resume") + 1] == "s"


def test_allowed_tools_keep_order_without_repeats():
    assert agent.allowed_tools(["Edit", "Bash(git add:*)"], ["Edit", "X"])[:3] == ["Edit", "Bash(git add:*)", "X"]


def test_session_ids_are_random_version_4_uuids():
    import uuid

    ids = {agent.new_session_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_agent_output_nested_too_deep_is_skipped_not_a_crash(tmp_path):
    log = tmp_path / "1.jsonl"
    result = (SAMPLES / "success.jsonl").read_text()
    log.write_text('{"type":"assistant","x":' + "[" * 100_000 + "]" * 100_000 + "}\n" + result)
    assert agent.outcome(log)["result"]["subtype"] == "success"


def test_an_endless_line_of_agent_output_is_read_in_bounded_memory(tmp_path):
    log = tmp_path / "1.jsonl"
    with open(log, "wb") as f:
        f.write(b'{"type":"assistant","junk":"')
        f.truncate(320 << 20)  # more than the process may hold
        f.seek(0, 2)
        f.write(b'"}\n' + (SAMPLES / "success.jsonl").read_bytes())
    proc = bounded(f"from pathlib import Path; from envoy import agent; agent.MAX_LINE = 1 << 20; "
                   f"print(agent.outcome(Path({str(log)!r}))['result']['subtype'])", limit=256 << 20)
    assert proc.stdout.strip() == "success", proc.stderr[-500:]
