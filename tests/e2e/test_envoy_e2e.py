"""envoy end to end: the built envoy.pyz, run as a user runs it, driving the
real Claude Code CLI against the fake model server. The seed's workflows,
--wait exit statuses, kill -9, copied files, and nesting."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path


from fake_model import FakeModel, bash, delay, http_error, text, write

from conftest import Envoy, git, wait_until
from conftest import wait_finished as finished


def test_side_fix_pattern(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    git(repo, "switch", "-qc", "feature")
    (repo / "feature.txt").write_text("in progress\n")
    git(repo, "add", "feature.txt")
    git(repo, "commit", "-qm", "feature wip")
    marker = fake_model.script("fix", [
        write("hook.py", "def validate():\n    return True\n"),
        bash("git add hook.py && git commit -qm 'Fix hook validation'"),
        text("Fixed the hook validation and committed it."),
    ])
    spawned = envoy("parallel", "spawn", "--branch", "quick/hook-fix", "--from", "main",
                    "--task", f"{marker} Fix hook validation in hook.py")
    assert spawned.code == 0, spawned.stdout
    assert spawned.data["name"] == "quick-hook-fix"

    final = finished(envoy, "quick-hook-fix")
    assert final["state"] == "succeeded", final
    assert final["session_id"] == spawned.data["session_id"]
    assert final["num_turns"] >= 3 and final["cost_usd"] > 0
    main_requests = fake_model.requests_for("fix")
    assert {r.session_id for r in main_requests} == {final["session_id"]}
    # The worker was told where it is and what to do with its work.
    assert "quick/hook-fix" in main_requests[0].system and "commit" in main_requests[0].system

    results = envoy("parallel", "results", "--worker", "quick-hook-fix").data["results"][0]
    assert [c["subject"] for c in results["commits"]] == ["Fix hook validation"]
    assert results["diffstat"] == {"files": 1, "added": 2, "deleted": 0}
    assert results["result"] == "Fixed the hook validation and committed it."
    assert results["permission_denials"] == [] and results["dirty"] is False
    assert any(line.startswith("-> Write:") for line in results["transcript"])

    refused = envoy("parallel", "cleanup", "--worker", "quick-hook-fix")
    assert refused.code == 1 and refused.error["type"] == "unmerged"
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--no-edit", "quick/hook-fix")
    cleaned = envoy("parallel", "cleanup", "--worker", "quick-hook-fix")
    assert cleaned.code == 0 and cleaned.data["removed"][0]["name"] == "quick-hook-fix"
    assert not Path(spawned.data["path"]).exists()


def test_parallel_feature_streams_under_a_cap(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    env = {"PARALLEL_MAX_WORKERS": "2"}
    markers = {name: fake_model.script(name, [delay(2.0), write(f"{name}.txt", name),
                                              bash(f"git add {name}.txt && git commit -qm {name}"), text(f"{name} done")])
               for name in ("api", "db", "ui")}
    first = envoy("parallel", "spawn", "--branch", "feat/api", "--task", f"{markers['api']} api", env=env)
    second = envoy("parallel", "spawn", "--branch", "feat/db", "--task", f"{markers['db']} db", env=env)
    assert first.code == 0 and second.code == 0
    refused = envoy("parallel", "spawn", "--branch", "feat/ui", "--task", f"{markers['ui']} ui", env=env)
    assert refused.code == 1 and refused.error["type"] == "limit_exceeded"
    assert sorted(refused.error["running"]) == ["feat-api", "feat-db"]

    assert finished(envoy, "feat-api")["state"] == "succeeded"
    third = envoy("parallel", "spawn", "--branch", "feat/ui", "--task", f"{markers['ui']} ui", env=env)
    assert third.code == 0, third.stdout
    for name in ("feat-db", "feat-ui"):
        assert finished(envoy, name)["state"] == "succeeded"
    # The fake server saw the first two sessions at work at the same time.
    api, db = fake_model.requests_for("api"), fake_model.requests_for("db")
    assert any(a.overlaps(d) for a in api for d in db)
    results = {r["name"]: r for r in envoy("parallel", "results").data["results"]}
    assert {n: [c["subject"] for c in r["commits"]] for n, r in results.items()} == {
        "feat-api": ["api"], "feat-db": ["db"], "feat-ui": ["ui"]}


def test_spawn_wait_exit_statuses(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    ok = fake_model.script("ok", [text("all good")])
    result = envoy("parallel", "spawn", "--branch", "ok", "--wait", "--task", f"{ok} go")
    assert result.code == 0 and result.data["state"] == "succeeded" and result.data["result"] == "all good"

    turns = fake_model.script("turns", [bash("echo 1"), bash("echo 2"), text("never")])
    result = envoy("parallel", "spawn", "--branch", "turns", "--wait", "--max-turns", "1", "--task", f"{turns} go")
    assert result.code == 1 and result.error["type"] == "worker_failed"
    assert result.json["data"]["reason"] == "max_turns"

    failing = fake_model.script("api500", [http_error(500)])
    started = time.monotonic()
    result = envoy("parallel", "spawn", "--branch", "api", "--wait", "--task", f"{failing} go")
    assert result.code == 1 and result.json["data"]["reason"] == "api_error"
    assert "500" in result.json["data"]["error"]
    assert time.monotonic() - started < 30

    sleepy = fake_model.script("sleepy", [delay(60.0), text("too late")])
    started = time.monotonic()
    result = envoy("parallel", "spawn", "--branch", "slow", "--wait", "--timeout", "2", "--task", f"{sleepy} go")
    assert result.code == 1 and result.json["data"]["reason"] == "timeout"
    assert time.monotonic() - started < 20


def test_kill_9_mid_run(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    env = {"PARALLEL_MAX_WORKERS": "1"}
    marker = fake_model.script("victim", [write("partial.txt", "half"), delay(60.0), text("never")])
    spawned = envoy("parallel", "spawn", "--branch", "victim", "--task", f"{marker} go", env=env).data
    wait_until(lambda: (Path(spawned["path"]) / "partial.txt").exists(), timeout=30)
    record = json.loads((repo / ".git" / "envoy" / "workers" / "victim.json").read_text())
    os.kill(record["agent_pid"], signal.SIGKILL)
    final = finished(envoy, "victim")
    assert final["state"] == "failed" and final["reason"] == "killed"
    assert (Path(spawned["path"]) / "partial.txt").read_text() == "half"  # worktree intact
    again = fake_model.script("after", [text("slot was free")])
    assert envoy("parallel", "spawn", "--branch", "after", "--wait", "--task", f"{again} go", env=env).code == 0


def test_env_and_worktreeinclude_files_reach_the_model(repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    (repo / ".gitignore").write_text(".env\nlocal/\n")
    (repo / ".worktreeinclude").write_text("local/settings.ini\n")
    git(repo, "add", ".gitignore", ".worktreeinclude")
    git(repo, "commit", "-qm", "ignores")
    (repo / ".env").write_text("API_TOKEN=s3cret\n")
    (repo / "local").mkdir()
    (repo / "local" / "settings.ini").write_text("[db]\nport=5433\n")
    marker = fake_model.script("files", [bash("cat .env local/settings.ini"), text("read them")])
    assert envoy("parallel", "spawn", "--branch", "files", "--wait", "--allowed-tools", "Bash(cat:*)",
                 "--task", f"{marker} read the config").code == 0
    (result,) = fake_model.tool_results("files")
    assert not result.is_error
    assert "API_TOKEN=s3cret" in result.content and "port=5433" in result.content


def test_nested_spawn_from_the_model_is_refused(repo: Path, envoy: Envoy, fake_model: FakeModel, pyz: Path) -> None:
    nested = f"python3 {pyz} parallel spawn --branch nested --task 'do more'"
    marker = fake_model.script("nest", [bash(nested), text("could not nest")])
    result = envoy("parallel", "spawn", "--branch", "outer", "--wait", "--allowed-tools", "Bash(python3:*)",
                   "--task", f"{marker} try to nest")
    assert result.code == 0, result.stdout
    (tool_result,) = fake_model.tool_results("nest")
    assert "nesting_blocked" in tool_result.content
    assert not git(repo, "branch", "--list", "nested").strip()


def test_project_allow_rules_reach_the_worker_and_denials_are_reported(
        repo: Path, envoy: Envoy, fake_model: FakeModel) -> None:
    """A new worktree is untrusted, so claude -p would ignore permissions.allow;
    envoy passes the project's rules itself. What is still denied shows in results."""
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text(json.dumps({"permissions": {"allow": ["Bash(python3 -c:*)"]}}))
    git(repo, "add", ".claude/settings.json")
    git(repo, "commit", "-qm", "allow python3 -c")
    marker = fake_model.script("perms", [bash("python3 -c 'print(6 * 7)'"), bash("perl -e 'print 6 * 7'"),
                                         text("tried both")])
    spawned = envoy("parallel", "spawn", "--branch", "perms", "--wait", "--task", f"{marker} go")
    assert spawned.code == 3 and spawned.data["attention"] == ["denied: Bash(perl -e 'print 6 * 7')"], spawned.stdout
    allowed, denied = fake_model.tool_results("perms")
    assert not allowed.is_error and "42" in allowed.content
    assert denied.is_error
    results = envoy("parallel", "results", "--worker", "perms").data["results"][0]
    assert [d["tool"] for d in results["permission_denials"]] == ["Bash"]
    assert "perl -e" in results["permission_denials"][0]["input"]


