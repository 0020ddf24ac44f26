"""PARALLEL_ON_END (spawn --on-end) and the desktop notification: exactly once per
worker that ends, from whichever process records the end, never fatal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ENVOY_SOURCE, wait_finished, wait_until

from envoy.worker import on_end
from envoy.worker.store import State

# Each end appends one line: name, state, run, result file, attention (one line).
RECORDER = ('printf "%s %s %s %s [%s] cwd=%s\\n" "$ENVOY_WORKER" "$ENVOY_STATE" "$ENVOY_RUN" "$ENVOY_RESULT_FILE" '
            '"$(printf %s "$ENVOY_ATTENTION" | tr "\\n" ";")" "$PWD" >> {out}')


def runners_of(repo: Path) -> list[int]:
    """The `envoy _on_end` processes still running for this repository."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"_on_end" in argv and str(repo / ".git").encode() in argv:
            found.append(int(pid))
    return found


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def settle(repo: Path, out: Path, count: int) -> list[str]:
    """The recorded ends, once `count` are there and no runner is left that could add one."""
    wait_until(lambda: len(lines(out)) >= count and not runners_of(repo), timeout=60)
    return lines(out)


def test_on_end_runs_once_with_the_end_in_its_environment(repo, envoy, tmp_path):
    out = tmp_path / "ended.txt"
    record = envoy("parallel", "spawn", "--branch", "feat/one", "--task", "@write x.txt x\n@commit x\n@result fine",
                   "--on-end", RECORDER.format(out=out)).data
    wait_finished(envoy, record["name"])
    for _ in range(3):  # later readers of the record do not announce it again
        envoy("parallel", "status")
    (line,) = settle(repo, out, 1)
    name, state, run, result_file, attention, cwd = line.split(" ")
    assert (name, state, run, attention) == ("feat-one", "succeeded", "1", "[]")
    assert result_file == str(repo / ".git/envoy/logs/feat-one/1.jsonl") and Path(result_file).is_file()
    assert cwd == f"cwd={repo}"
    marker = next((repo / ".git/envoy/logs/feat-one").glob("ended-*"))
    assert marker.stat().st_mode & 0o777 == 0o600


def test_parallel_on_end_setting_and_a_resume_is_a_new_end(repo, envoy, tmp_path):
    out = tmp_path / "ended.txt"
    env = {"PARALLEL_ON_END": RECORDER.format(out=out)}
    record = envoy("parallel", "spawn", "--branch", "again", "--task", "@result one", env=env).data
    wait_finished(envoy, record["name"])
    settle(repo, out, 1)
    assert envoy("parallel", "resume", "--worker", "again", "--task", "@fail error_max_turns", "--wait").code == 1
    ends = settle(repo, out, 2)
    assert [line.split(" ")[1:3] for line in ends] == [["succeeded", "1"], ["failed", "2"]]


def test_once_per_worker_under_concurrent_ends_and_readers(repo, envoy, tmp_path):
    out, go = tmp_path / "ended.txt", tmp_path / "go"
    names = []
    for i in range(4):
        names.append(envoy("parallel", "spawn", "--branch", f"c{i}", "--queue", "--task", f"@wait-for {go}",
                           "--on-end", RECORDER.format(out=out), env={"PARALLEL_MAX_WORKERS": "4"}).data["name"])
    wait_until(lambda: all(r["state"] == "running" for r in envoy("parallel", "status").data["workers"]))
    go.write_text("")
    readers = [subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "status"], cwd=repo,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(6)]
    for name in names:
        wait_finished(envoy, name)
    for reader in readers:
        reader.wait(60)
    ends = settle(repo, out, 4)
    assert sorted(line.split(" ")[0] for line in ends) == sorted(names)


def test_once_when_the_supervisor_is_killed_and_many_find_it_lost(repo, envoy, tmp_path):
    out = tmp_path / "ended.txt"
    record = envoy("parallel", "spawn", "--branch", "doomed", "--task", f"@wait-for {tmp_path / 'never'}",
                   "--on-end", RECORDER.format(out=out)).data
    supervisor = json.loads((repo / ".git/envoy/workers/doomed.json").read_text())["supervisor_pid"]
    os.kill(supervisor, signal.SIGKILL)
    readers = [subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "status"], cwd=repo,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(6)]
    for reader in readers:
        reader.wait(60)
    assert wait_finished(envoy, record["name"])["state"] == "lost"
    (line,) = settle(repo, out, 1)
    assert line.split(" ")[:2] == ["doomed", "lost"]


def test_an_end_whose_recorder_died_before_announcing_is_announced_by_the_next_reader(repo, envoy, tmp_path):
    out = tmp_path / "ended.txt"
    # The recorder's end write is on disk, its announcement never started: as if it
    # was killed between the two (the marker is what a started announcement leaves).
    record = envoy("parallel", "spawn", "--branch", "cut", "--task", "@result x", "--on-end", "true").data
    wait_finished(envoy, record["name"])
    wait_until(lambda: not runners_of(repo) and list((repo / ".git/envoy/logs/cut").glob("ended-*")))
    path = repo / ".git/envoy/workers/cut.json"
    data = json.loads(path.read_text())
    data["options"]["on_end"] = RECORDER.format(out=out)
    data["finished_at"] = "2026-01-02T03:04:05Z"  # a new end: no marker claims it yet
    path.write_text(json.dumps(data))
    assert lines(out) == []
    for _ in range(3):
        envoy("parallel", "status")
    assert [line.split(" ")[:2] for line in settle(repo, out, 1)] == [["cut", "succeeded"]]


