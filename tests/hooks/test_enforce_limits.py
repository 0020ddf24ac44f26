"""hooks/enforce_limits.py: which shell commands are envoy spawns (the hook itself: tests/commands/test_hook.py)."""
from __future__ import annotations

import pytest

from conftest import NOT_SPAWNS, SPAWNS
from envoy.hooks import enforce_limits


@pytest.mark.parametrize("command", SPAWNS)
def test_spawn_commands_are_recognised(command):
    assert enforce_limits.spawn_invocations(command)


@pytest.mark.parametrize("command", NOT_SPAWNS)
def test_other_commands_are_not_spawns(command):
    assert enforce_limits.spawn_invocations(command) == []
