"""results: answer, commits, diffstat, dirt, denials and a readable transcript."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import wait_finished


def test_results_of_a_worker(repo, envoy):
    envoy("parallel", "spawn", "--branch", "feat/r", "--task",
          "@write one.txt 1\n@commit first\n@write two.txt 2\n@run printf 'x\\ny\\n' >> one.txt\n@commit second\n"
          "@write loose.txt l\n@deny Bash rm -rf /\n@result All done.\nSecond line.")
    wait_finished(envoy, "feat-r")
    (r,) = envoy("parallel", "results").data["results"]
    assert r["name"] == "feat-r" and r["state"] == "succeeded"
    assert r["result"] == "All done.\nSecond line." or r["result"].startswith("All done.")
    assert [c["subject"] for c in r["commits"]] == ["second", "first"]
    assert {f["path"]: (f["added"], f["deleted"]) for f in r["files"]} == {"one.txt": (3, 0), "two.txt": (1, 0)}
    assert r["diffstat"] == {"files": 2, "added": 4, "deleted": 0}
    assert r["dirty"] is True and r["uncommitted"] == ["loose.txt"]
    assert r["permission_denials"] == [{"tool": "Bash", "input": "rm -rf /"}]
    assert r["session_id"] and r["cost_usd"] > 0 and r["num_turns"] >= 5
    assert any(line.startswith("-> Write: one.txt") for line in r["transcript"])
    assert any("git commit" in line for line in r["transcript"])
    assert not any(line.startswith("{") for line in r["transcript"])  # rendered, not raw JSON


def test_tail_bounds_the_transcript(repo, envoy):
    task = "\n".join(f"@run true {i}" for i in range(30))
    envoy("parallel", "spawn", "--branch", "long", "--task", task)
    wait_finished(envoy, "long")
    full = envoy("parallel", "results", "--worker", "long").data["results"][0]
    assert full["transcript_lines"] > 30 and len(full["transcript"]) == min(50, full["transcript_lines"])
    short = envoy("parallel", "results", "--worker", "long", "--tail", "3").data["results"][0]
    # the one-line answer counts in the 3 lines: --tail bounds all that is shown
    assert short["result"] == "done" and short["transcript"] == full["transcript"][-2:]
    none = envoy("parallel", "results", "--worker", "long", "--tail", "0").data["results"][0]
    assert none["transcript"] == []
    assert envoy("parallel", "results", "--tail", "-1").error["type"] == "invalid_input"


def test_results_of_a_failed_worker(repo, envoy):
    envoy("parallel", "spawn", "--branch", "bad", "--task", "@fail error_max_turns")
    wait_finished(envoy, "bad")
    r = envoy("parallel", "results", "--worker", "bad").data["results"][0]
    assert r["state"] == "failed" and r["reason"] == "max_turns"
    assert "error_max_turns" in r["error"]
    assert r["commits"] == [] and r["dirty"] is False


def test_results_while_running(repo, envoy):
    envoy("parallel", "spawn", "--branch", "slow", "--task", "@write a.txt a\n@sleep 30")
    r = envoy("parallel", "results", "--worker", "slow").data["results"][0]
    assert r["state"] == "running"


# -- agent output is untrusted input ------------------------------------------
def strict_json(text: str) -> object:
    """Parse as JSON without NaN or Infinity, which no other JSON reader accepts."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} in the output")
    return json.loads(text, parse_constant=refuse)