def test_permission_modes_of_the_newest_cli_are_accepted(repo: Path, envoy: Envoy, fake_model: FakeModel,
                                                         claude_bin: str) -> None:
    """`manual` (2.1.332's name for `default`) is passed through as asked. A CLI
    that lacks it (2.1.197) refuses it at start: the worker fails with its message."""
    version = subprocess.run([claude_bin, "--version"], capture_output=True, text=True, timeout=60).stdout
    lacks_manual = version.startswith("2.1.197")
    ok = fake_model.script("manual", [text("asked nothing")])
    result = envoy("parallel", "spawn", "--branch", "manual", "--wait", "--permission-mode", "manual",
                   "--task", f"{ok} go")
    if lacks_manual:
        assert result.code == 1 and result.error["type"] == "worker_failed", result.stdout
        assert result.json["data"]["reason"] == "no_result", result.stdout
        assert "manual" in result.json["data"]["error"] and "invalid" in result.json["data"]["error"]
        assert fake_model.requests_for("manual") == []
    else:
        assert result.code == 0 and result.data["result"] == "asked nothing", result.stdout
    # `default` still works on both: the oldest CLI's name for it, and a hidden alias on 2.1.332.
    result = envoy("parallel", "spawn", "--branch", "default", "--wait", "--permission-mode", "default",
                   "--task", f"{ok} go")
    assert result.code == 0 and result.data["result"] == "asked nothing", result.stdout


