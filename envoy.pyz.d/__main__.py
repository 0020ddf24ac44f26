"""Entry point of envoy.pyz (and of `python3 envoy.pyz.d` in a checkout).

The vendored pure-Python dependencies (sh, filelock, yaml) live in vendor/
beside this file; they go first on sys.path so the zipapp needs nothing
installed.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))

from envoy.entry import run  # noqa: E402

run()
