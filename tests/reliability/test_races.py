"""Verbs that change the repository, run at the same time, repeated: several
cleanups (of workers whose commits are on each other's branches), a merge, a
spawn and a status, all at once. After each round: nothing lost (a removed
branch's commits are reachable or in a trash ref a cleanup printed), each
removal reported by exactly one cleanup, no orphans, no strays."""
from __future__ import annotations

import time

import pytest

from conftest import git
from invariants import (Answer, answer_of, ask, assert_cleanup_exact, assert_invariants, assert_no_orphans,
                        assert_nothing_lost, launch, settle, snapshot)
from rig import Rig, rig  # noqa: F401 (rig: a fixture)

USER = {"main"}


def chain(rig: Rig) -> None:
    """a (a commit), b after a (from a's tip, no commit of its own: a's commits are on
    b and b's on a), c (a commit, from main)."""
    for args, task in ((("--branch", "a"), "@write a.txt a\n@commit work of a"),
                       (("--after", "a", "--branch", "b"), "@result nothing to add"),
                       (("--branch", "c"), "@write c.txt c\n@commit work of c")):
        ask(rig.repo, "parallel", "spawn", *args, "--task", task).data()
    workers = {w["name"]: w["state"] for w in settle(rig.repo, 60)}
    assert workers == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}, workers
    assert git(rig.repo, "merge-base", "--is-ancestor", "a", "b") == ""


@pytest.mark.parametrize("round_", range(5))
def test_cleanups_merge_spawn_status_at_once(rig, round_):
    """Odd rounds with --force. The two cleanups of a and b are the issue's first case:
    each sees its branch's commits on the other's and must not both delete."""
    chain(rig)
    force = ("--force",) if round_ % 2 else ()
    before = snapshot(rig.repo)
    runs = [("cleanup", "--worker", "a", *force), ("cleanup", "--worker", "b", *force), ("cleanup", *force),
            ("cleanup", *force), ("merge", "--worker", "c"), ("status",),
            ("spawn", "--branch", f"d{round_}", "--task", "@result ok")]
    procs = [(args, launch(rig.repo, "parallel", *args)) for args in runs]
    answers: list[Answer] = [answer_of(proc, ("parallel", *args)) for args, proc in procs]
    reports = []
    for args, answer in zip(runs, answers):
        document = answer.document()
        if args[0] == "cleanup" and document["status"] == "success":
            reports.append(document["data"])
        elif args[0] == "cleanup":
            assert document["error"]["type"] in ("unmerged", "dirty", "not_found", "still_running"), document
    settle(rig.repo)
    after = snapshot(rig.repo)
    assert_nothing_lost(rig.repo, before, after)
    assert_cleanup_exact(before, after, reports, spawned=frozenset({f"d{round_}"}))
    assert_no_orphans(rig.repo, USER, after)
    assert_invariants(rig.repo, before, USER)


def test_merge_into_its_own_branch_then_cleanup(rig):
    """`merge --into` the worker's own branch merges nothing: it must not mark the
    worker merged, so a plain cleanup still keeps its unmerged commits."""
    name = ask(rig.repo, "parallel", "spawn", "--branch", "own", "--wait", "--task",
               "@write o.txt own\n@commit own work").data()["name"]
    before = snapshot(rig.repo)
    ask(rig.repo, "parallel", "merge", "--worker", name, "--into", "own").document()
    answer = ask(rig.repo, "parallel", "cleanup", "--worker", name)
    answer.document()
    assert_nothing_lost(rig.repo, before)
    assert_no_orphans(rig.repo, USER)
    assert_invariants(rig.repo, before, USER)


def test_status_never_shows_more_running_than_the_cap(rig):
    """While a queue of short workers drains through a cap of 2, every status document
    (read as fast as it answers) counts at most 2 starting or running."""
    env = {"PARALLEL_MAX_WORKERS": "2"}
    before = snapshot(rig.repo)
    for i in range(8):
        ask(rig.repo, "parallel", "spawn", "--queue", "--branch", f"q{i}", "--task", "@sleep 0.3", env=env).data()
    seen = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        workers = ask(rig.repo, "parallel", "status", env=env).data()["workers"]
        seen.append(sorted(w["name"] for w in workers if w["state"] in ("starting", "running")))
        if all(w["state"] in ("succeeded", "failed", "lost", "stopped") for w in workers):
            break
    over = [names for names in seen if len(names) > 2]
    assert not over, f"status showed more than the cap of 2 active: {over[:3]} ({len(over)} of {len(seen)} reads)"
    assert [w["state"] for w in settle(rig.repo)] == ["succeeded"] * 8
    assert_invariants(rig.repo, before, USER)
