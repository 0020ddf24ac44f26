"""processes.py: the command that runs this envoy again."""
from __future__ import annotations

from envoy import processes


def test_self_command_runs_this_source_tree():
    command = processes.self_command()
    assert command[1].endswith("envoy.pyz.d")
    assert processes.self_command(bare=True)[1:3] == ["-I", "-S"]