def test_a_denied_call_is_attention_and_a_clean_worker_has_none(repo: Path, envoy: Envoy,
                                                                fake_model: FakeModel) -> None:
    """Done means done, through the real CLI: under the default permissions a worker's
    `sed -i` is denied, the session still ends "success", and envoy says the work needs
    a look (exit 3), naming the call and the rule that would allow it. A worker that
    committed its work ends clean (exit 0)."""
    denied = fake_model.script("sed", [bash("sed -i s/hello/bye/ README"), text("could not edit README")])
    spawned = envoy("parallel", "spawn", "--branch", "sed", "--wait", "--task", f"{denied} edit README")
    assert spawned.code == 3, spawned.stdout
    assert spawned.data["state"] == "succeeded"
    assert spawned.data["attention"] == ["denied: Bash(sed -i s/hello/bye/ README)"], spawned.stdout
    (refused,) = fake_model.tool_results("sed")
    assert refused.is_error
    # The CLI's own words for the refusal are known, also without the result's
    # permission_denials (a run cut short has none).
    from envoy.worker import left
    log = repo / ".git" / "envoy" / "logs" / "sed" / "1.jsonl"
    assert left.from_transcript(log, None)["denied"] == [{"tool": "Bash", "input": "sed -i s/hello/bye/ README"}], \
        refused.content
    results = envoy("parallel", "results", "--worker", "sed").data["results"][0]
    assert [d["rules"] for d in results["denied"]] == [["Bash(sed:*)"]]

    clean = fake_model.script("clean", [write("c.txt", "c\n"), bash("git add c.txt && git commit -qm 'add c'"),
                                        text("committed c")])
    done = envoy("parallel", "spawn", "--branch", "clean", "--wait", "--task", f"{clean} add c")
    assert done.code == 0, done.stdout
    assert "attention" not in done.data
    waited = envoy("parallel", "wait")  # the join counts the earlier worker's attention too
    assert waited.code == 3 and waited.data["summary"]["attention"] == 1
    rows = {w["name"]: w for w in envoy("parallel", "status").data["workers"]}
    assert "attention" not in rows["clean"] and rows["sed"]["left"] == {"denied": 1}
