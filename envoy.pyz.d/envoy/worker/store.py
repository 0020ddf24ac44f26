"""envoy's bookkeeping under `<git common dir>/envoy/`.

    workers/<name>.json     one record per worker, replaced whole (os.replace)
    logs/<name>/<run>.jsonl  the raw stream-json of each run of the agent
    logs/<name>/<run>.err    the agent's stderr (and the setup command's output)
    logs/<name>/<run>.task   the task text of each run, fed to the agent's stdin
    logs/<name>/spawn-env.json  a queued worker's environment (0600), until it starts
    locks/                  filelock files: never deleted, never hold data
    envoy.log               unexpected errors, hook failures

Tasks and transcripts can hold secrets: every file here is 0600 and every
directory 0700, and an older install's looser directories are tightened the
next time envoy writes here.

Every worker's shell can write here (it writes `.git` to commit), so nothing here
is followed: every path is reached from the common dir through real directories
and opened with O_NOFOLLOW (files.py's `*_below`); a symlink, a hard link or a
directory where envoy keeps a file is refused (`unsafe_path`, or a broken record).

The common dir is the same from every worktree, so every verb sees the same
state from the main checkout, a subdirectory, or inside a worker; and it is
never inside a worktree, so a worker cannot commit envoy's bookkeeping.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

TYPE_CHECKING = False  # typing is not loaded at run time: the finisher beside every agent imports this
if TYPE_CHECKING:
    from typing import Any

from envoy import files
from envoy.worker.record import Record, is_worker_name, now_iso

FILE_MODE, DIR_MODE = 0o600, 0o700
RECORD_BYTES = 16 * 1024 * 1024  # a record is a few KiB; its task is kept elsewhere


class State:
    def __init__(self, common_dir: Path) -> None:
        self.base = common_dir  # trusted: the user's .git; everything below it is checked
        self.root = common_dir / "envoy"
        self.workers = self.root / "workers"
        self.logs = self.root / "logs"
        self.locks = self.root / "locks"
        self.log_file = self.root / "envoy.log"

    def ensure(self) -> None:
        """The state directories, private and writable, or a `state_unwritable` refusal
        before anything is changed (a read-only or full .git, another user's files)."""
        try:
            for d in (self.root, self.workers, self.logs, self.locks):
                self.private_dir(d)
                if not os.access(d, os.W_OK | os.X_OK):  # also EROFS, which root is not spared
                    raise PermissionError(13, "not writable", str(d))
        except OSError as exc:
            raise unwritable(self.root, exc) from None

    def run_dir(self, name: str) -> Path:
        """logs/<name>/, where a worker's per-run files go (made private)."""
        directory = self.logs / name
        try:
            self.private_dir(directory)
        except files.NotOurs as exc:
            raise unwritable(self.root, exc) from None
        return directory

    # -- envoy's own files, never through a symlink (see files.py) --------
    def private_dir(self, path: Path) -> None:
        """`path`, below the common dir, as a directory only its owner can enter: made 0700,
        or, when it exists, its group and other bits cleared (never an owner bit added: a
        read-only directory stays read-only); never through a symlink (files.NotOurs)."""
        files.private_dir_below(self.base, path)

    def private_open(self, path: Path | str, mode: str) -> Any:
        """open() of envoy's own file `path` (created 0600): "w", "a", "ab" or "wb"."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
        fd = files.open_below(self.base, path, flags, FILE_MODE)
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding="utf-8")

    def private_fd(self, path: Path | str, flags: int) -> int:
        """os.open() of envoy's own file `path`, created 0600."""
        return files.open_below(self.base, path, flags | os.O_CREAT, FILE_MODE)

    def read_bytes(self, path: Path | str, limit: int = files.MAX_BYTES) -> bytes:
        """A file of envoy's, as files.read_bytes reads it, never through a symlink."""
        return files.read_bytes(path, limit, base=self.base)

    def remove(self, path: Path | str) -> None:
        """Delete a file or directory of envoy's, never through a symlink (NotOurs)."""
        files.remove_below(self.base, path)

    # -- records --------------------------------------------------------
    def record_path(self, name: str) -> Path:
        return self.workers / f"{name}.json"

    def read(self, name: str) -> Record | None:
        """The record of worker `name`, None if there is none; a file there that is not
        a valid record raises `broken_record` (see `problem_with`)."""
        path = self.record_path(name)
        record, problem = _load(path, name, self.base)
        if problem:
            raise broken_record(str(path), problem)
        return record

    def write(self, record: Record) -> None:
        """Write a record whole: a reader sees the old one or the new one, never half."""
        # A name of our own, not tempfile's: importing tempfile costs every process 5 ms.
        # Renamed over the old one: a symlink or hard link put there is replaced, not written through.
        try:
            files.replace_below(self.base, self.record_path(record["name"]), _json(record).encode("utf-8"), FILE_MODE)
        except OSError as exc:
            raise unwritable(self.root, exc) from None

    def all(self) -> list[Record]:
        """Every valid record, oldest first."""
        return self.scan()[0]

    def broken(self) -> list[dict[str, str]]:
        """Every record file that is not a valid record: {"file", "problem"}."""
        return self.scan()[1]

    def scan(self) -> tuple[list[Record], list[dict[str, str]]]:
        """(every valid record, oldest first; every broken one). Nothing is left out:
        a broken record is shown (status) and can be removed (cleanup)."""
        records, broken = [], []
        try:
            fd = files.open_dir_below(self.base, self.workers)
        except FileNotFoundError:
            return [], []
        except files.NotOurs as exc:
            raise unwritable(self.root, exc) from None
        try:
            names = [entry.name for entry in os.scandir(fd)]
        finally:
            os.close(fd)
        for file in names:
            if file.endswith(".json") and not file.startswith("."):
                path = self.workers / file
                record, problem = _load(path, file[:-len(".json")], self.base)
                if problem:
                    broken.append({"file": str(path), "problem": problem})
                elif record is not None:  # None: removed meanwhile
                    records.append(record)
        records.sort(key=lambda r: (r.get("created_at") or "", r.get("seq") or 0, r["name"]))
        broken.sort(key=lambda b: b["file"])
        return records, broken

    def delete(self, name: str) -> None:
        """A worker's record and logs; `name` must be a worker name (never a path)."""
        if not is_worker_name(name):
            raise ValueError(f"not a worker name: {name!r}")
        self.remove(self.record_path(name))  # a directory planted there too: never followed
        self.remove(self.logs / name)

    # -- per-run files --------------------------------------------------
    def run_file(self, name: str, run: int, suffix: str) -> Path:
        return self.logs / name / f"{run}.{suffix}"

    # -- locks ----------------------------------------------------------
    def lock_path(self, what: str) -> Path:
        return self.locks / f"{what}.lock"

    def log(self, message: str) -> None:
        """One line in envoy.log; never fails (it is how failures get recorded)."""
        try:
            self.private_dir(self.root)
            with self.private_open(self.log_file, "a") as f:
                f.write(f"{now_iso()} [{os.getpid()}] {message}\n")
        except OSError:
            pass

    def write_task(self, name: str, run: int, task: str) -> None:
        """A run's task text (it can hold secrets: private); renamed into place, so a
        symlink planted at the next run's task file is replaced, never written through."""
        self.run_dir(name)
        try:
            files.replace_below(self.base, self.run_file(name, run, "task"), task.encode("utf-8"), FILE_MODE)
        except OSError as exc:
            raise unwritable(self.root, exc) from None


def _json(record: Record) -> str:
    """A record as JSON any reader parses: a NaN or infinity (from agent output) as null."""
    try:
        return json.dumps(record, indent=1, ensure_ascii=False, allow_nan=False)
    except ValueError:
        from envoy.output import finite

        return json.dumps(finite(record), indent=1, ensure_ascii=False, allow_nan=False)


def unwritable(root: Path, exc: OSError) -> Exception:
    """The refusal when envoy cannot write its own state."""
    from envoy.errors import EnvoyError

    if isinstance(exc, files.NotOurs):
        return EnvoyError("unsafe_path", f"will not use envoy's state in {root}: {exc.filename} {exc.strerror}",
                          f"envoy never follows what it did not create: look at {exc.filename} (a worker's shell "
                          "can write .git), move it away, then retry")
    return EnvoyError("state_unwritable", f"cannot write envoy's state in {root}: {exc.strerror or exc}"
                      + (f" ({exc.filename})" if exc.filename else ""),
                      f"make {root} writable by you (and free some disk space if it is full), then retry")


def broken_record(file: str, problem: str) -> Exception:
    from envoy.errors import EnvoyError

    stem = Path(file).name[:-len(".json")]
    return EnvoyError("broken_record", f"the record {file} is broken: {problem}",
                      f"envoy parallel cleanup --worker {stem} removes it (and the worktree and branch git "
                      "confirms were its)")


def _load(path: Path, stem: str, base: Path) -> tuple[Record | None, str | None]:
    """(record, None), (None, None) when there is no file, or (None, what is wrong).
    Read as a regular file of a sane size only: anything can be put here (a FIFO
    would hang every verb, a link to /dev/zero fill memory)."""
    try:
        raw = files.read_bytes(path, RECORD_BYTES, base=base)  # never through a symlink
        data = files.parse_json(raw)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:  # a half-written file cannot exist: it was edited
        return None, f"not a JSON file envoy can read ({type(exc).__name__}: {str(exc)[:100]})"
    key = str(path)
    if _checked.get(key) == raw:
        return data, None  # these very bytes were checked already
    from envoy.worker.record import problem_with

    problem = problem_with(data, stem)
    if problem:
        return None, problem
    _checked[key] = raw
    return data, None


# The bytes of each record file this process found valid. Checking a record is most of
# the cost of reading one; the queue runner and `wait` read every record again each
# time one changes (O(workers) per event), so bytes already checked are not checked
# again. Keyed by the bytes themselves: any change, however small or quick, is checked.
_checked: dict[str, bytes] = {}
