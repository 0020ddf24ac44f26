"""output.py: JSON documents and human text on stdout."""
from __future__ import annotations

import json

import pytest


def test_json_output_is_valid_json_even_with_non_finite_numbers():
    from envoy import output

    text = output.dumps({"cost": float("nan"), "runs": [{"t": float("inf")}, 1.5], "n": -float("inf")})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == \
        {"cost": None, "runs": [{"t": None}, 1.5], "n": None}
