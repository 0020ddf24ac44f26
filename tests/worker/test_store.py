"""worker/store.py: .git/envoy on disk: records written whole as valid JSON, private modes, records read as untrusted."""
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


# -- records: whole or not at all, private, read as untrusted ---------------------------
def record(name: str = "w", **fields) -> dict:
    return {"name": name, "branch": name, "state": "queued", "path": f"/tmp/wt-{name}", **fields}


def test_a_reader_never_sees_half_a_record_while_another_process_rewrites_it(tmp_path):
    import subprocess
    import sys

    from conftest import ENVOY_SOURCE

    records = store.State(tmp_path)
    records.ensure()
    records.write(record(result="x" * 200_000, seq=0))
    writer = subprocess.Popen([sys.executable, "-c", f"""
import sys; sys.path[:0] = [{str(ENVOY_SOURCE)!r}, {str(ENVOY_SOURCE / 'vendor')!r}]
from pathlib import Path
from envoy.worker import store
records = store.State(Path({str(tmp_path)!r}))
for i in range(1, 400):
    records.write({{"name": "w", "branch": "w", "state": "queued", "path": "/tmp/wt-w",
                   "result": str(i % 10) * (200_000 + i), "seq": i}})
"""])
    seen = set()
    try:
        while writer.poll() is None:
            found = records.read("w")  # raises broken_record on a half-written file
            assert found is not None and len(found["result"]) == 200_000 + found["seq"]
            seen.add(found["seq"])
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert len(seen) > 2, "the reader raced too few writes to mean anything"
    assert not [p for p in records.workers.iterdir() if p.name.startswith(".tmp-")]


def test_records_files_are_0600_and_directories_0700(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    records.write(record())
    records.write_task("w", 1, "the secret task")
    for d in (records.root, records.workers, records.logs, records.locks, records.logs / "w"):
        assert d.stat().st_mode & 0o777 == 0o700, d
    for f in (records.record_path("w"), records.run_file("w", 1, "task")):
        assert f.stat().st_mode & 0o777 == 0o600, f
    assert records.run_file("w", 1, "task").read_text() == "the secret task"


def test_an_older_installs_looser_directories_are_tightened(tmp_path):
    records = store.State(tmp_path)
    for d in (records.root, records.workers, records.logs / "w"):
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
    records.ensure()
    records.write_task("w", 1, "t")
    for d in (records.root, records.workers, records.logs, records.logs / "w"):
        assert d.stat().st_mode & 0o777 == 0o700, d


def test_tightening_a_read_only_directory_adds_no_owner_bit(tmp_path):
    directory = tmp_path / "old"
    directory.mkdir()
    directory.chmod(0o555)
    store.State(tmp_path).private_dir(directory)
    assert directory.stat().st_mode & 0o777 == 0o500


def test_the_log_and_a_task_hold_what_was_written_privately(tmp_path):
    records = store.State(tmp_path)
    records.log("first")
    records.log("second")
    records.write_task("w", 2, "task two")
    records.write_task("w", 2, "task two, rewritten")
    lines = records.log_file.read_text().splitlines()
    assert [line.rsplit("] ", 1)[1] for line in lines] == ["first", "second"]
    assert records.log_file.stat().st_mode & 0o777 == 0o600
    assert records.run_file("w", 2, "task").read_text() == "task two, rewritten"
    assert records.run_file("w", 2, "task").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content, problem", [
    (b"[1, 2]", "not a record (JSON list)"),
    (b"{}", "its name None"),
    (b'{"name": "w", ', "not a JSON file"),
    (b"\xff\xfe garbage", "not a JSON file"),
    (b'{"name": "w", "branch": "w", "state": "running", "path": "/tmp/wt-w", "started_at": "yesterday"}',
     "its started_at"),  # a malformed timestamp: elapsed() would raise on it in every status
])
def test_a_broken_record_is_reported_by_scan_and_refused_by_read(tmp_path, content, problem):
    from envoy.errors import EnvoyError

    records = store.State(tmp_path)
    records.ensure()
    records.write(record("good", created_at="2026-01-01T00:00:00Z"))
    records.record_path("w").write_bytes(content)
    valid, broken = records.scan()
    assert [r["name"] for r in valid] == ["good"]
    assert [b["file"] for b in broken] == [str(records.record_path("w"))]
    assert problem in broken[0]["problem"]
    with pytest.raises(EnvoyError) as caught:
        records.read("w")
    assert caught.value.kind == "broken_record" and "cleanup --worker w" in caught.value.suggestion
    assert records.read("good")["name"] == "good"
    assert records.read("absent") is None


