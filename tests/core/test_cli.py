"""cli.py: typos get a "did you mean", never a misleading complaint."""
from __future__ import annotations

import pytest

from conftest import spawn_done


@pytest.mark.parametrize("argv,typo,meant", [
    (["parallel", "stauts"], "stauts", "status"),
    (["parallel", "clenup", "--all"], "clenup", "cleanup"),
    (["demoo"], "demoo", "demo"),
])
def test_a_mistyped_verb_gets_did_you_mean(repo, envoy, argv, typo, meant):
    result = envoy(*argv)
    assert result.code == 2 and result.error["type"] == "invalid_usage"
    assert typo in result.error["message"] and f"did you mean {meant!r}" in result.error["message"]
    assert meant in result.error["suggestion"]


def test_a_mistyped_option_is_named_not_reported_as_a_missing_one(repo, envoy):
    result = envoy("parallel", "spawn", "--brnach", "x", "--task", "t")
    assert result.code == 2
    message = result.error["message"]
    assert "--brnach" in message and "did you mean '--branch'" in message
    assert "required" not in message
    assert not (repo.parent / "repo-claude-worker-x").exists()


def test_a_mistyped_option_elsewhere_gets_did_you_mean(repo, envoy):
    result = envoy("parallel", "results", "--tial", "3")
    assert result.code == 2 and "did you mean '--tail'" in result.error["message"]
    equals = envoy("parallel", "status", "--wroker=w")
    assert equals.code == 2 and "did you mean '--worker'" in equals.error["message"]


def test_a_missing_option_is_still_said_as_missing(repo, envoy):
    result = envoy("parallel", "spawn", "--task", "t")
    assert result.code == 2 and "--branch" in result.error["message"] and "required" in result.error["message"]


def test_an_unknown_option_without_a_close_one_is_named(repo, envoy):
    result = envoy("parallel", "status", "--zzzzzz")
    assert result.code == 2 and "--zzzzzz" in result.error["message"] and "did you mean" not in result.error["message"]


def test_a_mistyped_worker_name_gets_did_you_mean(repo, envoy):
    spawn_done(envoy, "fix/login-bug", "@result ok")
    spawn_done(envoy, "feat/other", "@result ok")
    result = envoy("parallel", "results", "--worker", "fix-lgin-bug")
    assert result.code == 1 and result.error["type"] == "not_found"
    assert "did you mean 'fix-login-bug'" in result.error["message"]
    assert "--worker fix-login-bug" in result.error["suggestion"]
