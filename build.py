#!/usr/bin/env python3
"""Build dist/envoy.pyz: one executable file, envoy plus its vendored
dependencies (sh, filelock, PyYAML's pure-Python part), runnable anywhere
with `python3 envoy.pyz`.

Reproducible: entries in sorted order, every timestamp from SOURCE_DATE_EPOCH
(default 1980-01-01, the zip format's epoch), normalised permissions, so the
same sources give the same bytes.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "envoy.pyz.d"
sys.path.insert(0, str(SOURCE))

from envoy import pyz  # noqa: E402


def build(target: Path) -> Path:
    return pyz.write(target, pyz.tree(SOURCE))


def main() -> int:
    target = build(ROOT / "dist" / "envoy.pyz")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(f"built {target.relative_to(ROOT)} ({target.stat().st_size} bytes, sha256 {digest[:16]})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
