"""results: answer, commits, diffstat, dirt, denials and a readable transcript."""
from __future__ import annotations

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
    assert short["transcript"] == full["transcript"][-3:]
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
