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


@pytest.mark.parametrize("command", [
    "env -u ENVOY_WORKER -u PARALLEL_WORKER_DEPTH envoy parallel spawn --branch x --task y",
    "timeout -s KILL 5 envoy parallel spawn --branch x --task y",
    "env -S 'envoy parallel spawn --branch x --task y'",
    "sudo -u bob envoy parallel spawn --branch x --task y",
    "time -p envoy parallel spawn --branch x --task y",
    "nice -n 5 python3 .claude/envoy.pyz parallel spawn --branch x --task y",
    "xargs -n 1 envoy parallel spawn --branch x --task",
])
def test_a_spawn_behind_a_wrapper_with_options_is_seen(command):
    """A wrapper's option that takes a value (env -u NAME, timeout -s SIG) is not the
    command: the spawn behind it is still recognised (env -u is how an agent would try
    to hide that it is a worker)."""
    from envoy.hooks import enforce_limits

    assert enforce_limits.spawn_invocations(command), command
