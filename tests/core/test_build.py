"""build.py: a reproducible, self-contained envoy.pyz; and the pip package."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile

from conftest import REPO_ROOT, build, git, run_envoy


def test_pyz_is_reproducible_and_executable(tmp_path):
    first, second = build(tmp_path, "1700000000"), build(tmp_path, "1700000000")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(first) == digest(second)
    assert first.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(first, os.X_OK)
    names = zipfile.ZipFile(first).namelist()
    assert names == sorted(names)
    assert "__main__.py" in names and "vendor/sh/__init__.py" in names and "vendor/filelock/__init__.py" in names
    assert not any("__pycache__" in n for n in names)
    assert {i.date_time for i in zipfile.ZipFile(first).infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_pyz_runs_anywhere_without_installed_dependencies(tmp_path, repo):
    pyz = build(tmp_path, "1700000000")
    elsewhere = repo / ".claude" / "envoy.pyz"
    elsewhere.parent.mkdir()
    shutil.copy(pyz, elsewhere)
    # -I -S: no site-packages at all, so sh and filelock must come from inside the file.
    command = [sys.executable, "-I", "-S", str(elsewhere)]
    assert subprocess.run([sys.executable, "-I", "-S", "-c", "import sh"], capture_output=True).returncode != 0
    status = run_envoy("parallel", "status", cwd=repo, command=command)
    assert status.code == 0 and status.data["workers"] == []
    spawned = run_envoy("parallel", "spawn", "--branch", "w", "--wait", "--task", "@result from the pyz",
                        cwd=repo, command=command)
    assert spawned.code == 0, spawned.stdout + spawned.stderr
    assert spawned.data["result"] == "from the pyz"
    direct = subprocess.run([str(elsewhere), "--version"], capture_output=True, text=True)
    assert direct.returncode == 0 and direct.stdout.startswith("envoy ")
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_launcher_script_runs_the_checkout(tmp_path, repo):
    result = run_envoy("parallel", "status", cwd=repo, command=["sh", str(REPO_ROOT / "bin" / "envoy")])
    assert result.code == 0 and result.data["summary"]["total"] == 0


def test_pip_installs_a_console_script(tmp_path, repo):
    target, source = tmp_path / "site", tmp_path / "source"
    shutil.copytree(REPO_ROOT / "envoy.pyz.d", source / "envoy.pyz.d", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(REPO_ROOT / "envoy.pyz.d" / "vendor")])}
    proc = subprocess.run([sys.executable, "-m", "envoy", "--version"], capture_output=True, text=True, env=env, cwd=repo)
    assert proc.returncode == 0 and proc.stdout.startswith("envoy ")
    assert (target / "bin" / "envoy").exists()
    spawned = subprocess.run([sys.executable, "-m", "envoy", "parallel", "spawn", "--branch", "p", "--wait",
                              "--task", "@result installed"], capture_output=True, text=True, env=env, cwd=repo)
    assert spawned.returncode == 0, spawned.stdout + spawned.stderr


def test_vendored_sh_imports_light():
    """The vendored sh is patched (envoy.pyz.d/vendor/PATCHES.md) not to import asyncio
    or importlib.metadata: they were a third of a spawn's run time. Its async API still works."""
    vendor = str(REPO_ROOT / "envoy.pyz.d" / "vendor")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import sh; "
            "assert 'asyncio' not in sys.modules and 'importlib.metadata' not in sys.modules, 'heavy import'; "
            "assert str(sh.echo('plain')).strip() == 'plain'; "
            "import asyncio\n"
            "async def run():\n"
            "    return str(await sh.echo('awaited', _async=True)).strip()\n"
            "assert asyncio.run(run()) == 'awaited'; print(sh.__version__)")
    proc = subprocess.run([sys.executable, "-I", "-c", code, vendor], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2.4.0"
