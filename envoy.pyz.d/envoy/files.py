"""Reading files envoy does not own (settings, skills, agents, .git files) safely.

A repository file can be anything: a symlink to /dev/zero (endless), a FIFO
(a read blocks until someone writes), a 6 GB file. Every reader of repository
files goes through `read_bytes`, which opens without blocking, reads regular
files only, and at most `limit` bytes. Imported by hooks: `os` and `stat` only.

envoy's own state (`<git common dir>/envoy/`) is writable by every worker's shell
(it must write `.git` to commit), so nothing there is believed either: the
`*_below` functions reach a path from a trusted base (the common dir, a worktree's
top) one real directory at a time (`O_NOFOLLOW`, descriptors, never a path string
re-resolved), and refuse (`NotOurs`) a symlink, a hard link, or anything else that
is not the plain file or directory envoy makes. They never follow, write through
or delete through what envoy did not create.
"""
from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # typing's import would be paid on every hook call
if TYPE_CHECKING:
    from io import BufferedReader
    from typing import Any

MAX_BYTES = 4 * 1024 * 1024  # settings, skills, agents: real ones are a few KiB

CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class Unreadable(OSError):
    """The file exists but is not one envoy will read: not a regular file, or too large.
    An OSError, so callers that already handle unreadable files handle these too."""