GARBAGE = [
    '[1, 2, 3]', '"a string"', '42', 'null', '{"type": 7}', '{not json',
    '{"type":"system","subtype":"init","session_id":["not","a","string"]}',
    '{"type":"system","subtype":"init","session_id":"--dangerously-skip-permissions"}',
    '{"type":"assistant","message":"not a dict"}',
    '{"type":"assistant","message":{"content":"content as a string"}}',
    '{"type":"assistant","message":{"content":[1,"two",null,{"type":"text","text":7},{"type":"tool_use","name":[1],"input":"x"}]}}',
    '{"type":"user","message":{"content":[{"type":"tool_result","is_error":true,"content":[3,{"text":5}]}]}}',
    '{"type":"result","subtype":["x"],"num_turns":{},"total_cost_usd":[]}',
    '{"type":"result","subtype":"success","num_turns":null,"total_cost_usd":null,"result":null}',
    '{"type":"result","subtype":"success","total_cost_usd":NaN,"num_turns":Infinity}',
    '{"type":"result","subtype":"success","total_cost_usd":-5,"num_turns":-1,"permission_denials":"all of them"}',
]


@pytest.mark.parametrize("last", [
    '{"type":"result","subtype":"success","is_error":false,"num_turns":"many","total_cost_usd":"free","result":"ok"}',
    '{"type":"result","subtype":"success","is_error":false,"num_turns":1e400,"total_cost_usd":1e400,"result":{"a":1}}',
    '{"type":"result","subtype":"success","permission_denials":[7,{"tool_name":{},"tool_input":[1]}],"result":"ok"}',
])
def test_malformed_agent_output_never_breaks_the_bookkeeping(repo, envoy, last):
    envoy("parallel", "spawn", "--branch", "sane", "--wait", "--task", "@result fine")
    task = "\n".join(f"@emit {line}" for line in [*GARBAGE, last]) + "\n@emit-hex ff fe 00 c3 28 7b 0a\n@crash 0"
    envoy("parallel", "spawn", "--branch", "odd", "--wait", "--task", task)
    odd = envoy("parallel", "status", "--worker", "odd").data["workers"][0]
    assert odd["state"] == "succeeded"  # its end was recorded: subtype success, exit 0
    assert "cost_usd" not in odd or odd["cost_usd"] == 0
    for args in (("results",), ("results", "--worker", "odd"), ("status",)):
        done = envoy("parallel", *args)
        assert done.code == 0, done.stdout
        strict_json(done.stdout)
        assert envoy("parallel", *args, "--text").code == 0
    results = {r["name"]: r for r in envoy("parallel", "results").data["results"]}
    assert results["sane"]["result"] == "fine" and results["sane"]["cost_usd"] > 0
    assert results["odd"].get("result") in ("ok", None)
    total = envoy("parallel", "results").data["total_cost_usd"]
    assert total == results["sane"]["cost_usd"]
    # The session to resume is the one envoy chose, never a flag the agent made up.
    assert results["odd"]["session_id"].count("-") == 4 and not results["odd"]["session_id"].startswith("-")


def test_huge_lines_and_invalid_utf8_in_the_log(repo, envoy):
    task = "@huge-line 9\n@emit-hex 7b2274797065223a22617373697374616e74227d ff\n@huge-line 0.5\n@result survived"
    done = envoy("parallel", "spawn", "--branch", "big", "--wait", "--task", task)
    assert done.code == 0 and done.data["result"] == "survived"
    r = envoy("parallel", "results", "--worker", "big").data["results"][0]
    assert r["state"] == "succeeded" and r["result"] == "survived"


def test_totals_skip_costs_that_are_not_numbers(repo, envoy):
    envoy("parallel", "spawn", "--branch", "a", "--wait", "--task", "@result ok")
    envoy("parallel", "spawn", "--branch", "b", "--wait", "--task", "@result ok")
    path = repo / ".git" / "envoy" / "workers" / "b.json"
    record = json.loads(path.read_text())
    record.update(cost_usd="free", num_turns="many")
    path.write_text(json.dumps(record))
    a = envoy("parallel", "status", "--worker", "a").data["workers"][0]["cost_usd"]
    for verb in ("status", "results"):
        done = envoy("parallel", verb)
        assert done.code == 0, done.stdout
        total = done.data["summary"]["total_cost_usd"] if verb == "status" else done.data["total_cost_usd"]
        assert total == a
        assert envoy("parallel", verb, "--text").code == 0


