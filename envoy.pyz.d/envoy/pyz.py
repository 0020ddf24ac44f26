"""Writing envoy.pyz: a zipapp with a shebang, reproducible (sorted entries,
fixed timestamps, normalised permissions). Used by build.py, and by
`envoy init` to install envoy into a repository when not run from a pyz."""
from __future__ import annotations

import importlib.util
import os
import time
import zipfile
from pathlib import Path
from typing import Iterable

SHEBANG = b"#!/usr/bin/env python3\n"
ZIP_EPOCH = 315532800  # 1980-01-01, the earliest date a zip entry can hold
SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".so"}  # compiled parts cannot load from a zip

# One archive entry: (name inside the archive, file on disk).
Entry = tuple[str, Path]


def running() -> Path | None:
    """The envoy.pyz this process runs from (None from a source tree or an install)."""
    import envoy

    root = Path(envoy.__file__).parent.parent
    return root if root.is_file() else None


def running_inside(top: Path) -> str | None:
    """The path, relative to checkout `top`, of the envoy.pyz this process runs from,
    when it is inside that checkout."""
    found = running()
    if found is None:
        return None
    try:
        return found.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        return None  # it runs from elsewhere


def tree(root: Path, prefix: str = "") -> list[Entry]:
    """Every file below `root` (caches excepted), named relative to it."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            if Path(name).suffix not in SKIP_SUFFIXES:
                path = Path(dirpath) / name
                entries.append((prefix + path.relative_to(root).as_posix(), path))
    return entries


def _bytecode(name: str, source: bytes) -> bytes:
    """A hash-based, unchecked .pyc (no timestamp in it, so builds stay reproducible).
    zipimport cannot cache compiled modules, so without it every run of the pyz
    would compile sh and the rest again; a Python of another version ignores it
    (the magic number differs) and compiles the source as before."""
    code = compile(source, name, "exec", dont_inherit=True)
    return bytes(importlib._bootstrap_external._code_to_hash_pyc(  # type: ignore[attr-defined]
        code, importlib.util.source_hash(source), checked=False))


def write(target: Path, entries: Iterable[Entry], epoch: int | None = None) -> Path:
    """Write the archive atomically; the same entries and epoch give the same bytes
    (with the same Python, which compiles the bytecode it adds)."""
    if epoch is None:
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", ZIP_EPOCH))
    stamp = time.gmtime(max(epoch, ZIP_EPOCH))[:6]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as out:
        out.write(SHEBANG)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            files = {name: (path.read_bytes(), os.access(path, os.X_OK)) for name, path in entries}
            for name, (data, _) in list(files.items()):
                if name.endswith(".py") and name != "__main__.py":
                    files[name + "c"] = (_bytecode(name, data), False)
            for name in sorted(files):
                data, executable = files[name]
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100755 if executable else 0o100644) << 16
                info.create_system = 3  # unix, whatever machine builds it
                archive.writestr(info, data, compresslevel=9)
    os.chmod(partial, 0o755)
    os.replace(partial, target)
    return target
