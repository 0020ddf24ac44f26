"""`envoy discover`: parallel read-only streams, driven through the fake agent
(tests/fake_claude.py: `@as ROLE ...` scripts one stream, `@structured` its answer)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import Result, structured

from envoy.discovery import roles

Envoy = Callable[..., Result]


def records(directory: Path) -> dict[str, dict[str, Any]]:
    """What the fake agent was run with, by stream role."""
    found = {}
    for file in directory.glob("*.json"):
        record = json.loads(file.read_text())
        found[record["env"]["ENVOY_DISCOVERY"]] = record
    return found


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_three_streams_run_at_once_read_only(envoy: Envoy, tmp_path: Path) -> None:
    stamps, recorded = tmp_path / "stamps", tmp_path / "record"
    stamps.mkdir()
    recorded.mkdir()
    task = f"Where is the login handled? TASK-TOKEN\n@stamp {stamps}\n@sleep 1.5"
    started = time.monotonic()
    result = envoy("discover", task, "--model", "opus", "--max-words", "120",
                   env={"FAKE_CLAUDE_RECORD": str(recorded), "CLAUDECODE": "1", "CLAUDE_CODE_ENTRYPOINT": "cli"})
    elapsed = time.monotonic() - started
    assert result.code == 0, result.stdout + result.stderr
    data = result.data
    assert [s["role"] for s in data["streams"]] == ["explorer", "curator", "researcher"]
    assert all(s["error"] is None and s["session_id"] for s in data["streams"])
    assert data["streams"][0]["findings"][0]["title"] == "explorer finding"

    # Every stream started before any ended: they ran at the same time, not one after another.
    starts = [float(p.read_text()) for p in stamps.glob("*.start")]
    ends = [float(p.read_text()) for p in stamps.glob("*.end")]
    assert len(starts) == len(ends) == 3
    assert max(starts) < min(ends)
    assert elapsed < 3 * 1.5 + 3

    runs = records(recorded)
    assert set(runs) == {"explorer", "curator", "researcher"}
    for role, run in runs.items():
        argv = run["argv"]
        assert run["task"] == task and not any("TASK-TOKEN" in a for a in argv)  # stdin, never argv
        assert flag(argv, "--permission-mode") == "plan"
        assert flag(argv, "--model") == "opus"
        assert flag(argv, "--tools") == ("Read,Grep,Glob,WebSearch,WebFetch" if role == "researcher"
                                         else "Read,Grep,Glob")
        schema = json.loads(flag(argv, "--json-schema"))
        assert set(schema["properties"]) == {"findings", "open_questions"}
        prompt = flag(argv, "--append-system-prompt")
        assert roles.BUILT_IN[role].scope in prompt and "at most 120 words" in prompt
        assert "--allowedTools" not in argv and "acceptEdits" not in argv
        assert "CLAUDECODE" not in run["env"] and "CLAUDE_CODE_ENTRYPOINT" not in run["env"]


def test_streams_run_at_the_checkout_top_from_a_subdirectory(envoy: Envoy, repo: Path, tmp_path: Path) -> None:
    recorded = tmp_path / "record"
    recorded.mkdir()
    (repo / "src").mkdir()
    result = envoy("discover", "what is here", "--roles", "explorer,curator", cwd=repo / "src",
                   env={"FAKE_CLAUDE_RECORD": str(recorded)})
    assert result.code == 0
    assert {r["cwd"] for r in records(recorded).values()} == {str(repo)}


def test_json_report_aggregates_findings_and_conflicts(envoy: Envoy, repo: Path) -> None:
    explorer = structured(("Login lives in auth.py", "handle_login is the entry point", ["auth.py:12"]),
                          ("CLI entry", "cli.py dispatches", ["cli.py"]), questions=("Is SSO in scope?",))
    curator = structured(("Reuse the session helper", "auth.py already wraps sessions", [f"{repo}/auth.py:40"]),
                         ("Same claim", "cli.py dispatches", ["./cli.py:3"]))
    task = (f"login?\n@as explorer @structured {explorer}\n@as curator @structured {curator}\n"
            "@as researcher @structured none\n@as researcher @result Use the requests docs, section 4.")
    data = envoy("discover", task).data
    by_role = {s["role"]: s for s in data["streams"]}
    assert by_role["explorer"]["findings"][0] == {"title": "Login lives in auth.py",
                                                  "detail": "handle_login is the entry point", "files": ["auth.py:12"]}
    assert by_role["explorer"]["open_questions"] == ["Is SSO in scope?"]
    # No structured output: the raw answer is kept as one finding, not lost.
    assert by_role["researcher"]["findings"] == [
        {"title": "answer (not structured)", "detail": "Use the requests docs, section 4.", "files": []}]
    assert all(s["cost_usd"] > 0 and s["duration_s"] >= 0 for s in data["streams"])
    assert data["total_cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in data["streams"]))
    # auth.py is cited by two streams with different claims (line numbers and absolute paths
    # do not hide it); cli.py is cited by both with the same claim: not a conflict.
    assert [c["file"] for c in data["conflicts"]] == ["auth.py"]
    assert data["conflicts"][0]["roles"] == ["curator", "explorer"]


def test_answer_given_as_json_text_is_parsed(envoy: Envoy) -> None:
    task = "q\n@structured none\n@result " + structured(("From text", "parsed", ["x.py"]))
    data = envoy("discover", task, "--roles", "explorer,curator").data
    assert [s["findings"][0]["title"] for s in data["streams"]] == ["From text", "From text"]
    assert data["conflicts"] == []  # the same claim twice is no conflict


def test_text_report(envoy: Envoy) -> None:
    explorer = structured(("Entry point", "main() in app.py", ["app.py:1"]))
    curator = structured(("Pattern", "app.py follows the factory pattern", ["app.py"]), questions=("Why?",))
    task = f"map it\n@as explorer @structured {explorer}\n@as curator @structured {curator}\n@as researcher @crash 3"
    result = envoy("discover", task, "--text")
    assert result.code == 0
    text = result.stdout
    assert text.startswith("# Discovery: map it")
    assert "- explorer: **Entry point**: main() in app.py (app.py:1)" in text
    assert "- curator asks: Why?" in text
    conflicts = text[text.index("## Conflicts"):text.index("## Errors")]
    assert "`app.py`" in conflicts and "explorer: Entry point" in conflicts and "curator: Pattern" in conflicts
    assert "researcher: no_result (exit 3)" in text[text.index("## Errors"):]

    quiet = envoy("discover", "map it", "--roles", "explorer,curator", "--text").stdout
    assert "None found: no file is cited by two streams" in quiet and "None: every stream finished." in quiet


def test_failing_and_timing_out_streams_do_not_sink_the_others(envoy: Envoy, tmp_path: Path) -> None:
    recorded = tmp_path / "record"
    recorded.mkdir()
    task = "q\n@as curator @fail error_during_execution\n@as researcher @sleep 60"
    started = time.monotonic()
    result = envoy("discover", task, "--timeout", "2", env={"FAKE_CLAUDE_RECORD": str(recorded)})
    assert time.monotonic() - started < 20
    assert result.code == 0, result.stdout
    by_role = {s["role"]: s for s in result.data["streams"]}
    assert by_role["explorer"]["error"] is None and by_role["explorer"]["findings"]
    assert by_role["curator"]["reason"] == "agent_error"
    assert "scripted error_during_execution" in by_role["curator"]["error"]
    assert by_role["researcher"]["reason"] == "timeout" and "2s" in by_role["researcher"]["error"]
    assert by_role["researcher"]["findings"] == [] and 2 <= by_role["researcher"]["duration_s"] < 15
    pid = records(recorded)["researcher"]["pid"]
    with pytest.raises(ProcessLookupError):  # killed, not left behind
        os.kill(pid, 0)


def test_all_streams_failing_is_exit_1(envoy: Envoy) -> None:
    result = envoy("discover", "q\n@as explorer @crash 3\n@as curator @api-error 500", "--roles", "explorer,curator")
    assert result.code == 1
    error = result.error
    assert error["type"] == "discovery_failed"
    assert "explorer: no_result (exit 3)" in error["message"] and "curator: api_error" in error["message"]
    assert [s["reason"] for s in error["streams"]] == ["no_result", "api_error"]

    text = envoy("discover", "q\n@crash 2", "--roles", "explorer,curator", "--text")
    assert text.code == 1 and "every discovery stream failed" in text.stderr


@pytest.mark.parametrize("args, words", [
    (("--roles", "explorer"), "2-4 perspectives"),
    (("--roles", "explorer,curator,researcher,a,b"), "2-4 perspectives"),
    (("--roles", "explorer,explorer"), "name each role once"),
    (("--roles", "explorer,nope"), "explorer, curator, researcher"),
    (("--roles", "explorer,../etc/x"), "explorer, curator, researcher"),
    (("--max-words", "0"), "--max-words"),
    (("--timeout", "-1"), "--timeout"),
])
def test_refusals(envoy: Envoy, tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    recorded = tmp_path / "record"
    recorded.mkdir()
    result = envoy("discover", "a real task", *args, env={"FAKE_CLAUDE_RECORD": str(recorded)})
    assert result.code == 1
    assert result.error["type"] == "invalid_input"
    assert words in result.error["message"] + result.error["suggestion"]
    assert not list(recorded.iterdir())  # refused before any session started


@pytest.mark.parametrize("args", [("   \n ",), (), ("task", "--task-file", "x")])
def test_task_refusals(envoy: Envoy, args: tuple[str, ...]) -> None:
    result = envoy("discover", *args)
    assert result.code == 1 and result.error["type"] == "invalid_input"
    assert result.error["suggestion"]


def test_task_from_file_and_stdin(envoy: Envoy, repo: Path, tmp_path: Path) -> None:
    recorded = tmp_path / "record"
    recorded.mkdir()
    (tmp_path / "task.md").write_text("from a file\n")
    env = {"FAKE_CLAUDE_RECORD": str(recorded)}
    assert envoy("discover", "--task-file", str(tmp_path / "task.md"), "--roles", "explorer,curator", env=env).code == 0
    assert {r["task"] for r in records(recorded).values()} == {"from a file\n"}
    piped = envoy("discover", "--task-file", "-", "--roles", "explorer,curator", input="from stdin")
    assert piped.data["task"] == "from stdin"
    (tmp_path / "empty.md").write_text("\n")
    empty = envoy("discover", "--task-file", str(tmp_path / "empty.md"))
    assert empty.code == 1 and empty.error["message"] == "the task file is empty"


def test_unknown_role_names_the_project_agents(envoy: Envoy, repo: Path) -> None:
    agents = repo / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "security.md").write_text("---\nname: security\ndescription: threats\n---\nLook for threats.\n")
    error = envoy("discover", "q", "--roles", "explorer,secuirty").error
    assert "security" in error["suggestion"] and error["agents"] == ["security"]


def test_specialist_agent_as_a_fourth_stream(envoy: Envoy, repo: Path, tmp_path: Path) -> None:
    recorded = tmp_path / "record"
    recorded.mkdir()
    agents = repo / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "security.md").write_text(
        "---\nname: security\ndescription: Finds auth and injection risks\ntools: Read, Bash, Write, WebFetch\n"
        "model: opus\n---\nReview the code for security risks: auth, injection, secrets.\n")
    task = "q\n@as security @structured " + structured(("Secrets in .env", "not ignored", [".env"]))
    result = envoy("discover", task, "--roles", "explorer,curator,researcher,security",
                   env={"FAKE_CLAUDE_RECORD": str(recorded)})
    assert result.code == 0, result.stdout
    security = result.data["streams"][3]
    assert security["role"] == "security" and security["source"] == ".claude/agents/security.md"
    assert security["findings"][0]["title"] == "Secrets in .env"
    argv = records(recorded)["security"]["argv"]
    assert flag(argv, "--tools") == "Read,WebFetch"  # Bash and Write dropped: discovery is read-only
    assert "Review the code for security risks" in flag(argv, "--append-system-prompt")
    # The built-in streams are told what the specialist covers, so they leave it alone.
    assert "security (Finds auth and injection risks)" in flag(records(recorded)["explorer"]["argv"],
                                                               "--append-system-prompt")

    (agents / "writer.md").write_text("---\nname: writer\ndescription: writes\ntools: Bash, Write\n---\nWrite.\n")
    refused = envoy("discover", "q", "--roles", "explorer,writer").error
    assert refused["type"] == "invalid_input" and "no read-only tool" in refused["message"]
    (agents / "broken.md").write_text("---\nname: [broken\n---\n")
    broken = envoy("discover", "q", "--roles", "explorer,broken").error
    assert broken["type"] == "invalid_input" and ".claude/agents/broken.md" in broken["message"]
