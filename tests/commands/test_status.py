"""status tells the truth, and names it refuses to guess at are refused."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ENVOY_SOURCE, wait_finished

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
