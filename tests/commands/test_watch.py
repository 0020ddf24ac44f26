"""`envoy parallel watch`: driven in a real terminal (tmux: send-keys, capture-pane),
and piped (a line per change)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ENVOY_SOURCE, git, wait_finished, wait_until

from envoy.watching.fleet import Fleet
from envoy.worker.workspace import open_workspace

WATCH = f"{sys.executable} {ENVOY_SOURCE} parallel watch"


class Tmux:
    """A tmux server of the test's own (its socket in tmp_path), one window with a shell."""

    def __init__(self, tmp_path: Path, cwd: Path, width: int = 120, height: int = 24) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is needed for these tests (.ci/run installs it: apt-get install tmux)")
        self.socket = str(tmp_path / "tmux.sock")
        env = " ".join(f"{k}={v!r}" for k, v in os.environ.items() if k.startswith(("ENVOY_", "HOME", "GIT_", "PATH")))
        self.run("-f", "/dev/null", "new-session", "-d", "-x", str(width), "-y", str(height), "-s", "t",
                 f"cd {str(cwd)!r} && env -u CI {env} PS1='PROMPT$ ' TERM=screen sh")
        wait_until(lambda: "PROMPT$" in self.screen())

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True, capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "t", *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def shows(self, *texts: str, timeout: float = 30) -> str:
        return wait_until(lambda: (lambda s: s if all(t in s for t in texts) else None)(self.screen()), timeout)

    def alternate(self) -> bool:
        return self.run("display", "-p", "-t", "t", "#{alternate_on}").strip() == "1"

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(tmp_path, repo):
    terminals: list[Tmux] = []

    def make(**kwargs: int) -> Tmux:
        terminals.append(Tmux(tmp_path, repo, **kwargs))
        return terminals[-1]
    yield make
    for terminal in terminals:
        terminal.close()


def spawn_waiting(envoy, tmp_path: Path, branch: str, *extra: str) -> str:
    task = f"@write {branch}.txt hello\n@commit add {branch}\n@wait-for {tmp_path / ('go-' + branch)}\n" + "\n".join(extra)
    return envoy("parallel", "spawn", "--branch", branch, "--task", task).data["name"]


def test_watch_shows_rows_that_change_as_workers_end_and_keys_act(repo, envoy, tmp_path, tmux):
    first, second = spawn_waiting(envoy, tmp_path, "wa"), spawn_waiting(envoy, tmp_path, "wb")
    term = tmux()
    term.keys(WATCH, "Enter")
    screen = term.shows("envoy watch", "wa ", "wb ", "2 running")
    assert term.alternate()
    assert "Bash: git add -A" in term.shows("Bash: git add -A")  # each worker's last action
    (tmp_path / "go-wa").write_text("")
    screen = term.shows("1 running", "1 succeeded")  # updates by itself, no key pressed
    assert [line.split()[1] for line in screen.splitlines() if line.strip().startswith("wa ")] == ["succeeded"]

    # stop asks first; n cancels and nothing runs
    term.keys("Down", "s")
    term.shows("stop worker wb? (y/n)")
    term.keys("n")
    term.shows("cancelled")
    term.keys("s")
    term.shows("stop worker wb? (y/n)")
    term.keys("y")  # `envoy parallel stop` runs, and its answer is shown
    term.shows("envoy parallel stop --worker wb", '"status": "success"', '"state": "stopped"', timeout=60)
    term.keys("q")
    term.shows("LAST ACTION")

    # land the one that succeeded: confirmed, its commit is on main
    term.keys("Up", "L")
    term.shows("land worker wa? (y/n)")
    term.keys("y")
    term.shows("envoy parallel land --worker wa", '"status": "success"', timeout=60)
    assert "add wa" in git(repo, "log", "--format=%s", "main")
    term.keys("Escape")
    term.shows("LAST ACTION")

    term.keys("r")  # results of wa
    term.shows("results of wa", "add wa")
    term.keys("q", "Down", "l")  # log tail of wb
    term.shows("log of wb (run 1)", "-> Write: wb.txt")
    term.keys("q")
    term.shows("LAST ACTION")

    term.run("resize-window", "-t", "t", "-x", "60", "-y", "12")

    def redrawn() -> list[str] | None:
        lines = term.screen().splitlines()
        return lines if len(lines) == 12 and lines[0].startswith("envoy watch") and "↑/↓ select" in lines[11] else None
    lines = wait_until(redrawn)
    assert all(len(line) <= 60 for line in lines) and lines[1].startswith("  WORKER")
    assert [line.split()[:2] for line in lines[2:4]] == [["wa", "succeeded"], ["wb", "stopped"]]

    term.keys("q")
    wait_until(lambda: not term.alternate())
    term.keys("echo rc=$?", "Enter")
    screen = term.shows("rc=0")
    assert "envoy watch" not in screen  # the view is gone, the shell's own screen is back
    (tmp_path / "go-wb").write_text("")
    wait_finished(envoy, second)
    del first


def test_ctrl_c_gives_the_terminal_back(repo, envoy, tmp_path, tmux):
    spawn_waiting(envoy, tmp_path, "wc")
    term = tmux()
    term.keys(WATCH, "Enter")
    term.shows("envoy watch", "wc ")
    term.keys("C-c")
    wait_until(lambda: not term.alternate())
    term.keys("echo rc=$?", "Enter")
    screen = term.shows("rc=130")
    assert "envoy watch" not in screen and "Traceback" not in screen
    (tmp_path / "go-wc").write_text("")


