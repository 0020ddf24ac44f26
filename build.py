#!/usr/bin/env python3
"""Build dist/envoy.pyz: one executable file, envoy plus its vendored
dependencies (sh, filelock), runnable anywhere with `python3 envoy.pyz`.

Reproducible: entries in sorted order, every timestamp from SOURCE_DATE_EPOCH
(default 1980-01-01, the zip format's epoch), normalised permissions, so the
same sources give the same bytes.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "envoy.pyz.d"
SHEBANG = b"#!/usr/bin/env python3\n"
SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def source_files() -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(SOURCE):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        files += [Path(dirpath) / f for f in filenames if Path(f).suffix not in SKIP_SUFFIXES]
    return sorted(files, key=lambda p: p.relative_to(SOURCE).as_posix())


def build(target: Path) -> Path:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    stamp = time.gmtime(max(epoch, 315532800))[:6]  # zip cannot store dates before 1980
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".tmp")
    with open(partial, "wb") as out:
        out.write(SHEBANG)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in source_files():
                info = zipfile.ZipInfo(path.relative_to(SOURCE).as_posix(), date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100755 if os.access(path, os.X_OK) else 0o100644) << 16
                info.create_system = 3  # unix, whatever machine builds it
                archive.writestr(info, path.read_bytes(), compresslevel=9)
    os.chmod(partial, 0o755)
    os.replace(partial, target)
    return target


def main() -> int:
    target = build(ROOT / "dist" / "envoy.pyz")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(f"built {target.relative_to(ROOT)} ({target.stat().st_size} bytes, sha256 {digest[:16]})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
