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


# Found by the mutation run (tests/mutation/run files): what read_bytes and tail return,
# at and around their limits.
def test_a_file_of_several_reads_is_read_whole(tmp_path):
    """Read in pieces of at most 1 MiB: each piece asked for is what is left up to the limit."""
    from envoy import files

    data = os.urandom(3 << 20) + b"end"
    path = tmp_path / "big"
    path.write_bytes(data)
    assert files.read_bytes(path) == data


def test_the_default_limit_is_4_mib(tmp_path):
    from envoy import files

    path = tmp_path / "f"
    path.write_bytes(b"x" * (4 << 20))
    assert len(files.read_bytes(path)) == 4 << 20  # exactly the limit: read
    path.write_bytes(b"x" * ((4 << 20) + 1))
    with pytest.raises(files.Unreadable, match="larger than 4194304 bytes"):
        files.read_bytes(path)


def test_a_huge_file_is_refused_without_being_read_whole(tmp_path):
    """A sparse 4 GiB file read with a 1 GiB address space: refused after limit + 1
    bytes, never read to its end."""
    path = tmp_path / "huge"
    with open(path, "wb") as f:
        f.truncate(4 << 30)
    proc = bounded(f"from envoy import files\ntry:\n    files.read_bytes({str(path)!r})\n"
                   "except files.Unreadable as exc:\n    print('refused', exc.strerror)\n")
    assert proc.returncode == 0 and proc.stdout.startswith("refused is larger than"), proc.stderr[-500:]


def test_tail_is_the_last_bytes_or_the_whole_of_a_shorter_file(tmp_path):
    from envoy import files

    path = tmp_path / "log"
    path.write_text("first\nsecond\nthird\n")
    assert files.tail(path) == "first\nsecond\nthird\n"
    assert files.tail(path, 6) == "third\n"
    assert files.last_line(path) == "third"
    assert files.tail(tmp_path / "absent") == ""


def test_json_nested_too_deeply_is_bad_json_like_any_other():
    from envoy import files

    with pytest.raises(ValueError, match="nested too deeply"):
        files.parse_json("[" * 100_000 + "]" * 100_000)