def read_bytes(path: str | os.PathLike[str], limit: int = MAX_BYTES, base: str | os.PathLike[str] | None = None) -> bytes:
    """The contents of the regular file at `path` (symlinks followed, unless `base` is
    given: then `path` is reached from `base` as `open_below` does, no symlink on the
    way). Never blocks on a FIFO or device and never reads more than `limit` bytes:
    `Unreadable` instead. FileNotFoundError and other OSErrors as open() raises them."""
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | CLOEXEC
    if base is None:
        fd = os.open(path, flags)
    else:
        fd = _open_leaf(base, path, flags)
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
        with open_log(path) as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def open_log(path: str | os.PathLike[str]) -> BufferedReader:
    """A log envoy wrote, opened for reading ("rb") only if it is a regular file and not
    a symlink: a link planted there (to /dev/zero, a FIFO, a file of the user's) is an
    OSError (NotOurs), never read through."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _not_ours(path, "is a symlink, not a log envoy wrote") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_ours(path, f"is {_kind(mode)}, not a log envoy wrote")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def last_line(path: str | os.PathLike[str], limit: int = 300) -> str:
    """The last non-empty line of a log (an agent's or a setup command's stderr), cut to `limit`."""
    lines = [line.strip() for line in tail(path).splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


# -- envoy's own files: reached without following anything ------------------------
class NotOurs(OSError):
    """A path envoy was to use that is not the plain file or directory envoy makes
    there: a symlink, a hard link, a directory where a file belongs. Refused, never
    followed. An OSError, so every caller that reports unusable files reports these."""


def _not_ours(path: str | os.PathLike[str], what: str) -> NotOurs:
    return NotOurs(errno.ELOOP, what, os.fspath(path))


def _parts(base: str | os.PathLike[str], path: str | os.PathLike[str]) -> list[str]:
    """`path`'s components below `base` (both absolute or both relative to one cwd)."""
    rel = os.path.relpath(os.fspath(path), os.fspath(base))
    parts = [] if rel == "." else rel.split(os.sep)
    if ".." in parts:
        raise ValueError(f"{os.fspath(path)} is not below {os.fspath(base)}")
    return parts


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    return next((what for test, what in _KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else "not a file")


def _step(dir_fd: int, name: str, shown: str, create: bool) -> int:
    """The directory `name` in `dir_fd`, never through a symlink (made 0700 if missing and `create`)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | CLOEXEC
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        raise _not_ours(shown, f"is {_kind(mode)}, not a directory envoy made") from None
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    except FileExistsError:
        pass  # made meanwhile by another envoy process: checked as any other below
    return _step(dir_fd, name, shown, False)


def open_dir_below(base: str | os.PathLike[str], path: str | os.PathLike[str], create: bool = False) -> int:
    """A descriptor of the directory `path`, reached from the trusted directory `base`
    through real directories only (made 0700 where missing when `create`). NotOurs if
    any of them is a symlink or not a directory; FileNotFoundError if one is missing."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | CLOEXEC)
    shown = os.fspath(base)
    try:
        for name in _parts(base, path):
            shown = os.path.join(shown, name)
            nxt = _step(fd, name, shown, create)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_leaf(base: str | os.PathLike[str], path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> int:
    parent = open_dir_below(base, os.path.dirname(os.fspath(path)), bool(flags & os.O_CREAT))
    try:
        return os.open(os.path.basename(os.fspath(path)), flags | os.O_NOFOLLOW | CLOEXEC, mode, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _not_ours(path, "is a symlink, not a file envoy made") from None
        raise
    finally:
        os.close(parent)


def open_below(base: str | os.PathLike[str], path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> int:
    """os.open() of envoy's own file `path` (created `mode`, 0600, with O_CREAT), reached
    from `base` as `open_dir_below` does, never through a symlink at `path` itself, and
    only if it is a regular file with no other name (a hard link to a file elsewhere
    must not be truncated or appended to). O_TRUNC happens after those checks."""
    fd = _open_leaf(base, path, (flags & ~os.O_TRUNC) | os.O_NONBLOCK, mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_ours(path, f"is {_kind(st.st_mode)}, not a file envoy made")
        if st.st_nlink != 1:
            raise _not_ours(path, "has other names (a hard link), not a file envoy made")
        if flags & os.O_TRUNC:
            os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def replace_below(base: str | os.PathLike[str], path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Write `path` whole: a new file beside it, renamed over it (a symlink or hard link
    there is replaced, never written through; a reader sees the old or the new file)."""
    parent = open_dir_below(base, os.path.dirname(os.fspath(path)), create=True)
    name = os.path.basename(os.fspath(path))
    # a name of our own, not tempfile's: importing tempfile costs every process 5 ms
    tmp = f".tmp-{os.getpid()}-{os.urandom(6).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | CLOEXEC, mode, dir_fd=parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=parent)
            except OSError:
                pass
            raise
    finally:
        os.close(parent)


def _remove_in(dir_fd: int, name: str) -> None:
    """Remove `name` in `dir_fd` and, if it is a real directory, everything in it; a
    symlink anywhere inside is removed as a link, never followed."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        try:
            os.unlink(name, dir_fd=dir_fd)  # a file or a symlink: the link itself goes
        except FileNotFoundError:
            pass
        return
    try:
        with os.scandir(fd) as entries:
            names = [entry.name for entry in entries]
        for inner in names:
            _remove_in(fd, inner)
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def remove_below(base: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Delete `path` (a file, or a directory and everything in it) below `base`: a
    symlink on the way to it refuses (NotOurs); one at it or inside it is removed as a
    link. Gone already is fine."""
    try:
        parent = open_dir_below(base, os.path.dirname(os.fspath(path)))
    except FileNotFoundError:
        return
    try:
        _remove_in(parent, os.path.basename(os.fspath(path)))
    finally:
        os.close(parent)


def check_below(base: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Raise NotOurs unless every existing component of `path` below `base`, `path`
    included, is a real directory (a path about to be handed to git, which would
    follow a symlink there). Components that do not exist yet pass."""
    shown = os.fspath(base)
    for name in _parts(base, path):
        shown = os.path.join(shown, name)
        try:
            mode = os.lstat(shown).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(mode):
            raise _not_ours(shown, f"is {_kind(mode)}, not a directory envoy made")


def private_dir_below(base: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """`path` as a directory only its owner can enter, reached as `open_dir_below` does:
    made 0700, or, when it exists, its group and other bits cleared (never an owner bit
    added: a read-only directory stays read-only)."""
    fd = open_dir_below(base, path, create=True)
    try:
        mode = os.fstat(fd).st_mode
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    finally:
        os.close(fd)
