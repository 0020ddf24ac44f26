"""left.py: what a worker left, read from real CLI transcripts (tests/samples) and
shaped ones; the rule that would allow a denied call."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from envoy import agent
from envoy.worker import left

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def seen(log: Path) -> dict:
    return left.from_transcript(log, agent.outcome(log)["result"])


def test_a_real_denial_and_a_real_hook_block_are_told_apart():
    assert seen(SAMPLES / "permission-denied.jsonl") == {
        "denied": [{"tool": "Bash", "input": "echo denied > d.txt"}], "hook_blocks": [], "commit_failed": None}
    assert seen(SAMPLES / "hook-blocked.jsonl") == {
        "denied": [], "hook_blocks": [{"tool": "Bash", "input": "echo x"}], "commit_failed": None}
    assert seen(SAMPLES / "success.jsonl") == {"denied": [], "hook_blocks": [], "commit_failed": None}


def transcript(tmp_path: Path, *steps: tuple[str, str, bool, str], result: bool = True) -> Path:
    """A stream-json log of Bash calls: (id, command, is_error, tool result text)."""
    lines = [{"type": "system", "subtype": "init", "session_id": "s"}]
    for ident, command, failed, text in steps:
        lines.append({"type": "assistant", "message": {"content": [
            {"type": "tool_use", "id": ident, "name": "Bash", "input": {"command": command}}]}})
        lines.append({"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": ident, "is_error": failed, "content": [{"type": "text", "text": text}]}]}})
    if result:
        lines.append({"type": "result", "subtype": "success", "is_error": False, "result": "ok", "permission_denials": []})
    log = tmp_path / "run.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return log


IDENTITY = "Exit code 128\nAuthor identity unknown\n\n*** Please tell me who you are.\nfatal: unable to auto-detect"


@pytest.mark.parametrize("steps, failure", [
    ([("a", "git add -A && git commit -m x", True, IDENTITY)], "Author identity unknown"),
    ([("a", "git -c core.hooksPath=h commit -qm x", True, "Exit code 1\nhook said no")], "hook said no"),
    ([("a", "git commit -m x", True, IDENTITY), ("b", "git commit -m x", False, "[w 1a2b] x")], None),
    ([("a", "git commit -m x", True, "Exit code 1\nnothing to commit, working tree clean")], None),
    ([("a", "echo git commit is what I would run", True, "Exit code 1\nno")], None),
])
def test_only_a_last_git_commit_that_failed_is_a_failed_commit(tmp_path, steps, failure):
    assert left.from_transcript(transcript(tmp_path, *steps), None)["commit_failed"] == failure


@pytest.mark.parametrize("refusal", [
    "sed command requires approval (contains potentially dangerous operations)",  # 2.1.197 and 2.1.332, measured
    "Claude requested permissions to use Bash, but you haven't granted it yet.",
    "Permission to use Bash has been denied.",
])
def test_a_run_cut_short_still_shows_its_denials_from_the_transcript(tmp_path, refusal):
    log = transcript(tmp_path, ("a", "sed -i s/a/b/ f", True, refusal), result=False)
    assert left.from_transcript(log, None)["denied"] == [{"tool": "Bash", "input": "sed -i s/a/b/ f"}]


def test_a_command_that_fails_saying_denied_is_no_denial(tmp_path):
    log = transcript(tmp_path, ("a", "curl https://x", True, "Exit code 22\naccess has been denied (403)"),
                     result=False)
    assert left.from_transcript(log, None) == {"denied": [], "hook_blocks": [], "commit_failed": None}


def test_attention_is_bounded_and_counts_the_rest(tmp_path):
    steps = [(f"t{i}", f"rm -rf b{i}", True, "Permission to use Bash has been denied.") for i in range(500)]
    counts, reasons = left.assess(None, {}, transcript(tmp_path, *steps), None)
    assert counts["denied"] == 500
    assert reasons == ["denied: Bash(rm -rf b0)", "denied: Bash(rm -rf b1)", "denied: Bash(rm -rf b2)",
                       "denied: 497 more"]
    long = [("x", "python3 -c '" + "x" * 500 + "'", True, "Permission to use Bash has been denied.")]
    assert all(len(r) <= left.REASON_CHARS for r in left.assess(None, {}, transcript(tmp_path, *long), None)[1])


@pytest.mark.parametrize("command, rules", [
    ("sed -i s/a/b/ README.md", ["Bash(sed:*)"]),
    ("python3 -m pytest -q tests", ["Bash(python3 -m pytest:*)"]),
    ("cd sub && npm test", ["Bash(npm test:*)"]),
    ("CI=1 cargo test --all | tee log", ["Bash(cargo test:*)", "Bash(tee:*)"]),
    ("./run.sh", ["Bash(./run.sh:*)"]),
])
def test_the_rule_that_would_allow_a_denied_bash_call(command, rules):
    assert left.rules_for({"tool": "Bash", "input": command}) == rules


def test_the_rule_for_another_tool_is_its_name():
    assert left.rules_for({"tool": "WebFetch", "input": "https://example.com"}) == ["WebFetch"]
