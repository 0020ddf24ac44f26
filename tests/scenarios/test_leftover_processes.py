"""No process of a worker outlives its run: not the agent's tool subprocesses, not
what they double-fork into sessions of their own, not the setup command's
children, however the run ends (by itself, or its supervisor killed with -9).
And envoy never signals a process that is not the worker's."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import wait_finished, wait_until

LEFT: list[int] = []  # pids a test saw, killed at its end if envoy did not (a failing test leaks nothing)


@pytest.fixture(autouse=True)
def no_leftovers():
    yield
    for pid in LEFT:
        if running(pid):
            os.kill(pid, signal.SIGKILL)
    LEFT.clear()


def running(pid: int) -> bool:
    """Alive and not a zombie (a dead process its new parent has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def pid_in(path: Path) -> int:
    wait_until(path.exists, timeout=30)
    LEFT.append(int(path.read_text()))
    return LEFT[-1]


def record_of(repo: Path, name: str) -> dict:
    return json.loads((repo / ".git" / "envoy" / "workers" / f"{name}.json").read_text())


def sleeper(pidfile: Path) -> str:
    """A shell command that becomes `sleep 300` once its pid is in `pidfile`."""
    return f"sh -c 'echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec sleep 300'"


def background(pidfile: Path) -> str:
    return f"{sleeper(pidfile)} >/dev/null 2>&1 &"


def test_what_an_agent_leaves_behind_ends_with_its_run(repo, envoy, tmp_path):
    stray, in_group = tmp_path / "stray.pid", tmp_path / "group.pid"
    envoy("parallel", "spawn", "--branch", "w", "--task",
          f"@stray {stray}\n@run {background(in_group)}\n@wait-for {in_group}\n@result ok")
    assert wait_finished(envoy, "w")["state"] == "succeeded"
    pids = [pid_in(stray), pid_in(in_group)]
    wait_until(lambda: not any(map(running, pids)), timeout=10)


def test_killing_the_supervisor_leaves_no_process_of_the_worker(repo, envoy, tmp_path):
    stray, in_group, go = tmp_path / "stray.pid", tmp_path / "group.pid", tmp_path / "go"
    envoy("parallel", "spawn", "--branch", "w", "--task",
          f"@stray {stray}\n@run {background(in_group)}\n@wait-for {go}\n@result ok")
    pids = [pid_in(stray), pid_in(in_group)]
    record = wait_until(lambda: (r := record_of(repo, "w")).get("agent_pid") and r)
    pids.append(record["agent_pid"])
    os.kill(record["supervisor_pid"], signal.SIGKILL)
    assert wait_finished(envoy, "w")["state"] == "lost"
    wait_until(lambda: not any(map(running, pids)), timeout=10)


def test_killing_the_supervisor_during_setup_leaves_none_of_its_children(repo, envoy, tmp_path):
    escaped, foreground = tmp_path / "escaped.pid", tmp_path / "fg.pid"
    setup = f"setsid {sleeper(escaped)} </dev/null >/dev/null 2>&1 & {sleeper(foreground)}"
    envoy("parallel", "spawn", "--branch", "w", "--setup", setup, "--task", "@result never")
    pids = [pid_in(escaped), pid_in(foreground)]
    os.kill(record_of(repo, "w")["supervisor_pid"], signal.SIGKILL)
    assert wait_finished(envoy, "w")["state"] == "lost"
    wait_until(lambda: not any(map(running, pids)), timeout=10)


def test_a_setup_commands_children_end_with_it(repo, envoy, tmp_path):
    escaped = tmp_path / "escaped.pid"
    setup = f"setsid {sleeper(escaped)} </dev/null >/dev/null 2>&1 & while [ ! -e {escaped} ]; do sleep 0.02; done"
    done = envoy("parallel", "spawn", "--branch", "w", "--wait", "--setup", setup, "--task", "@result ok")
    assert done.data["state"] == "succeeded"
    pid = pid_in(escaped)
    wait_until(lambda: not running(pid), timeout=10)


def test_cleanup_ends_a_process_of_the_worker_and_nothing_else(repo, envoy):
    envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result ok")
    record = record_of(repo, "w")
    # A survivor that carries the worker's run id (started by hand: a finished run left
    # none), and bystanders: same worker name without the id, another run's id.
    env = {**os.environ, "ENVOY_WORKER": "w"}
    survivor = subprocess.Popen(["sleep", "300"], env={**env, "ENVOY_RUN_ID": record["run_id"]}, start_new_session=True)
    named = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    other = subprocess.Popen(["sleep", "300"], env={**env, "ENVOY_RUN_ID": "0" * 24}, start_new_session=True)
    try:
        # A record naming an unrelated process (its pid reused since) must not get it killed either.
        record["agent_pid"] = record["supervisor_pid"] = named.pid
        (repo / ".git" / "envoy" / "workers" / "w.json").write_text(json.dumps(record))
        assert envoy("parallel", "cleanup", "--worker", "w", "--force").code == 0
        assert survivor.wait(timeout=10) == -signal.SIGKILL
        assert named.poll() is None and other.poll() is None
    finally:
        for process in (survivor, named, other):
            process.kill()
            process.wait()


def test_a_lost_worker_is_swept_without_touching_other_workers(repo, envoy, tmp_path):
    go = tmp_path / "go"
    mine, theirs = tmp_path / "mine.pid", tmp_path / "theirs.pid"
    envoy("parallel", "spawn", "--branch", "a", "--task", f"@stray {mine}\n@wait-for {go}")
    envoy("parallel", "spawn", "--branch", "b", "--task", f"@stray {theirs}\n@wait-for {go}")
    a, b = pid_in(mine), pid_in(theirs)
    os.kill(record_of(repo, "a")["supervisor_pid"], signal.SIGKILL)
    assert wait_finished(envoy, "a")["state"] == "lost"
    wait_until(lambda: not running(a), timeout=10)
    assert running(b)
    go.touch()
    assert wait_finished(envoy, "b")["state"] == "succeeded"
    wait_until(lambda: not running(b), timeout=10)


def test_what_a_discovery_stream_leaves_behind_ends_with_the_discovery(repo, envoy, tmp_path):
    stray, in_group = tmp_path / "stray.pid", tmp_path / "group.pid"
    done = envoy("discover", f"what is here?\n@as explorer @stray {stray}\n@as curator @run {background(in_group)}\n"
                             f"@as curator @wait-for {in_group}")
    assert done.code == 0, done.stdout
    pids = [pid_in(stray), pid_in(in_group)]
    wait_until(lambda: not any(map(running, pids)), timeout=10)


def holders(lock: Path) -> list[int]:
    """The processes holding `lock` open."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock) for fd in os.listdir(f"/proc/{pid}/fd")):
                found.append(int(pid))
        except OSError:
            continue
    return found


def stall_queue(repo: Path, running: str) -> None:
    """Kill the queue runner, then the supervisor of `running`: a slot is free and
    nothing that would start the queued workers is left."""
    locks = repo / ".git" / "envoy" / "locks"
    for pid in wait_until(lambda: holders(locks / "runner.lock")):
        os.kill(pid, signal.SIGKILL)
    os.kill(record_of(repo, running)["supervisor_pid"], signal.SIGKILL)
    wait_until(lambda: not holders(locks / f"worker-{running}.lock"))


def test_a_worker_started_from_inside_another_is_not_taken_for_its_process(repo, envoy, tmp_path):
    """A verb run by a worker's agent (status here) may find the queue stalled: the
    queued worker it would start would carry that worker's run id and live in its
    process tree, and die with it. It is left to a process outside any worker."""
    from envoy import processes

    go = tmp_path / "go"
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "a", "--task", f"@wait-for {go}", env=env)
    envoy("parallel", "spawn", "--branch", "q", "--queue", "--task", f"@wait-for {go}", env=env)
    stall_queue(repo, "a")
    inside = {"ENVOY_WORKER": "x", "PARALLEL_WORKER_DEPTH": "1", "ENVOY_RUN_ID": "1234abcd" * 3}
    assert envoy("parallel", "status", env={**env, **inside}).code == 0
    processes.end_run(inside["ENVOY_RUN_ID"])  # that worker ends: everything of its run goes
    go.touch()
    assert wait_finished(envoy, "q")["state"] == "succeeded"


def test_a_worker_started_by_a_process_that_hid_its_run_survives_that_run(repo, envoy, tmp_path):
    """Without its run id, a verb run by a worker's agent does start a stalled queue;
    the new supervisor, orphaned in that worker's process tree, comes to its watcher
    (a subreaper), which must not take it for a stray of its own run."""
    import sys

    from conftest import ENVOY_SOURCE

    go, ran, done = tmp_path / "go", tmp_path / "ran", tmp_path / "done"
    env = {"PARALLEL_MAX_WORKERS": "2"}
    status = f"env -u ENVOY_RUN_ID {sys.executable} {ENVOY_SOURCE} parallel status > {ran}"
    envoy("parallel", "spawn", "--branch", "a", "--task", f"@wait-for {go}\n@run {status}\n@result ok", env=env)
    envoy("parallel", "spawn", "--branch", "b", "--task", f"@wait-for {done}", env=env)
    envoy("parallel", "spawn", "--branch", "q", "--queue", "--task", f"@wait-for {done}", env=env)
    stall_queue(repo, "b")
    go.touch()  # a's agent runs status, which starts q, then a ends
    wait_until(lambda: record_of(repo, "a")["state"] == "succeeded")
    assert record_of(repo, "q")["state"] == "running"
    done.touch()
    assert wait_finished(envoy, "q")["state"] == "succeeded"


def test_a_timed_out_or_stopped_worker_leaves_nothing(repo, envoy, tmp_path):
    late, stopped = tmp_path / "late.pid", tmp_path / "stopped.pid"
    timed = envoy("parallel", "spawn", "--branch", "t", "--wait", "--timeout", "2", "--task", f"@stray {late}\n@sleep 60")
    assert timed.json["data"]["reason"] == "timeout"
    pid = pid_in(late)
    wait_until(lambda: not running(pid), timeout=10)
    envoy("parallel", "spawn", "--branch", "s", "--task", f"@stray {stopped}\n@sleep 60")
    pid = pid_in(stopped)
    assert envoy("parallel", "cleanup", "--worker", "s", "--force").code == 0
    wait_until(lambda: not running(pid), timeout=10)