def test_a_failing_or_slow_command_is_logged_and_never_fatal(repo, envoy, tmp_path, monkeypatch):
    record = envoy("parallel", "spawn", "--branch", "bad", "--task", "@result x",
                   "--on-end", "echo to-the-log; exit 3").data
    assert wait_finished(envoy, record["name"])["state"] == "succeeded"
    log = repo / ".git/envoy/logs/bad/on-end.log"
    wait_until(lambda: log.exists() and "exited 3" in log.read_text())
    assert "to-the-log" in log.read_text()
    # a command past its time limit is killed (its group), and that is logged
    state = State(repo / ".git")
    data = state.read("bad")
    data["options"]["on_end"] = "sleep 30"
    data["finished_at"] = "2026-01-02T03:04:05Z"
    state.write(data)
    monkeypatch.setattr(on_end, "COMMAND_TIMEOUT", 0.5)
    assert on_end.main([str(repo / ".git"), "bad", on_end.marker_name(data)]) == 0
    assert "killed after 0.5s" in log.read_text()
    assert on_end.main([str(repo / ".git"), "bad", on_end.marker_name(data)]) == 0  # claimed: not again
    assert log.read_text().count("sleep 30") == 1


def test_the_marker_directory_is_never_followed_through_a_symlink(repo, tmp_path):
    state = State(repo / ".git")
    state.ensure()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (state.logs / "w").symlink_to(elsewhere)
    assert on_end.claim(state, "w", "ended-1-1") is False
    assert list(elsewhere.iterdir()) == []
    assert "not a directory" in state.log_file.read_text()


def test_the_environment_carries_attention_and_drops_the_recorders_own(repo):
    state = State(repo / ".git")
    record = {"name": "w", "branch": "feat/w", "state": "succeeded", "path": str(repo.parent / "x-w"),
              "repo": str(repo), "attention": ["denied: Bash(rm -rf /)", "uncommitted: notes.md"],
              "left": {"commits": 2}, "cost_usd": 0.5}
    os.environ["ENVOY_RUN_ID"] = "abc"
    try:
        env = on_end.environment(state, record, 3)
    finally:
        del os.environ["ENVOY_RUN_ID"]
    assert env["ENVOY_ATTENTION"] == "denied: Bash(rm -rf /)\nuncommitted: notes.md"
    assert (env["ENVOY_COMMITS"], env["ENVOY_RUN"], env["ENVOY_BRANCH"]) == ("2", "3", "feat/w")
    assert "ENVOY_RUN_ID" not in env
    assert on_end.environment(state, {**record, "attention": None, "left": None}, 1)["ENVOY_ATTENTION"] == ""


def fake_notify_send(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir, out = tmp_path / "bin", tmp_path / "notified.txt"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / "notify-send"
    tool.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {out}\necho >> {out}\n')
    tool.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, out


def test_a_desktop_notification_where_notify_send_is_on_by_default_off_in_ci(repo, envoy, tmp_path):
    env, out = fake_notify_send(tmp_path)
    for branch, extra in (("desk", {"CI": ""}), ("ci", {"CI": "true"}), ("ci-on", {"CI": "true", "PARALLEL_NOTIFY": "1"}),
                          ("off", {"CI": "", "PARALLEL_NOTIFY": "0"})):
        record = envoy("parallel", "spawn", "--branch", branch, "--task", "@result x", env={**env, **extra}).data
        wait_finished(envoy, record["name"])
    wait_until(lambda: len(lines(out)) >= 2 and not runners_of(repo))
    assert sorted(line.split("|")[1] for line in lines(out)) == ["envoy: worker ci-on ended", "envoy: worker desk ended"]
    assert "desk: succeeded" in lines(out)[0] + lines(out)[-1]
    bad = envoy("parallel", "spawn", "--branch", "b", "--task", "x", env={"PARALLEL_NOTIFY": "maybe"})
    assert bad.code == 1 and bad.error["type"] == "invalid_config"


def test_of_many_runners_started_for_one_end_at_once_exactly_one_runs_it(repo, envoy, tmp_path):
    out = tmp_path / "ended.txt"
    record = envoy("parallel", "spawn", "--branch", "racy", "--task", "@result x", "--on-end", "true").data
    wait_finished(envoy, record["name"])
    wait_until(lambda: not runners_of(repo) and list((repo / ".git/envoy/logs/racy").glob("ended-*")))
    state = State(repo / ".git")
    data = state.read("racy")
    data["options"]["on_end"] = RECORDER.format(out=out)
    data["finished_at"] = "2026-01-02T03:04:05Z"
    state.write(data)
    runners = [subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "_on_end", str(repo / ".git"), "racy",
                                 on_end.marker_name(data)]) for _ in range(8)]
    for runner in runners:
        runner.wait(60)
    assert [line.split(" ")[0] for line in lines(out)] == ["racy"]
