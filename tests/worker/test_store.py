"""worker/store.py: .git/envoy on disk: records written atomically as valid JSON, run files read bounded."""
from __future__ import annotations

import json

import pytest

from conftest import bounded
from envoy.worker import store


def test_records_are_written_as_valid_json_even_with_non_finite_numbers(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    records.write({"name": "w", "cost_usd": float("nan"), "options": {"timeout_s": float("inf")}})
    text = records.record_path("w").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == \
        {"name": "w", "cost_usd": None, "options": {"timeout_s": None}}


def test_the_last_line_of_a_huge_sparse_stderr_is_read_in_a_capped_process(tmp_path):
    err = tmp_path / "1.err"
    with open(err, "wb") as f:
        f.truncate(3 << 30)  # 3 GiB of NULs without a newline, sparse
        f.seek(0, 2)
        f.write(b"\nfatal: the real reason\n\n")
    proc = bounded(f"from envoy.worker.store import last_line; print(last_line({str(err)!r}))")
    assert proc.stdout.strip() == "fatal: the real reason", proc.stderr[-500:]


def test_the_last_line_of_a_huge_stderr_is_read_from_its_end(tmp_path):
    import tracemalloc

    from envoy.worker.store import last_line

    err = tmp_path / "1.err"
    with open(err, "wb") as f:
        f.write(b"noise\n" * (4 * 1024 * 1024) + b"\xff the real reason\n\n  \n")
    tracemalloc.start()
    try:
        line = last_line(err)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert line == "\ufffd the real reason"
    assert peak < 1024 * 1024
