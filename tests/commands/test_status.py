"""status tells the truth, and names it refuses to guess at are refused."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ENVOY_SOURCE, fleet_of_records, wait_finished

# An agent whose transcript takes a moment to read: 30 MB of stream-json. Its watcher
# frees the slot the moment it exits and records the end while reading it.
BIG_OUTPUT = ("@run python3 -c \"import json; line = json.dumps({'type': 'assistant', 'message': "
              "{'content': [{'type': 'text', 'text': 'x' * 1000}]}}); [print(line) for _ in range(30000)]\"")


def test_status_never_shows_more_running_than_the_cap(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    first = envoy("parallel", "spawn", "--branch", "big", "--task", f"{BIG_OUTPUT}\n@result big", env=env)
    assert first.code == 0, first.stdout
    assert envoy("parallel", "spawn", "--queue", "--branch", "next", "--task", "@sleep 2", env=env).code == 0
    seen = []
    while True:
        summary = envoy("parallel", "status", env=env).data["summary"]
        seen.append((summary["running"], summary["starting"], summary["succeeded"]))
        assert summary["running"] + summary["starting"] <= 1, seen
        if summary["succeeded"] == 2 or len(seen) > 400:
            break
    assert seen[-1][2] == 2, seen


@pytest.mark.parametrize("verb", [["status"], ["results"], ["cleanup"], ["wait"], ["diff"], ["merge"],
                                  ["resume", "--task", "more"]])
def test_an_empty_worker_name_is_refused(repo, envoy, verb):
    wait_finished(envoy, envoy("parallel", "spawn", "--branch", "w", "--task", "@result ok").data["name"])
    result = envoy("parallel", verb[0], "--worker", "", *verb[1:])
    assert result.code == 2 and result.error["type"] == "invalid_usage", result.stdout
    assert "--worker" in result.error["message"]
    assert envoy("parallel", "status").data["summary"]["total"] == 1  # cleanup removed nothing


def test_an_unknown_hook_is_a_usage_error(repo):
    proc = subprocess.run([sys.executable, str(ENVOY_SOURCE), "hook", "bogus"], input="{}", cwd=repo,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "bogus" in proc.stdout and '"invalid_usage"' in proc.stdout
    assert "Traceback" not in proc.stderr


# -- a fleet --------------------------------------------------------------------
def test_a_fleet_of_200_answers_in_4_kb_with_the_rows_that_need_someone(repo, envoy, tmp_path):
    from conftest import kill

    holder = fleet_of_records(repo, tmp_path)
    try:
        env = {"PARALLEL_MAX_WORKERS": "16"}
        result = envoy("parallel", "status", env=env)
        assert len(result.stdout.encode()) <= 4096, len(result.stdout.encode())
        data = result.data
        s = data["summary"]
        assert (s["total"], s["running"], s["failed"], s["succeeded"]) == (200, 10, 20, 170)
        assert abs(s["total_cost_usd"] - 200 * 0.0123) < 1e-6
        rows = data["workers"]
        states = [r["state"] for r in rows]
        failed = states.count("failed")
        assert failed >= 5 and states[:failed] == ["failed"] * failed  # the most urgent first
        assert all(r.get("error") for r in rows[:failed])
        with_attention = [r for r in rows if r.get("attention")]
        assert len(with_attention) >= 5 and with_attention[0]["attention"][0].startswith("uncommitted: notes-")
        unmerged = [r for r in rows if r["state"] == "succeeded" and r.get("merged") is False and not r.get("attention")]
        assert len(unmerged) >= 5 and all(r["name"] >= "w140" for r in unmerged)  # finished, not merged
        running = [r["name"] for r in rows if r["state"] == "running"]
        assert running[:2] == ["w000", "w001"]  # running longest first
        assert not any(r["name"] < "w140" and r["name"] >= "w040" for r in rows)  # merged rows need no one
        folded = data["folded"]
        assert folded["rows"] + len(rows) == 200
        assert sum(folded["by_state"].values()) == folded["rows"]
        assert folded["all"] == "envoy parallel status --all"
        full = envoy("parallel", "status", "--all", env=env).data
        assert len(full["workers"]) == 200 and "folded" not in full
        assert {w["name"] for w in full["workers"]} == {f"w{i:03d}" for i in range(200)}
        one = envoy("parallel", "status", "--worker", "w150", env=env).data
        assert [w["name"] for w in one["workers"]] == ["w150"]
    finally:
        kill(holder)


def test_the_text_table_fits_the_screen_and_says_what_it_folded(repo, envoy, tmp_path):
    from conftest import kill

    holder = fleet_of_records(repo, tmp_path, count=60, running=3, failed=4, attention=2, merged=20)
    try:
        env = {"PARALLEL_MAX_WORKERS": "16", "LINES": "20", "COLUMNS": "120"}
        text = envoy("parallel", "status", "--text", env=env).stdout.splitlines()
        assert len(text) <= 20, text
        assert text[-1].startswith("... ") and "more row(s) folded" in text[-1] and "status --all" in text[-1]
        # a row is its marker column and the worker; the reasons it needs attention are indented under it
        shown = [line[2:].split()[0] for line in text[2:-1] if not line.startswith("    ")]
        assert {f"w{i:03d}" for i in range(3, 7)} <= set(shown)  # every failed one
        folded = int(text[-1].split()[1])
        assert folded + len(shown) == 60
        every = envoy("parallel", "status", "--text", "--all", env=env).stdout.splitlines()
        assert len([line for line in every[2:] if not line.startswith("    ")]) == 60
    finally:
        kill(holder)


def test_the_text_table_shows_how_long_a_running_worker_has_run(repo, envoy, tmp_path):
    envoy("parallel", "spawn", "--branch", "slow", "--task", f"@wait-for {tmp_path / 'go'}")
    import time

    time.sleep(2.2)
    row = next(line.strip() for line in envoy("parallel", "status", "--text").stdout.splitlines()
               if line.strip().startswith("slow "))  # after the attention marker column
    seconds = row.split()[2]
    assert seconds.endswith("s") and int(seconds[:-1]) >= 2, row
    (tmp_path / "go").write_text("")
