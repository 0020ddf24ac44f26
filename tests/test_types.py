"""The package type-checks under mypy --strict (for the oldest supported Python)."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT


def test_mypy_strict():
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--python-version", "3.10", "-p", "envoy",
                           "--config-file", "pyproject.toml", "--cache-dir", "/tmp/envoy-mypy-cache"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