def test_a_fifo_in_place_of_a_record_is_broken_not_a_hang(tmp_path):
    import os

    records = store.State(tmp_path)
    records.ensure()
    os.mkfifo(records.record_path("w"))
    valid, broken = records.scan()  # a blocking open would hang here
    assert valid == [] and "FIFO" in broken[0]["problem"]


def test_a_huge_record_is_broken_and_not_read_whole(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    with open(records.record_path("w"), "wb") as f:
        f.truncate(store.RECORD_BYTES + 1)
    valid, broken = records.scan()
    assert valid == [] and "larger than" in broken[0]["problem"]


def test_temporary_and_hidden_files_are_not_records(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    (records.workers / ".tmp-1-abc").write_text("{")
    (records.workers / ".w.json").write_text("{")
    (records.workers / "notes.txt").write_text("{")
    assert records.scan() == ([], [])


def test_scan_orders_records_oldest_first(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    records.write(record("b", created_at="2026-01-02T00:00:00Z"))
    records.write(record("a", created_at="2026-01-03T00:00:00Z"))
    records.write(record("c", created_at="2026-01-02T00:00:00Z", seq=1))
    records.write(record("d", created_at="2026-01-01T00:00:00Z"))
    assert [r["name"] for r in records.all()] == ["d", "b", "c", "a"]


@pytest.mark.parametrize("name", ["../victim", "..", ".", "a/b", "-rf", "", "/etc"])
def test_delete_refuses_what_is_not_a_worker_name_and_removes_nothing(tmp_path, name):
    records = store.State(tmp_path)
    records.ensure()
    victim = records.root / "victim"
    victim.mkdir()
    (victim / "keep").write_text("x")
    records.write(record())
    with pytest.raises(ValueError):
        records.delete(name)
    assert (victim / "keep").exists() and records.record_path("w").exists()


def test_delete_removes_a_workers_record_and_logs_only(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    records.write(record("w"))
    records.write(record("w2"))
    records.write_task("w", 1, "t")
    records.write_task("w2", 1, "t")
    records.delete("w")
    assert records.read("w") is None and not (records.logs / "w").exists()
    assert records.read("w2") is not None and records.run_file("w2", 1, "task").exists()
    records.delete("w")  # already gone: nothing to do, no error


@pytest.mark.parametrize("fault", ["replace", "write"])
def test_a_write_that_fails_after_its_temp_file_opened_leaves_the_old_record(tmp_path, monkeypatch, fault):
    """The temp file is opened, then the disk fills (os.replace or the write fails): the
    old record stays whole, no temp file is left, and the caller gets state_unwritable."""
    import errno
    import os

    from envoy.errors import EnvoyError

    records = store.State(tmp_path)
    records.ensure()
    records.write(record("w", result="before"))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if fault == "replace":
        monkeypatch.setattr(os, "replace", full)
    else:
        monkeypatch.setattr(store, "_json", full)
    with pytest.raises(EnvoyError) as caught:
        records.write(record("w", result="after"))
    monkeypatch.undo()
    assert caught.value.kind == "state_unwritable" and "No space left" in caught.value.message
    assert records.read("w")["result"] == "before"
    assert sorted(p.name for p in (tmp_path / "envoy" / "workers").iterdir()) == ["w.json"]


def test_a_write_cut_short_by_anything_else_leaves_no_temp_file_and_says_what(tmp_path):
    records = store.State(tmp_path)
    records.ensure()
    with pytest.raises(TypeError):
        records.write(record("w", result=object()))  # not JSON: a bug, raised as itself
    assert list((tmp_path / "envoy" / "workers").iterdir()) == []
