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

The common dir is the same from every worktree, so every verb sees the same
state from the main checkout, a subdirectory, or inside a worker; and it is
never inside a worktree, so a worker cannot commit envoy's bookkeeping.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

TYPE_CHECKING = False  # typing and shutil are not loaded at run time: the finisher beside every agent imports this
if TYPE_CHECKING:
    from typing import Any

from envoy.worker.record import Record, is_worker_name, now_iso

FILE_MODE, DIR_MODE = 0o600, 0o700
RECORD_BYTES = 16 * 1024 * 1024  # a record is a few KiB; its task is kept elsewhere


class State:
    def __init__(self, common_dir: Path) -> None:
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
                private_dir(d)
                if not os.access(d, os.W_OK | os.X_OK):  # also EROFS, which root is not spared
                    raise PermissionError(13, "not writable", str(d))
        except OSError as exc:
            raise unwritable(self.root, exc) from None

    def run_dir(self, name: str) -> Path:
        """logs/<name>/, where a worker's per-run files go (made private)."""
        directory = self.logs / name
        private_dir(directory)
        return directory

    # -- records --------------------------------------------------------
    def record_path(self, name: str) -> Path:
        return self.workers / f"{name}.json"

    def read(self, name: str) -> Record | None:
        """The record of worker `name`, None if there is none; a file there that is not
        a valid record raises `broken_record` (see `problem_with`)."""
        path = self.record_path(name)
        record, problem = _load(path, name)
        if problem:
            raise broken_record(str(path), problem)
        return record

    def write(self, record: Record) -> None:
        """Write a record whole: a reader sees the old one or the new one, never half."""
        # A name of our own, not tempfile's: importing tempfile costs every process 5 ms.
        tmp = os.path.join(self.workers, f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except OSError as exc:
            raise unwritable(self.root, exc) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(_json(record))
            os.replace(tmp, self.record_path(record["name"]))
        except BaseException as exc:
            _unlink(tmp)
            if isinstance(exc, OSError):
                raise unwritable(self.root, exc) from None
            raise

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
            entries = list(os.scandir(self.workers))
        except FileNotFoundError:
            return [], []
        for entry in entries:
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                record, problem = _load(Path(entry.path), entry.name[:-len(".json")])
                if problem:
                    broken.append({"file": entry.path, "problem": problem})
                elif record is not None:  # None: removed meanwhile
                    records.append(record)
        records.sort(key=lambda r: (r.get("created_at") or "", r.get("seq") or 0, r["name"]))
        broken.sort(key=lambda b: b["file"])
        return records, broken

    def delete(self, name: str) -> None:
        """A worker's record and logs; `name` must be a worker name (never a path)."""
        if not is_worker_name(name):
            raise ValueError(f"not a worker name: {name!r}")
        _unlink(self.record_path(name))
        import shutil

        shutil.rmtree(self.logs / name, ignore_errors=True)

    # -- per-run files --------------------------------------------------
    def run_file(self, name: str, run: int, suffix: str) -> Path:
        return self.logs / name / f"{run}.{suffix}"

    # -- locks ----------------------------------------------------------
    def lock_path(self, what: str) -> Path:
        return self.locks / f"{what}.lock"

    def log(self, message: str) -> None:
        """One line in envoy.log; never fails (it is how failures get recorded)."""
        try:
            private_dir(self.root)
            with private_open(self.log_file, "a") as f:
                f.write(f"{now_iso()} [{os.getpid()}] {message}\n")
        except OSError:
            pass

    def write_task(self, name: str, run: int, task: str) -> None:
        """A run's task text (it can hold secrets: private)."""
        self.run_dir(name)
        with private_open(self.run_file(name, run, "task"), "w") as f:
            f.write(task)


def _json(record: Record) -> str:
    """A record as JSON any reader parses: a NaN or infinity (from agent output) as null."""
    try:
        return json.dumps(record, indent=1, ensure_ascii=False, allow_nan=False)
    except ValueError:
        from envoy.output import finite

        return json.dumps(finite(record), indent=1, ensure_ascii=False, allow_nan=False)


def private_dir(path: Path) -> None:
    """`path` as a directory only its owner can enter: made 0700, or, when it exists,
    its group and other bits cleared (never an owner bit added: a read-only directory
    stays read-only)."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    mode = os.stat(path).st_mode
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


def private_open(path: Path | str, mode: str) -> Any:
    """open() for envoy's own files under the state directory: created 0600. `mode` is
    "w", "a", "ab" or "wb"."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding="utf-8")


def private_fd(path: Path | str, flags: int) -> int:
    """os.open() of a file under the state directory, created 0600."""
    return os.open(path, flags | os.O_CREAT, FILE_MODE)


def unwritable(root: Path, exc: OSError) -> Exception:
    """The refusal when envoy cannot write its own state."""
    from envoy.errors import EnvoyError

    return EnvoyError("state_unwritable", f"cannot write envoy's state in {root}: {exc.strerror or exc}"
                      + (f" ({exc.filename})" if exc.filename else ""),
                      f"make {root} writable by you (and free some disk space if it is full), then retry")


def broken_record(file: str, problem: str) -> Exception:
    from envoy.errors import EnvoyError

    stem = Path(file).name[:-len(".json")]
    return EnvoyError("broken_record", f"the record {file} is broken: {problem}",
                      f"envoy parallel cleanup --worker {stem} removes it (and the worktree and branch git "
                      "confirms were its)")


def _load(path: Path, stem: str) -> tuple[Record | None, str | None]:
    """(record, None), (None, None) when there is no file, or (None, what is wrong).
    Read as a regular file of a sane size only: anything can be put here (a FIFO
    would hang every verb, a link to /dev/zero fill memory)."""
    from envoy import files

    try:
        raw = files.read_bytes(path, RECORD_BYTES)
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


def _unlink(path: Path | str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


