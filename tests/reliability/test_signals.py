"""land, wait and merge ended by SIGTERM (a CI job cancelled, `timeout`) or SIGHUP (the
terminal closed): they printed nothing (the default action kills at once). Now they
answer with one JSON document (error type `terminated`) and exit 128 + the signal
(143, 129), having undone what they had begun: land's checks ended and its scratch
worktrees removed, merge's target unmoved and its record as it was."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

from conftest import git, wait_until
from invariants import answer_of, ask, assert_nothing_lost, launch, snapshot, worktrees
from rig import rig  # noqa: F401 (rig: a fixture)

SIGNALS = [signal.SIGTERM, signal.SIGHUP]


def committed(rig, branch: str) -> dict:
    slug = branch.replace("/", "-")
    record = ask(rig.repo, "parallel", "spawn", "--branch", branch, "--wait", "--task",
                 f"@write {slug}.txt {slug}\n@commit work of {branch}").data()
    assert record["state"] == "succeeded", record
    return record


def catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (SigCgt in /proc/<pid>/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(caught >> (signum - 1) & 1)


def ended(proc, signum: int) -> dict:
    answer = answer_of(proc, timeout=90)
    document = answer.document()
    assert answer.code == 128 + signum, (answer.code, document)
    assert document["status"] == "error" and document["error"]["type"] == "terminated", document
    return document


@pytest.mark.parametrize("signum", SIGNALS)
def test_land_ended_by_a_signal_answers_once_and_leaves_nothing(rig, tmp_path, signum):
    committed(rig, "feat/a")
    main = git(rig.repo, "rev-parse", "main").strip()
    before = snapshot(rig.repo)
    started = tmp_path / "check-started"
    proc = launch(rig.repo, "parallel", "land", "--check", f"touch {started}; exec sleep 120", new_session=True)
    wait_until(started.exists, 60, 0.05)
    proc.send_signal(signum)
    document = ended(proc, signum)
    assert document["data"]["landed"] == [] and git(rig.repo, "rev-parse", "main").strip() == main
    assert not [t for t in worktrees(rig.repo) if "/envoy/land/" in t.path], "a scratch worktree was left"
    land = rig.state / "land"
    assert not land.exists() or not any(land.iterdir()), list(land.iterdir())
    assert_nothing_lost(rig.repo, before)
    again = ask(rig.repo, "parallel", "land", "--check", "true").data()  # nothing stuck: it lands now
    assert [d["name"] for d in again["landed"]] == ["feat-a"]


@pytest.mark.parametrize("signum", SIGNALS)
def test_wait_ended_by_a_signal_answers_once(rig, tmp_path, signum):
    go = tmp_path / "go"
    name = ask(rig.repo, "parallel", "spawn", "--branch", "feat/slow", "--task", f"@wait-for {go}").data()["name"]
    proc = launch(rig.repo, "parallel", "wait", "--worker", name, new_session=True)
    wait_until(lambda: catches(proc.pid, signum), 30, 0.02)  # its handler is in place: it waits
    proc.send_signal(signum)
    ended(proc, signum)
    go.touch()  # the worker itself was not stopped by it
    record = ask(rig.repo, "parallel", "wait", "--worker", name, "--timeout", "60").data()
    assert record["workers"][0]["state"] == "succeeded"


@pytest.mark.parametrize("signum", SIGNALS)
def test_merge_ended_by_a_signal_moves_nothing_and_records_nothing(rig, signum):
    name = committed(rig, "feat/a")["name"]
    main = git(rig.repo, "rev-parse", "main").strip()
    rig.gate.arm("ref", "refs/heads/main")  # git holds in the ref transaction, locks taken
    proc = launch(rig.repo, "parallel", "merge", "--worker", name, new_session=True)
    try:
        rig.gate.wait_hit("ref")
        proc.send_signal(signum)
        ended(proc, signum)
    finally:
        rig.gate.release("ref")
    assert git(rig.repo, "rev-parse", "main").strip() == main
    assert "merged_into" not in rig.record(name)
    done = ask(rig.repo, "parallel", "merge", "--worker", name).data()  # and it merges on a re-run
    assert done["merged"]
