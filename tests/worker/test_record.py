"""worker/record.py: the worker's record: its name, fields and states."""
from __future__ import annotations

import pytest

from envoy.worker.record import worker_name


@pytest.mark.parametrize("branch,name", [("quick/hook-fix", "quick-hook-fix"), ("feat/api//v2", "feat-api-v2"),
                                         ("Fix_it.now", "Fix_it.now"), ("a/ü/b", "a-b"), ("-x-", "x")])
def test_worker_name(branch, name):
    assert worker_name(branch) == name