def test_a_huge_line_is_skipped_without_being_held_in_memory(tmp_path):
    import tracemalloc

    from envoy import agent

    log = tmp_path / "1.jsonl"
    with open(log, "wb") as f:
        f.write(b'{"type":"system","subtype":"init","session_id":"s-1"}\n')
        f.write(b'{"type":"assistant","message":{"content":"' + b"x" * (6 * agent.MAX_LINE) + b'"}}\n')
        f.write(b'{"type":"result","subtype":"success","result":"after","total_cost_usd":0.5,"num_turns":3}\n')
    tracemalloc.start()
    try:
        found = agent.outcome(log)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found["session_id"] == "s-1" and found["result"]["result"] == "after"
    assert (found["result"]["total_cost_usd"], found["result"]["num_turns"]) == (0.5, 3)
    assert peak < 3 * agent.MAX_LINE  # not the line: a bounded piece of it at a time


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
FIELD = st.sampled_from(["type", "subtype", "message", "content", "result", "num_turns", "total_cost_usd",
                         "is_error", "api_error_status", "errors", "permission_denials", "session_id", "text",
                         "name", "input", "tool_name", "tool_input"])
MESSAGE = st.dictionaries(FIELD, JSON | st.sampled_from(["result", "assistant", "user", "system", "init",
                                                         "success", "text", "tool_use", "tool_result"]), max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(MESSAGE | JSON, max_size=6))
@example([{"type": "system", "subtype": "init", "session_id": "s-1"},  # a real run's shape, always tried
          {"type": "result", "subtype": "success", "result": "done", "total_cost_usd": 0.25, "num_turns": 2}])
def test_any_stream_is_read_and_recorded_without_error(tmp_path_factory, lines):
    from envoy import agent, usage
    from envoy.worker import finish, store
    from envoy.worker.record import problem_with

    tmp = tmp_path_factory.mktemp("stream")
    log = tmp / "1.jsonl"
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    found = agent.outcome(log)
    agent.transcript(log)
    agent.denials(found["result"])
    agent.failure(found["result"], 0, tmp / "1.err")
    records = store.State(tmp)
    records.ensure()
    record = {"name": "w", "branch": "w", "path": str(tmp / "w"), "state": "running", "session_id": "s"}
    runs = lines[0] if lines else None
    if problem_with({**record, "runs": runs}, "w") is None:  # else it is a broken record, shown as such
        record["runs"] = runs
    records.write(record)
    finish.record_end(records, "w", 1, {"state": "succeeded"}, found["result"])
    ended = records.read("w")  # read back through the checks every reader applies
    assert ended is not None and problem_with(ended, "w") is None, ended
    strict_json(json.dumps(ended))
    assert ended["state"] == "succeeded" and ended["finished_at"]
    assert [r["run"] for r in ended["runs"] if isinstance(r, dict) and r.get("run") == 1] == [1]
    reported = found["result"] or {}
    answer = reported.get("result")
    assert ended["result"] == (answer if isinstance(answer, str) else None)
    cost = reported.get("total_cost_usd")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and 0 <= cost <= usage.MAX_COST_USD:
        assert ended["runs"][-1]["cost_usd"] == float(cost)  # a sane cost is kept as reported
    else:
        assert ended["runs"][-1]["cost_usd"] is None  # any other is no cost, never a guess
    assert isinstance(ended["cost_usd"], float) and math.isfinite(ended["cost_usd"]) and ended["cost_usd"] >= 0


