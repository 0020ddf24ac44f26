"""spawn --batch (batch_run.py, reading in batch.py): many workers from one JSON
Lines file, in one process, on this machine. On a Ray cluster: tests/executors/test_ray_batch.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import git, spawn_done


def batch_lines(*entries) -> str:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries)


def nothing_made(repo, envoy) -> None:
    assert envoy("parallel", "status", "--all").data["workers"] == []
    assert git(repo, "branch", "--format=%(refname:short)").split() == ["main"]


def test_a_batch_starts_what_the_cap_allows_and_queues_the_rest_in_one_answer(repo, envoy, tmp_path):
    env = {"PARALLEL_MAX_WORKERS": "2", "FAKE_CLAUDE_RECORD": str(tmp_path)}
    lines = batch_lines(
        {"branch": "feat/db", "task": "@write db.txt db\n@commit db", "timeout": 600, "model": "opus",
         "max_turns": 9, "permission_mode": "plan", "allowed_tools": "Bash(make:*)", "budget": 2},
        {"branch": "feat/api", "task": "@result api", "after": "feat/db"},  # a later line names an earlier one
        {"branch": "docs", "task": "@result docs", "from": "main"},
        {"branch": "more", "task_file": str(tmp_path / "task.txt")})
    (tmp_path / "task.txt").write_text("@result from a file")
    result = envoy("parallel", "spawn", "--batch", "-", input=lines, env=env)
    assert result.code == 0, result.stdout
    rows = result.data["workers"]
    assert [r["name"] for r in rows] == ["feat-db", "feat-api", "docs", "more"]  # the batch's order
    assert [r["state"] for r in rows].count("queued") >= 2
    assert all(r["state"] in ("starting", "running") for r in rows if r["state"] != "queued")
    assert sorted(r["queue_position"] for r in rows if r["state"] == "queued") == \
        list(range(1, 1 + sum(r["state"] == "queued" for r in rows)))
    assert envoy("parallel", "wait", env=env).code == 0
    views = {w["name"]: w for w in envoy("parallel", "status", "--all").data["workers"]}
    assert views["feat-api"]["base"] == "feat/db"  # it started from its dependency's work
    assert (Path(views["feat-api"]["path"]) / "db.txt").exists()
    calls = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    db = next(c for c in calls if "@write db.txt" in c["task"])
    assert db["argv"][db["argv"].index("--model") + 1] == "opus"
    assert db["argv"][db["argv"].index("--max-turns") + 1] == "9"
    assert db["argv"][db["argv"].index("--permission-mode") + 1] == "plan"
    assert "Bash(make:*)" in " ".join(db["argv"])
    assert any(c["task"] == "@result from a file" for c in calls)


@pytest.mark.parametrize("content, line, words", [
    ("", None, "empty"),
    ("\n\n", None, "empty"),
    ("not json\n", 1, "not JSON"),
    ('{"branch": "a", "task": "x"}\n[1, 2]\n', 2, "not an object"),
    ('\ufeff{"branch": "a", "task": "x"}\n', 1, "byte order mark"),
    ('{"branch": "a", "task": "x"}\r\n', 1, "CRLF"),
    ('{"branch": "a", "task": "x"}\n{"branch": "b", "task": "y", "colour": "red"}\n', 2, "unknown key 'colour'"),
    ('{"branch": "a", "task": "x", "max-turns": 3}\n', 1, "did you mean 'max_turns'"),
    ('{"branch": "a", "task": "x"}\n{"branch": "a", "task": "y"}\n', 2, "also line 2"),
    ('{"branch": "a/b", "task": "x"}\n{"branch": "a-b", "task": "y"}\n', 2, "also line 2"),
    ('{"branch": "bad..name", "task": "x"}\n', 1, "not a valid branch"),
    ('{"branch": "main", "task": "x"}\n', 1, "already exists"),
    ('{"branch": "a", "task": "x", "after": "nobody"}\n', 1, "'nobody'"),
    ('{"branch": "a", "task": "x", "after": "b"}\n{"branch": "b", "task": "y", "after": "a"}\n', 1, "cycle"),
    ('{"branch": "a", "task": "x", "after": "a"}\n', 1, "cycle"),
    ('{"branch": "a", "task": "x", "timeout": -1}\n', 1, "--timeout"),
    ('{"branch": "a", "task": "x", "timeout": "soon"}\n', 1, "number"),
    ('{"branch": "a", "task": "x", "touches": "/etc/passwd"}\n', 1, "absolute"),
    ('{"branch": "a", "task": "x", "touches": ["src/[a"]}\n', 1, "unbalanced"),
    ('{"branch": "a", "task": "x", "from": "nowhere"}\n', 1, "nowhere"),
    ('{"branch": "a"}\n', 1, "give the task once"),
    ('{"task": "x"}\n', 1, "branch"),
    ('{"branch": "a", "task": "x", "permission_mode": "yolo"}\n', 1, "permission_mode"),
    ('{"branch": "a", "task": "x", "budget": NaN}\n', 1, "not JSON"),
])
def test_a_bad_batch_is_refused_whole_naming_its_line(repo, envoy, content, line, words):
    good = '{"branch": "first", "task": "@result ok"}\n'
    result = envoy("parallel", "spawn", "--batch", "-", input=good + content if line else content)
    assert result.code == 1, result.stdout
    error = result.error
    assert words in error["message"] + " " + error.get("suggestion", ""), error
    if line:
        assert error["line"] == line + 1 and f"batch line {line + 1}:" in error["message"]
    nothing_made(repo, envoy)


def test_a_huge_batch_is_refused_quickly_in_bounded_memory(repo, envoy, tmp_path):
    import time

    big = tmp_path / "big.jsonl"
    with big.open("w") as f:
        for i in range(100_000):
            f.write(json.dumps({"branch": f"b{i}", "task": "x" * 100}) + "\n")
    start = time.monotonic()
    result = envoy("parallel", "spawn", "--batch", str(big))
    assert result.code == 1 and "over 1000 tasks" in result.error["message"]
    assert time.monotonic() - start < 10
    from conftest import bounded

    probe = bounded(f"import io, sys\nfrom envoy import batch\ntry:\n    batch.read(open({str(big)!r}, 'rb'))\n"
                    "except Exception as e:\n    print(type(e).__name__, e)\n", limit=200 << 20)
    assert "over 1000 tasks" in probe.stdout, probe.stderr
    nothing_made(repo, envoy)


def test_a_batch_refuses_other_spawn_options_and_unreadable_files(repo, envoy, tmp_path):
    mixed = envoy("parallel", "spawn", "--batch", "-", "--model", "x", input='{"branch": "a", "task": "x"}\n')
    assert mixed.code == 1 and "--model" in mixed.error["message"]
    missing = envoy("parallel", "spawn", "--batch", str(tmp_path / "nope.jsonl"))
    assert missing.code == 1 and missing.error["type"] == "invalid_input"
    assert envoy("parallel", "spawn", "--task", "x").error["type"] == "invalid_usage"  # no --branch
    nothing_made(repo, envoy)


def test_a_batch_may_depend_on_an_existing_worker_and_collides_with_one(repo, envoy):
    spawn_done(envoy, "base-work", "@write a.txt a\n@commit a")
    taken = envoy("parallel", "spawn", "--batch", "-", input=batch_lines({"branch": "base-work", "task": "x"}))
    assert taken.code == 1 and taken.error["type"] == "already_exists"
    ok = envoy("parallel", "spawn", "--batch", "-", input=batch_lines({"branch": "next", "task": "@result n",
                                                                       "after": "base-work"}))
    assert ok.code == 0, ok.stdout
    assert envoy("parallel", "wait").code == 0
