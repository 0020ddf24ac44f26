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


# -- envoy's own files: reached without following anything ------------------------
def test_open_below_refuses_a_symlink_at_the_file_or_on_the_way(tmp_path):
    from envoy import files

    base, outside = tmp_path / "base", tmp_path / "outside"
    (base / "d").mkdir(parents=True)
    outside.mkdir()
    (outside / "victim").write_text("keep")
    (base / "d" / "link").symlink_to(outside / "victim")
    (base / "hop").symlink_to(outside, target_is_directory=True)
    for path in (base / "d" / "link", base / "hop" / "victim", base / "hop" / "new"):
        with pytest.raises(files.NotOurs):
            os.close(files.open_below(base, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
    assert (outside / "victim").read_text() == "keep" and sorted(os.listdir(outside)) == ["victim"]
    fd = files.open_below(base, base / "made" / "deep" / "f", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    assert (base / "made").stat().st_mode & 0o777 == 0o700
    assert (base / "made" / "deep" / "f").stat().st_mode & 0o777 == 0o600


def test_open_below_truncates_no_hard_link_and_opens_no_fifo(tmp_path):
    from envoy import files

    (tmp_path / "outside").write_text("keep")
    os.link(tmp_path / "outside", tmp_path / "hard")
    with pytest.raises(files.NotOurs, match="hard link"):
        files.open_below(tmp_path, tmp_path / "hard", os.O_WRONLY | os.O_TRUNC)
    assert (tmp_path / "outside").read_text() == "keep"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError):  # never blocks waiting for a reader
        files.open_below(tmp_path, tmp_path / "fifo", os.O_WRONLY | os.O_APPEND)
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError):
        files.open_below(tmp_path, tmp_path / "dir", os.O_RDONLY)


def test_replace_below_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    from envoy import files

    (tmp_path / "victim").write_text("keep")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "f").symlink_to(tmp_path / "victim")
    files.replace_below(tmp_path / "base", tmp_path / "base" / "f", b"new")
    assert (tmp_path / "victim").read_text() == "keep"
    assert not (tmp_path / "base" / "f").is_symlink() and (tmp_path / "base" / "f").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path / "base")) == ["f"]  # no temp file left


def test_remove_below_removes_links_as_links_and_refuses_a_link_on_the_way(tmp_path):
    from envoy import files

    base, outside = tmp_path / "base", tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "keep").write_text("keep")
    (base / "tree" / "inner").mkdir(parents=True)
    (base / "tree" / "inner" / "f").write_text("x")
    (base / "tree" / "to-dir").symlink_to(outside / "sub", target_is_directory=True)
    (base / "tree" / "to-file").symlink_to(outside / "sub" / "keep")
    (base / "hop").symlink_to(outside, target_is_directory=True)
    files.remove_below(base, base / "tree")
    assert not (base / "tree").exists() and (outside / "sub" / "keep").read_text() == "keep"
    with pytest.raises(files.NotOurs):
        files.remove_below(base, base / "hop" / "sub")
    assert (outside / "sub" / "keep").read_text() == "keep"
    files.remove_below(base, base / "hop")  # the link itself goes, not its target
    assert not os.path.lexists(base / "hop") and (outside / "sub" / "keep").exists()
    files.remove_below(base, base / "missing")  # gone already is fine


def test_read_bytes_with_a_base_and_open_log_refuse_symlinks(tmp_path):
    from envoy import files

    (tmp_path / "real").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert files.read_bytes(tmp_path / "link") == b"{}"  # repository files: links followed
    with pytest.raises(files.NotOurs):
        files.read_bytes(tmp_path / "link", base=tmp_path)
    with pytest.raises(files.NotOurs):
        files.open_log(tmp_path / "link")
    assert files.tail(tmp_path / "link") == ""
    with files.open_log(tmp_path / "real") as f:
        assert f.read() == b"{}"


def test_check_below_and_private_dir_below(tmp_path):
    from envoy import files

    (tmp_path / "a" / "b").mkdir(parents=True)
    files.check_below(tmp_path, tmp_path / "a" / "b" / "not-yet" / "c")
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    with pytest.raises(files.NotOurs):
        files.check_below(tmp_path, tmp_path / "link" / "b")
    (tmp_path / "a").chmod(0o755)
    files.private_dir_below(tmp_path, tmp_path / "a")
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    with pytest.raises(ValueError):
        files.check_below(tmp_path / "a", tmp_path)


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
