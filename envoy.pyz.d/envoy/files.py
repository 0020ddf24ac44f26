"""Reading files envoy does not own (settings, skills, agents, .git files) safely.

A repository file can be anything: a symlink to /dev/zero (endless), a FIFO
(a read blocks until someone writes), a 6 GB file. Every reader of repository
files goes through `read_bytes`, which opens without blocking, reads regular
files only, and at most `limit` bytes. Imported by hooks: `os` and `stat` only.
"""
from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # typing's import would be paid on every hook call
if TYPE_CHECKING:
    from typing import Any

MAX_BYTES = 4 * 1024 * 1024  # settings, skills, agents: real ones are a few KiB

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class Unreadable(OSError):
    """The file exists but is not one envoy will read: not a regular file, or too large.
    An OSError, so callers that already handle unreadable files handle these too."""


def read_bytes(path: str | os.PathLike[str], limit: int = MAX_BYTES) -> bytes:
    """The contents of the regular file at `path` (symlinks followed). Never blocks on a
    FIFO or device and never reads more than `limit` bytes: `Unreadable` instead.
    FileNotFoundError and other OSErrors as open() raises them."""
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
            raise Unreadable(errno.EINVAL, f"is {kind}, not a regular file", os.fspath(path))
        chunks, size = [], 0
        while size <= limit:  # read to the end, not st_size: the file may grow (or be in /proc)
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Unreadable(errno.EFBIG, f"is larger than {limit} bytes", os.fspath(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], limit: int = MAX_BYTES, errors: str = "strict") -> str:
    """`read_bytes` decoded as UTF-8 (a leading BOM dropped)."""
    return read_bytes(path, limit).decode("utf-8-sig", errors)


def parse_json(text: str | bytes) -> Any:
    """json.loads, with nesting too deep for the parser a ValueError like any other bad JSON."""
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def describe(exc: OSError) -> str:
    """Why the file could not be read, to follow "cannot be read: ": "it is a FIFO, not a
    regular file", "Permission denied"."""
    if isinstance(exc, Unreadable):
        return f"it {exc.strerror}"
    return exc.strerror or str(exc)


def tail(path: str | os.PathLike[str], size: int = 64 * 1024) -> str:
    """The last `size` bytes of a log envoy wrote (an agent's or a check's output), as
    text; "" if it cannot be read. Only the end is read: it may hold gigabytes."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def last_line(path: str | os.PathLike[str], limit: int = 300) -> str:
    """The last non-empty line of a log (an agent's or a setup command's stderr), cut to `limit`."""
    lines = [line.strip() for line in tail(path).splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""
