"""The package type-checks under mypy --strict (for the oldest supported Python),
against the vendored sh, filelock and yaml that ship in envoy.pyz."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO_ROOT

MYPY = [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.10",
        "--config-file", "pyproject.toml", "--cache-dir", "/tmp/envoy-mypy-cache"]


def test_mypy_strict():
    proc = subprocess.run(MYPY + ["-p", "envoy"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_sees_the_vendored_libraries_types():
    """mypy resolves sh, filelock and yaml to envoy.pyz.d/vendor and reads their
    types: a misuse is an error naming their classes, not a missing import or Any."""
    program = ("import filelock, sh, yaml\n"
               "lock: int = filelock.FileLock('x')\n"
               "git: int = sh.Command('git')\n"
               "loader: int = yaml.SafeLoader('')\n")
    proc = subprocess.run(MYPY + ["-c", program], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert "import-not-found" not in out and "import-untyped" not in out, out
    for name in ("FileLock", "Command", "SafeLoader"):  # FileLock: SoftFileLock or UnixFileLock
        assert re.search(rf'expression has type "\w*{name}\b', out), out
