"""worker/nesting.py: a process is a worker's by its environment, its place, or its
ancestry; the last holds when a worker scrubs its environment and leaves its worktree."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import ENVOY_SOURCE

ASK = f"import sys; sys.path[:0] = [{str(ENVOY_SOURCE)!r}]; from envoy.worker import nesting; print(nesting.worker_ancestor())"


def scrubbed_child(parent_code: str, env: dict[str, str], cwd: str) -> str:
    """What worker_ancestor says in a grandchild run with `env -i`, under a parent that
    runs `parent_code` first."""
    child = f"subprocess.run(['env', '-i', {sys.executable!r}, '-c', {ASK!r}], check=True)"
    proc = subprocess.run([sys.executable, "-c", f"import subprocess\n{parent_code}\n{child}"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_an_ancestor_started_as_a_worker_makes_a_scrubbed_process_a_workers(tmp_path):
    said = scrubbed_child("", {**os.environ, "ENVOY_WORKER": "w1"}, str(tmp_path))
    assert said.startswith("w1 (an ancestor process")


def test_an_ancestor_holding_a_workers_lock_makes_a_process_a_workers(tmp_path):
    locks = tmp_path / ".git" / "envoy" / "locks"
    locks.mkdir(parents=True)
    hold = f"held = open({str(locks / 'worker-w2.lock')!r}, 'w')"
    assert scrubbed_child(hold, dict(os.environ), str(tmp_path)).startswith("w2 (an ancestor process")


def test_no_worker_among_the_ancestors(tmp_path):
    other = tmp_path / "locks"
    other.mkdir()
    hold = f"held = open({str(other / 'worker-w3.lock')!r}, 'w')"  # not envoy's locks directory
    assert scrubbed_child(hold, {k: v for k, v in os.environ.items() if not k.startswith("ENVOY_")},
                          str(tmp_path)) == "None"
