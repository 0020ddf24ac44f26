"""typos.py: the closest name, or none when nothing is close."""
from __future__ import annotations

from envoy.typos import closest


def test_closest_finds_a_typo_and_nothing_for_a_stranger():
    assert closest("stauts", ["spawn", "status", "results"]) == "status"
    assert closest("--brnach", ["--branch", "--task"]) == "--branch"
    assert closest("zzzz", ["spawn", "status"]) is None
    assert closest("status", ["status"]) is None  # the word itself is no suggestion

