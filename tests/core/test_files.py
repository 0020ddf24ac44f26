"""files.py: repository files read only when regular, and with a cap."""
from __future__ import annotations

import os

import pytest

from conftest import bounded


def test_read_bytes_refuses_what_is_not_a_regular_file(tmp_path):
    from envoy import files

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, what in ((fifo, "FIFO"), ("/dev/zero", "character device"), (tmp_path, "directory")):
        with pytest.raises(files.Unreadable, match=what):
            files.read_bytes(path)
    (tmp_path / "f").write_bytes(b"x" * 11)
    assert files.read_bytes(tmp_path / "f", 11) == b"x" * 11
    with pytest.raises(files.Unreadable, match="larger than 10 bytes"):
        files.read_bytes(tmp_path / "f", 10)
    with pytest.raises(FileNotFoundError):
        files.read_bytes(tmp_path / "missing")


def test_the_last_line_of_a_huge_sparse_stderr_is_read_in_a_capped_process(tmp_path):
    err = tmp_path / "1.err"
    with open(err, "wb") as f:
        f.truncate(3 << 30)  # 3 GiB of NULs without a newline, sparse
        f.seek(0, 2)
        f.write(b"\nfatal: the real reason\n\n")
    proc = bounded(f"from envoy.files import last_line; print(last_line({str(err)!r}))")
    assert proc.stdout.strip() == "fatal: the real reason", proc.stderr[-500:]


def test_the_last_line_of_a_huge_stderr_is_read_from_its_end(tmp_path):
    import tracemalloc

    from envoy.files import last_line

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