def test_malformed_discovery_streams_are_reported(repo, envoy):
    bad = '{"type":"result","subtype":"success","num_turns":"many","total_cost_usd":"free","result":["x"]}'
    task = f"what is here?\n@as explorer @emit {bad}\n@as explorer @crash 0\n@as curator @emit {GARBAGE[9]}"
    done = envoy("discover", task, "--roles", "explorer,curator")
    assert done.code == 0, done.stdout
    strict_json(done.stdout)
    streams = {s["role"]: s for s in done.data["streams"]}
    assert streams["curator"]["error"] is None and streams["curator"]["findings"]
    assert streams["explorer"]["cost_usd"] is None and done.data["total_cost_usd"] == streams["curator"]["cost_usd"]


def test_results_stay_small_whatever_the_agent_wrote(repo, envoy):
    envoy("parallel", "spawn", "--branch", "loud", "--wait", "--task", "@huge-line 1\n@huge-line 1\n@result short")
    for args in (("results",), ("results", "--worker", "loud"), ("status",)):
        done = envoy("parallel", *args)
        assert done.code == 0 and len(done.stdout) < 100_000, (args, len(done.stdout))
    (r,) = envoy("parallel", "results").data["results"]
    assert r["result"] == "short" and r["transcript"][1].startswith("xxx") and r["transcript"][1].endswith("…")


def test_results_of_a_fleet_fold_to_what_needs_someone(repo, envoy, tmp_path):
    from conftest import kill
    from conftest import fleet_of_records

    holder = fleet_of_records(repo, tmp_path, count=120, running=0, failed=6, attention=4, merged=60)
    try:
        result = envoy("parallel", "results")
        assert len(result.stdout.encode()) <= 4096, len(result.stdout.encode())
        data = result.data
        rows = data["results"]
        assert [r["state"] for r in rows[:6]] == ["failed"] * 6
        assert data["folded"]["rows"] + len(rows) == 120 and data["folded"]["all"] == "envoy parallel results --all"
        assert abs(data["total_cost_usd"] - 120 * 0.0123) < 1e-6
        every = envoy("parallel", "results", "--all", "--tail", "0").data
        assert len(every["results"]) == 120 and "folded" not in every
    finally:
        kill(holder)


def long_answer_task(lines: int) -> str:
    answer = "\n".join(f"answer line {i}" for i in range(1, lines + 1))
    assistant = {"type": "assistant", "session_id": "s", "message": {"id": "m9", "type": "message", "role": "assistant",
                                                                       "content": [{"type": "text", "text": answer}]}}
    result = {"type": "result", "subtype": "success", "is_error": False, "result": answer, "num_turns": 2,
              "session_id": "s", "total_cost_usd": 0.01, "permission_denials": []}
    return f"@write a.txt a\n@emit {json.dumps(assistant)}\n@emit {json.dumps(result)}\n@crash 0"


def test_the_final_answer_is_shown_once_not_again_in_the_transcript(repo, envoy):
    envoy("parallel", "spawn", "--branch", "w", "--task", long_answer_task(8))
    wait_finished(envoy, "w")
    (r,) = envoy("parallel", "results").data["results"]
    assert r["result"].splitlines()[-1] == "answer line 8"
    assert not any("answer line" in line for line in r["transcript"]), r["transcript"]
    assert any("final answer" in line for line in r["transcript"])
    text = envoy("parallel", "results", "--text").stdout
    assert text.count("answer line 8") == 1


def test_tail_bounds_the_answer_and_the_transcript_together(repo, envoy):
    envoy("parallel", "spawn", "--branch", "w", "--task", long_answer_task(40))
    wait_finished(envoy, "w")
    (r,) = envoy("parallel", "results", "--tail", "5").data["results"]
    assert r["result"].splitlines() == [f"answer line {i}" for i in range(36, 41)]
    assert r["result_lines"] == 40 and r["transcript"] == []
    (r,) = envoy("parallel", "results", "--tail", "45").data["results"]
    assert len(r["result"].splitlines()) == 40 and "result_lines" not in r
    assert 1 <= len(r["transcript"]) <= 5
    text = envoy("parallel", "results", "--tail", "5", "--text").stdout
    assert "answer line 35" not in text and "answer line 40" in text and "40 lines" in text
