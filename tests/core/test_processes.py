"""processes.py: the command that runs this envoy again, and signalling only the process
that was checked (a pid pinned with a pidfd before the check, so a reused pid is never hit)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from envoy import processes


def test_self_command_runs_this_source_tree():
    command = processes.self_command()
    assert command[1].endswith("envoy.pyz.d")
    assert processes.self_command(bare=True)[1:3] == ["-I", "-S"]


@pytest.fixture
def sleeper():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait()


def test_a_process_whose_check_fails_is_not_signalled(sleeper):
    seen = []
    assert processes._signal_if(str(sleeper.pid), lambda pid: seen.append(pid) or False) is False
    assert seen == [str(sleeper.pid)] and sleeper.poll() is None


def test_a_process_that_passes_its_check_is_killed(sleeper):
    assert processes._signal_if(str(sleeper.pid), lambda pid: True) is True
    assert sleeper.wait(timeout=10) == -9


def test_a_process_gone_after_its_check_is_not_signalled_nor_any_reuser_of_its_pid(sleeper):
    """The process ends (and is reaped: its pid free for reuse) between the check and the
    signal: the signal goes to the pinned process, which is gone, so nothing is hit."""
    def ends_meanwhile(pid: str) -> bool:
        sleeper.kill()
        sleeper.wait()
        return True

    assert processes._signal_if(str(sleeper.pid), ends_meanwhile) is False


def test_a_pid_that_is_no_process_is_not_signalled():
    assert processes._signal_if("999999999", lambda pid: True) is False
