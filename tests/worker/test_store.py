"""worker/store.py: .git/envoy on disk: records written atomically as valid JSON, run files read bounded."""
from __future__ import annotations

import json

import pytest

from envoy.worker import store


def test_records_are_written_as_valid_json_even_with_non_finite_numbers(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    records.write({"name": "w", "cost_usd": float("nan"), "options": {"timeout_s": float("inf")}})
    text = records.record_path("w").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == \
        {"name": "w", "cost_usd": None, "options": {"timeout_s": None}}


