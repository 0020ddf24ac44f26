"""Reliability: the cap under repeated races, a fuzzer through spawn's
validation, and status/cleanup racing spawns. Bounded in time."""
from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import git, max_overlap, run_envoy, spawn_many, wait_finished

KNOWN_ERRORS = {"invalid_input", "invalid_usage", "already_exists", "not_found"}


@pytest.mark.parametrize("round_", range(5))
def test_forty_way_race_repeated(repo, envoy, tmp_path, round_):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    results = spawn_many(repo, 40, f"@stamp {stamps}\n@wait-for {tmp_path / 'release'}", env={"PARALLEL_MAX_WORKERS": "3"})
    started = [r.data["name"] for r in results if r.code == 0]
    assert len(started) == 3
    assert all(r.error["type"] == "limit_exceeded" for r in results if r.code != 0)
    (tmp_path / "release").touch()
    for name in started:
        assert wait_finished(envoy, name)["state"] == "succeeded"
    assert max_overlap(stamps) <= 3


branch_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
tricky = st.sampled_from(["/", ".", "..", "-", "~", "^", ":", "?", "*", "[", "\\", " ", "@{", ".lock", "//", "\t"])
branches = st.one_of(
    st.text(alphabet=branch_chars, max_size=30),
    st.lists(st.one_of(st.text(alphabet="abcXYZ019_", min_size=1, max_size=6), tricky), max_size=6).map("".join),
)
tasks = st.one_of(st.text(alphabet=branch_chars, max_size=200), st.just(""), st.just("  \n "), st.just("@result ok"))


def test_fuzzed_branch_names_and_tasks(tmp_path):
    repo = tmp_path / "fuzz"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "init")
    accepted: dict[str, str] = {}
    seen = {"examples": 0}
    env = {"PARALLEL_MAX_WORKERS": "1000", "PARALLEL_WORKTREE_DIR": str(tmp_path / "trees")}

    @settings(max_examples=200, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(branch=branches, task=tasks)
    def one(branch: str, task: str) -> None:
        seen["examples"] += 1
        result = run_envoy("parallel", "spawn", f"--branch={branch}", f"--task={task}", cwd=repo, env=env)
        document = json.loads(result.stdout)  # always one JSON document, never a traceback
        if result.code == 0:
            data = document["data"]
            assert subprocess.run(["git", "check-ref-format", "--branch", branch], cwd=repo,
                                  capture_output=True).returncode == 0
            assert data["branch"] == branch and branch not in accepted.values()
            accepted[data["path"]] = branch
        else:
            assert result.code in (1, 2)
            assert document["error"]["type"] in KNOWN_ERRORS, document
            assert document["error"]["suggestion"]

    one()
    assert seen["examples"] >= 150
    branches_now = set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split("\n")) - {""}
    assert branches_now == {"main", *accepted.values()}
    trees = [line[9:] for line in git(repo, "worktree", "list", "--porcelain").splitlines()
             if line.startswith("worktree ")]
    assert sorted(trees[1:]) == sorted(accepted)
    records = {json.loads(p.read_text())["branch"] for p in (repo / ".git" / "envoy" / "workers").glob("*.json")}
    assert records == set(accepted.values())


def test_status_and_cleanup_racing_spawns(repo, envoy):
    """Readers and a remover running flat out while workers start and end: every
    document parses, no record is ever half-written, no worker goes missing."""
    env = {"PARALLEL_MAX_WORKERS": "8"}
    stop = threading.Event()
    problems: list[str] = []
    removed: set[str] = set()

    def reader() -> None:
        result = envoy("parallel", "status")
        try:
            data = result.data
        except (ValueError, AssertionError) as exc:
            problems.append(f"status: {exc}: {result.stdout[:200]}")
            return
        for w in data["workers"]:
            if w["state"] == "lost":
                problems.append(f"lost worker {w['name']}")

    def remover() -> None:
        result = envoy("parallel", "cleanup")
        try:
            removed.update(r["name"] for r in result.data["removed"])
        except (ValueError, AssertionError) as exc:
            problems.append(f"cleanup: {exc}: {result.stdout[:200]}")

    rounds: dict[str, int] = {}

    def guarded(body, name: str):
        """A thread that dies of anything is a problem reported, never a silent end."""
        def run() -> None:
            try:
                while not stop.is_set():
                    body()
                    rounds[name] = rounds.get(name, 0) + 1
            except BaseException as exc:  # noqa: B036 (the test reports it, below)
                problems.append(f"{name} died: {type(exc).__name__}: {exc}")
        return threading.Thread(target=run)

    threads = [guarded(reader, "reader 1"), guarded(reader, "reader 2"), guarded(remover, "remover")]
    for t in threads:
        t.start()
    spawned = []
    try:
        for i in range(16):
            result = envoy("parallel", "spawn", "--branch", f"r{i}", "--task", "@sleep 0.3\n@result ok", env=env)
            if result.code == 0:
                spawned.append(result.data["name"])
            else:
                assert result.error["type"] == "limit_exceeded"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = {w["name"]: w["state"] for w in envoy("parallel", "status").data["workers"]}
            if all(left.get(n) in (None, "succeeded") for n in spawned):
                break
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not problems, problems[:5]
    assert set(rounds) == {"reader 1", "reader 2", "remover"}, rounds  # each raced at least once
    assert len(spawned) >= 8
    final = {w["name"]: w["state"] for w in envoy("parallel", "status").data["workers"]}
    for name in spawned:
        assert name in removed or final.get(name) == "succeeded", (name, final.get(name))
