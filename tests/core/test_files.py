"""files.py: repository files read only when regular, and with a cap."""
from __future__ import annotations

import os

import pytest


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
