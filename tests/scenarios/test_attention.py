"""Done means done: what a worker left, and `attention`, through the fake agent and
every verb that shows it (status JSON and text, wait's summary and exit code,
spawn --wait, results with the rule that would allow a denied call)."""
from __future__ import annotations

import json

from conftest import git, wait_finished

ATTENTION = 3  # exit code: all succeeded, some need attention


def test_a_clean_worker_has_no_attention_and_its_row_is_as_small_as_before(repo, envoy):
    done = envoy("parallel", "spawn", "--branch", "clean", "--wait", "--task", "@write a.txt a\n@commit add a")
    assert done.code == 0, done.stdout
    assert "attention" not in done.data and "left" not in done.data
    record = json.loads((repo / ".git" / "envoy" / "workers" / "clean.json").read_text())
    assert record["attention"] == []
    assert record["left"] == {"commits": 1, "uncommitted": 0, "denied": 0, "hook_blocks": 0, "commit_failed": False}
    status = envoy("parallel", "status")
    (row,) = status.data["workers"]
    assert "attention" not in row and "left" not in row and "attention" not in status.data["summary"]
    text = envoy("parallel", "status", "--text").stdout
    assert "!" not in text and "attention" not in text
    waited = envoy("parallel", "wait")
    assert waited.code == 0 and "attention" not in waited.data["summary"]
    (r,) = envoy("parallel", "results").data["results"]
    assert not {"attention", "denied", "allow", "hook_blocks", "commit_failed"} & set(r)


def test_a_denied_call_is_attention_everywhere_with_the_rule_that_would_allow_it(repo, envoy):
    spawned = envoy("parallel", "spawn", "--branch", "sed", "--wait", "--task",
                    "@deny Bash sed -i s/a/b/ README\n@deny Bash python3 -m pytest -q\n@result could not edit")
    assert spawned.code == ATTENTION, spawned.stdout
    assert spawned.data["state"] == "succeeded"
    assert spawned.data["attention"] == ["denied: Bash(sed -i s/a/b/ README)", "denied: Bash(python3 -m pytest -q)"]
    assert spawned.data["left"] == {"denied": 2}  # zero counts left out of a row
    assert "sed needs attention" in spawned.stderr

    status = envoy("parallel", "status")
    assert status.data["summary"]["attention"] == 1 and status.data["summary"]["succeeded"] == 1
    assert status.data["workers"][0]["attention"] == spawned.data["attention"]
    text = envoy("parallel", "status", "--text").stdout
    row = next(line for line in text.splitlines() if " sed " in line)
    assert row.startswith("! sed ")  # the marker column
    assert "! denied: Bash(sed -i s/a/b/ README)" in text and "1 need attention" in text

    waited = envoy("parallel", "wait")
    assert waited.code == ATTENTION and waited.data["summary"]["attention"] == 1

    (r,) = envoy("parallel", "results").data["results"]
    assert [(d["input"], d["rules"]) for d in r["denied"]] == [
        ("sed -i s/a/b/ README", ["Bash(sed:*)"]), ("python3 -m pytest -q", ["Bash(python3 -m pytest:*)"])]
    assert r["allow"]["rules"] == ["Bash(sed:*)", "Bash(python3 -m pytest:*)"]
    assert "--allowed-tools" in r["allow"]["how"] and "permissions.allow" in r["allow"]["how"]
    results_text = envoy("parallel", "results", "--text").stdout
    assert "allow: Bash(sed:*)" in results_text

    # The rule, passed as results says, lets a new worker run it: no denial, no attention.
    allowed = envoy("parallel", "spawn", "--branch", "sed2", "--wait", "--allowed-tools", "Bash(sed:*)",
                    "--task", "@run sed -i s/hello/bye/ README\n@commit edit")
    assert allowed.code == 0, allowed.stdout


def test_uncommitted_work_is_attention_and_a_resume_that_commits_it_clears_it(repo, envoy):
    left = envoy("parallel", "spawn", "--branch", "loose", "--wait", "--task", "@write notes.md n\n@result wrote")
    assert left.code == ATTENTION and left.data["attention"] == ["uncommitted: notes.md"]
    assert left.data["left"] == {"uncommitted": 1}
    resumed = envoy("parallel", "resume", "--worker", "loose", "--wait", "--task", "@commit notes")
    assert resumed.code == 0, resumed.stdout
    assert "attention" not in resumed.data
    assert "attention" not in envoy("parallel", "status").data["workers"][0]


