"""Pure functions: names, stream-json parsing (on real CLI output), settings."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envoy import agent
from envoy.worker import store
from envoy.worker.record import worker_name
from envoy.config import Config
from envoy.errors import EnvoyError


@pytest.mark.parametrize("branch,name", [("quick/hook-fix", "quick-hook-fix"), ("feat/api//v2", "feat-api-v2"),
                                         ("Fix_it.now", "Fix_it.now"), ("a/ü/b", "a-b"), ("-x-", "x")])
def test_worker_name(branch, name):
    assert worker_name(branch) == name


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


def test_config_reads_env_block_and_allow_rules(tmp_path):
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(
        {"env": {"PARALLEL_MAX_WORKERS": "4"}, "permissions": {"allow": ["A", "B"]}}))
    (tmp_path / ".claude" / "settings.local.json").write_text(json.dumps({"permissions": {"allow": ["C", "A"]}}))
    config = Config(tmp_path, environ={})
    assert config.get("PARALLEL_MAX_WORKERS") == 4
    assert config.get("PARALLEL_WORKER_PREFIX") == "claude-worker-"
    assert config.allow_rules() == ["A", "B", "C"]
    with pytest.raises(EnvoyError) as exc:
        Config(tmp_path, environ={"PARALLEL_WORKER_PREFIX": "a/b"}).get("PARALLEL_WORKER_PREFIX")
    assert exc.value.kind == "invalid_config"


@pytest.mark.parametrize("name,plain", [("feat/x", True), ("fix_1.2-rc", True), ("a/b/c", True),
                                        (".x", False), ("x.lock", False), ("a/b.lock/c", False), ("a..b", False),
                                        ("-x", False), ("x/", False), ("x.", False), ("HEAD", False), ("a b", False),
                                        ("a@{1}", False), ("ü", False), ("", False)])
def test_plain_branch_names_are_judged_without_git(name, plain):
    from envoy.git import _plain_branch_name

    assert _plain_branch_name(name) is plain


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab-_./@{}~^:?*[\\ lockHEAD", max_size=12))
def test_a_plain_branch_name_is_one_git_accepts(name):
    """The fast path never accepts what git would refuse (refusing more only costs a git call)."""
    from envoy.git import _plain_branch_name

    if _plain_branch_name(name):
        accepted = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True).returncode == 0
        assert accepted, name


def test_session_ids_are_random_version_4_uuids():
    import uuid

    ids = {agent.new_session_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_json_output_is_valid_json_even_with_non_finite_numbers():
    from envoy import output

    text = output.dumps({"cost": float("nan"), "runs": [{"t": float("inf")}, 1.5], "n": -float("inf")})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == \
        {"cost": None, "runs": [{"t": None}, 1.5], "n": None}


def test_records_are_written_as_valid_json_even_with_non_finite_numbers(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    records.write({"name": "w", "cost_usd": float("nan"), "options": {"timeout_s": float("inf")}})
    text = records.record_path("w").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == \
        {"name": "w", "cost_usd": None, "options": {"timeout_s": None}}


def test_agent_output_nested_too_deep_is_skipped_not_a_crash(tmp_path):
    log = tmp_path / "1.jsonl"
    result = (SAMPLES / "success.jsonl").read_text()
    log.write_text('{"type":"assistant","x":' + "[" * 100_000 + "]" * 100_000 + "}\n" + result)
    assert agent.outcome(log)["result"]["subtype"] == "success"


def test_the_last_line_of_a_huge_stderr_is_read_from_its_end(tmp_path):
    err = tmp_path / "1.err"
    with open(err, "wb") as f:
        f.truncate(3 << 30)  # 3 GiB of NULs without a newline, sparse
        f.seek(0, 2)
        f.write(b"\nfatal: the real reason\n\n")
    proc = bounded(f"from envoy.worker.store import last_line; print(last_line({str(err)!r}))")
    assert proc.stdout.strip() == "fatal: the real reason", proc.stderr[-500:]


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


def test_a_discovery_answer_nested_too_deep_is_prose_not_a_crash():
    from envoy.discovery import findings

    deep = "[" * 100_000 + "]" * 100_000
    found, _ = findings.parse({"result": deep})
    assert found == [{"title": "answer (not structured)", "detail": deep, "files": []}]


def test_a_queued_workers_saved_environment_that_is_a_fifo_does_not_hang_the_queue(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    os.mkfifo(records.run_dir("w") / "spawn-env.json")
    proc = bounded(f"from pathlib import Path; from envoy.worker import queue, store; "
                   f"print(queue._take_env(store.State(Path({str(tmp_path)!r})), 'w'))")
    assert proc.returncode == 1 and "saved environment of w" in proc.stderr, proc.stderr[-500:]  # refused, at once