def test_resume_asks_for_the_follow_up_task(repo, envoy, tmp_path, tmux):
    name = spawn_waiting(envoy, tmp_path, "wr")
    (tmp_path / "go-wr").write_text("")
    wait_finished(envoy, name)
    term = tmux()
    term.keys(WATCH, "Enter")
    term.shows("wr ", "succeeded")
    term.keys("R")
    term.shows("follow-up task for wr")
    term.keys("-l", "@result second run")
    term.keys("Enter")
    term.shows("resume worker wr with that task? (y/n)")
    term.keys("y")
    term.shows("envoy parallel resume --worker wr", '"status": "success"')
    record = wait_finished(envoy, name)
    assert record["result"] == "second run" and record["runs"] == 2


def watch_piped(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "watch", *args], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_piped_a_line_per_change_until_every_followed_worker_ended(repo, envoy, tmp_path):
    good = spawn_waiting(envoy, tmp_path, "pa")
    bad = spawn_waiting(envoy, tmp_path, "pb", "@fail error_max_turns")
    watcher = watch_piped(repo)
    first = watcher.stdout.readline()
    assert json.loads(first)["state"] == "running"
    (tmp_path / "go-pa").write_text("")
    (tmp_path / "go-pb").write_text("")
    out = first + watcher.stdout.read()
    assert watcher.wait(60) is not None and "Traceback" not in watcher.stderr.read()
    lines = [json.loads(line) for line in out.splitlines()]
    events, final = lines[:-1], lines[-1]
    assert sorted((e["worker"], e["state"]) for e in events) == [
        (good, "running"), (good, "succeeded"), (bad, "failed"), (bad, "running")]
    assert next(e for e in events if e["state"] == "succeeded")["commits"] == 1
    assert next(e for e in events if e["state"] == "failed")["reason"] == "max_turns"
    assert watcher.returncode == 1 and final["error"]["type"] == "worker_failed"
    assert {w["name"]: w["state"] for w in final["data"]["workers"]} == {good: "succeeded", bad: "failed"}
    # every one it follows ended well: 0; --once: each worker's line, at once
    only = envoy("parallel", "watch", "--worker", good)
    assert only.code == 0 and json.loads(only.stdout.splitlines()[-1])["status"] == "success"
    once = envoy("parallel", "watch", "--once", "--text")
    assert once.code == 0 and f"{good}: succeeded" in once.stdout and f"{bad}: failed (max_turns)" in once.stdout


def test_piped_watch_gives_up_after_its_timeout(repo, envoy, tmp_path):
    spawn_waiting(envoy, tmp_path, "slow")
    done = envoy("parallel", "watch", "--timeout", "0.3")
    assert done.code == 1 and json.loads(done.stdout.splitlines()[-1])["error"]["type"] == "timeout"
    (tmp_path / "go-slow").write_text("")


def test_the_fleet_reads_only_the_records_that_changed(repo, envoy, tmp_path):
    names = [spawn_waiting(envoy, tmp_path, f"f{i}") for i in range(3)]
    records = repo / ".git/envoy/workers"
    wait_until(lambda: all("agent_pid" in json.loads((records / f"{n}.json").read_text()) for n in names))
    fleet = Fleet(open_workspace(repo))
    fleet.poll()
    assert fleet.reads == dict.fromkeys(names, 1)
    for _ in range(5):
        fleet.poll()
    assert fleet.reads == dict.fromkeys(names, 1)  # nothing changed: nothing read
    (tmp_path / "go-f1").write_text("")
    wait_finished(envoy, names[1])
    wait_until(lambda: fleet.poll() and fleet.records[names[1]]["state"] == "succeeded")
    assert fleet.reads[names[0]] == fleet.reads[names[2]] == 1  # only the ended worker's record was read again
    assert {n: r["state"] for n, r in fleet.records.items()} == {names[0]: "running", names[1]: "succeeded",
                                                                  names[2]: "running"}
    for name in (names[0], names[2]):
        (tmp_path / f"go-{name}").write_text("")


def test_a_worker_ending_sends_the_terminals_notification(repo, envoy, tmp_path, tmux):
    spawn_waiting(envoy, tmp_path, "wn")
    term = tmux()
    term.keys(WATCH, "Enter")
    term.shows("wn ", "running")
    term.run("new-window", "-t", "t:1", "sh")  # watch's window now in the background: tmux flags its bell
    assert term.run("display", "-p", "-t", "t:0", "#{window_bell_flag}").strip() == "0"
    (tmp_path / "go-wn").write_text("")
    wait_until(lambda: term.run("display", "-p", "-t", "t:0", "#{window_bell_flag}").strip() == "1")
    wait_until(lambda: "succeeded" in term.run("capture-pane", "-p", "-t", "t:0"))


def test_piped_watch_follows_a_queued_worker_through_its_start_to_its_end(repo, envoy, tmp_path):
    env = {"PARALLEL_MAX_WORKERS": "1"}
    envoy("parallel", "spawn", "--branch", "qa", "--task", f"@wait-for {tmp_path / 'go-qa'}", env=env)
    envoy("parallel", "spawn", "--branch", "qb", "--queue", "--task", "@result second", env=env)
    watcher = watch_piped(repo, "--worker", "qb")
    first = watcher.stdout.readline()
    assert json.loads(first)["state"] == "queued"
    (tmp_path / "go-qa").write_text("")
    out = first + watcher.stdout.read()
    assert watcher.wait(60) == 0
    states = [json.loads(line).get("state") for line in out.splitlines()[:-1]]
    assert states[0] == "queued" and states[-1] == "succeeded" and "queued" not in states[1:]