def test_a_failed_git_commit_is_attention_with_what_git_said(repo, envoy):
    no_identity = "GIT_CONFIG_GLOBAL=/dev/null git -c user.useConfigOnly=true commit -qm work"
    done = envoy("parallel", "spawn", "--branch", "nobody", "--wait", "--task",
                 f"@write work.txt w\n@run git add -A && {no_identity}\n@result committed, I think")
    assert done.code == ATTENTION, done.stdout
    reasons = done.data["attention"]
    assert reasons[0].startswith("commit failed: ") and "identity unknown" in reasons[0], reasons
    assert reasons[1] == "uncommitted: work.txt"
    assert done.data["left"] == {"uncommitted": 1, "commit_failed": True}
    (r,) = envoy("parallel", "results").data["results"]
    assert "identity unknown" in r["commit_failed"]


def test_a_commit_that_failed_then_succeeded_needs_no_attention(repo, envoy, tmp_path):
    hook, ok = repo / ".git" / "hooks" / "pre-commit", tmp_path / "ok"
    hook.write_text(f"#!/bin/sh\n[ -e {ok} ] || {{ echo not yet >&2; exit 1; }}\n")
    hook.chmod(0o755)
    done = envoy("parallel", "spawn", "--branch", "retry", "--wait", "--task",
                 f"@write a.txt a\n@commit first try\n@run touch {ok}\n@run git add a.txt && git commit -qm second-try")
    assert done.code == 0, (done.stdout, done.stderr)
    assert git(repo, "log", "--format=%s", "main..retry").split() == ["second-try"]  # the first try failed


def test_wait_is_a_join_over_workers_that_ended_before_it(repo, envoy):
    envoy("parallel", "spawn", "--branch", "broke", "--task", "@crash 3")
    wait_finished(envoy, "broke")
    envoy("parallel", "spawn", "--branch", "fine", "--task", "@sleep 0.5\n@write f f\n@commit f")
    waited = envoy("parallel", "wait")
    assert waited.code == 1 and waited.error["type"] == "worker_failed" and "broke" in waited.error["message"]
    data = waited.json["data"]
    assert {w["name"]: w["state"] for w in data["workers"]} == {"broke": "failed", "fine": "succeeded"}
    assert data["summary"]["failed"] == 1 and data["summary"]["succeeded"] == 1


def test_hundreds_of_denials_keep_rows_bounded(repo, envoy):
    task = "\n".join(f"@deny Bash rm -rf build{i}" for i in range(300)) + "\n@result gave up"
    done = envoy("parallel", "spawn", "--branch", "many", "--wait", "--task", task)
    assert done.code == ATTENTION
    assert done.data["left"] == {"denied": 300}
    assert done.data["attention"] == ["denied: Bash(rm -rf build0)", "denied: Bash(rm -rf build1)",
                                      "denied: Bash(rm -rf build2)", "denied: 297 more"]
    row = envoy("parallel", "status").stdout
    assert len(row) < 1200, len(row)
    (r,) = envoy("parallel", "results").data["results"]
    assert len(r["denied"]) == 300 and r["allow"]["rules"] == ["Bash(rm:*)"]


def test_a_hook_block_is_told_apart_from_a_denial(repo, envoy):
    done = envoy("parallel", "spawn", "--branch", "hooked", "--wait", "--task", "@hook-block Bash npm publish")
    assert done.code == ATTENTION
    assert done.data["attention"] == ["hook blocked: Bash(npm publish)"]
    assert done.data["left"] == {"hook_blocks": 1}


def test_a_failed_worker_is_a_failure_whatever_it_left(repo, envoy):
    done = envoy("parallel", "spawn", "--branch", "turns", "--wait", "--task", "@write x x\n@fail error_max_turns")
    assert done.code == 1 and done.json["data"]["reason"] == "max_turns"
    assert done.json["data"]["attention"] == ["uncommitted: x"]
