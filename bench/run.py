#!/usr/bin/env python3
"""envoy's benchmarks: each figure a median of repeated runs, reported as a
ratio against the alternative measured side by side in the same run (these
machines are noisy: never compare absolute times across runs).

    python3 bench/run.py            # full: >= 10 runs after a warm-up, 20,000-file repo
    python3 bench/run.py --quick    # a few runs, small repo: proves the suite works (CI)
    python3 bench/run.py --only batch   # one section (hook, hookcost, spawn, status, batch, fleet, memory, output, land, watch, ray, raywatch, node)
    python3 bench/run.py --check    # also compare each figure with its target; exit 1 on a regression

--check: a figure fails when it is worse than its target by more than the noise
margin (--margin, default 0.2: a ratio target of 1.25x fails above 1.50x). The
margin is for the noise of medians on a loaded machine; a real regression (an
import added to the hook path, a git call per worker in status) is larger.

The real claude CLI (hookcost, memory) is $ENVOY_E2E_CLAUDE, else the newest pinned one in .e2e/.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "envoy.pyz.d"), str(ROOT / "envoy.pyz.d" / "vendor")]
FAKE_CLAUDE = ROOT / "tests" / "fake_claude.py"
PYZ = ROOT / "dist" / "envoy.pyz"
# The real CLI: $ENVOY_E2E_CLAUDE, else the newest pinned version (.ci/claude-versions),
# where .ci/install-claude puts it.
_PINNED = [v for v in (line.split("#", 1)[0].strip()
                       for line in (ROOT / ".ci" / "claude-versions").read_text().splitlines()) if v]
CLAUDE = Path(os.environ.get("ENVOY_E2E_CLAUDE") or ROOT / ".e2e" / _PINNED[-1] / "node_modules" / ".bin" / "claude")


# Every figure with a target: (what, measured, target, noisy); lower is better for all of them.
TARGETS: list[tuple[str, float, float, bool]] = []


def target(what: str, measured: float, goal: float, noisy: bool = True) -> float:
    """Note that `measured` should be at most `goal` (checked by --check); returns `measured`.
    `noisy`: a timing or a memory figure; a count or a size is exact and gets no margin."""
    TARGETS.append((what, measured, goal, noisy))
    return measured


def check(margin: float) -> tuple[bool, list[str]]:
    """Each target against its figure, allowing `margin` (a fraction of the target) for
    the noise of timings and memory."""
    ok, lines = True, []
    for what, measured, goal, noisy in TARGETS:
        limit = goal * (1 + margin) if noisy else goal
        passed = measured <= limit
        ok = ok and passed
        shown = f"{measured:,.0f}" if measured >= 100 or not noisy else f"{measured:.2f}"
        lines.append(f"{'ok  ' if passed else 'FAIL'} {what}: {shown}, target <= {goal:g}"
                     + (f" (with the {margin:.0%} noise margin: <= {limit:.3g})" if noisy else " (exact)"))
    return ok, lines


def median_time(run: Callable[[], object], runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def side_by_side(named: dict[Any, Callable[[], object]], runs: int,
                 reset: Callable[[], object] | None = None) -> dict[Any, float]:
    """Interleave the contenders run by run, so drift in machine load hits all alike.
    `reset`, untimed, runs after every run of every contender."""
    for run in named.values():
        run()  # warm-up
        if reset:
            reset()
    samples: dict[Any, list[float]] = {name: [] for name in named}
    for _ in range(runs):
        for name, run in named.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
            if reset:
                reset()
    return {name: statistics.median(values) for name, values in samples.items()}


def sh(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(argv)}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def hermetic_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVOY_", "PARALLEL_", "GIT_", "CLAUDE"))}
    (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n")
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", ENVOY_CLAUDE=str(FAKE_CLAUDE))
    return env


def make_repo(where: Path, files: int, env: dict[str, str]) -> Path:
    repo = where / "repo"
    repo.mkdir()
    sh("git", "init", "-q", cwd=repo, env=env)
    for i in range(files):
        d = repo / f"d{i // 500}"
        d.mkdir(exist_ok=True)
        (d / f"f{i}.txt").write_text(f"file {i}\n")
    sh("git", "add", "-A", cwd=repo, env=env)
    sh("git", "commit", "-qm", "init", cwd=repo, env=env)
    return repo


def envoy(*args: str) -> list[str]:
    return [sys.executable, str(PYZ), *args]


# -- 1. hook latency --------------------------------------------------------
def bench_hooks(tmp: Path, env: dict[str, str], runs: int) -> list[tuple[str, float, str]]:
    (tmp / "hooks").mkdir()
    repo = make_repo(tmp / "hooks", 1, env)
    bash = json.dumps({"tool_name": "Bash", "cwd": str(repo), "tool_input": {"command": "ls -la && git status"}})
    write = json.dumps({"tool_name": "Write", "cwd": str(repo), "tool_input": {"file_path": "src/app.py"}})
    hook_env = {**env, "ENVOY_PYZ": str(PYZ)}

    def runner(argv: list[str], stdin: str) -> Callable[[], object]:
        return lambda: subprocess.run(argv, input=stdin, env=hook_env, cwd=repo, capture_output=True, check=True,
                                      text=True)

    times = side_by_side({
        "python3 -c pass": runner([sys.executable, "-c", "pass"], ""),
        "hooks/enforce-limits (Bash, not a spawn)": runner([str(ROOT / "hooks" / "enforce-limits")], bash),
        "envoy.pyz hook enforce-limits": runner(envoy("hook", "enforce-limits"), bash),
        "hooks/validate-skill (not a skill)": runner([str(ROOT / "hooks" / "validate-skill")], write),
        "envoy.pyz hook validate-skill": runner(envoy("hook", "validate-skill"), write),
    }, runs)
    base = times.pop("python3 -c pass")
    rows = [("python3 -c pass (the floor)", base, "1.00x")]
    rows += [(name, t, f"{target(name + ' / python3 -c pass', t / base, 1.5):.2f}x (target <= 1.5x)")
             for name, t in times.items()]
    return rows


def bench_big_command(runs: int) -> list[tuple[str, float, str]]:
    """enforce-limits' reading of one huge Bash command (a 256 KB word: a heredoc, a
    base64 blob), in process: its own linear lexer against shlex (what it used, whose
    words grow a character at a time: quadratic in the longest word)."""
    import shlex

    from envoy.hooks import enforce_limits

    command = "echo " + "a" * (1 << 18) + " && envoy parallel spawn --branch x --task y"  # shlex: ~1 s

    def with_shlex() -> object:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        return list(lexer)

    times = side_by_side({"shlex": with_shlex,
                          "enforce_limits": lambda: enforce_limits.spawn_invocations(command)}, max(3, runs // 3))
    return [("enforce-limits, a 256 KB one-word command", times["enforce_limits"],
             f"{times['shlex'] / times['enforce_limits']:.0f}x faster than shlex's split alone "
             f"({times['shlex']:.2f}s; linear vs quadratic in the longest word)")]


def import_breakdown(env: dict[str, str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", str(PYZ), "hook", "enforce-limits"],
                          input='{"tool_name":"Bash","tool_input":{"command":"ls"}}', env=env,
                          capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    ours = [line for line in lines if "envoy" in line or line.rstrip().endswith((" json", " typing"))]
    return [line.replace("import time:", "").strip() for line in ours]


# -- 1b. what the hooks cost on unrelated tool calls ------------------------
OLD_WIRING = 'python3 "$CLAUDE_PROJECT_DIR/.claude/envoy.pyz" hook {}'  # init's, before `if` conditions
VALID_SKILL = "---\nname: pdf-tools\ndescription: Fill and merge PDF forms.\n---\nBody.\n"


def bench_hookcost(tmp: Path, env: dict[str, str], runs: int) -> list[tuple[str, float, str]]:
    """Hook processes the real claude starts per tool call (hook_started events), with the
    wiring `envoy init` writes and with the old one; then what a matching call costs."""
    (tmp / "hookcost").mkdir()
    repo = make_repo(tmp / "hookcost", 1, env)
    sh(*envoy("init"), cwd=repo, env=env)
    settings_path = repo / ".claude" / "settings.json"
    settings = json.loads(settings_path.read_text())
    commands = {handler["command"].split(" hook ")[1].split()[0]: handler["command"]
                for groups in settings["hooks"].values() for group in groups for handler in group["hooks"]}
    rows: list[tuple[str, float, str]] = []
    calls = ("unrelated Bash call (ls -la)", "non-skill Write (notes.txt)",
             "Bash call running envoy parallel spawn", "Write of a SKILL.md")
    old = {**settings, "hooks": {event: [{"matcher": group["matcher"], "hooks": [
        {"type": "command", "command": OLD_WIRING.format(name)}]}] for event, group, name in (
        ("PreToolUse", settings["hooks"]["PreToolUse"][0], "enforce-limits"),
        ("PostToolUse", settings["hooks"]["PostToolUse"][0], "validate-skill"))}}
    for wiring, content in (("`envoy init`'s wiring (with if)", settings), ("the old wiring (no if)", old)):
        settings_path.write_text(json.dumps(content))
        counts: list[float] | None = list(hook_processes(tmp, env, repo) or []) or None
        for call, count in zip(calls, counts or [float("nan")] * len(calls)):
            goal = " (goal 0)" if call.startswith(("unrelated", "non-skill")) else ""
            if goal and counts and wiring.startswith("`envoy init`"):
                target(f"hook processes, {call}, {wiring}", count, 0, noisy=False)
            rows.append((f"{call}, {wiring}", count, f"hook processes{goal}" if counts else f"no claude CLI at {CLAUDE}"))
    settings_path.write_text(json.dumps(settings))

    (repo / ".claude" / "skills" / "pdf-tools").mkdir(parents=True, exist_ok=True)
    (repo / ".claude" / "skills" / "pdf-tools" / "SKILL.md").write_text(VALID_SKILL)
    spawn = json.dumps({"tool_name": "Bash", "cwd": str(repo), "tool_input": {
        "command": "python3 .claude/envoy.pyz parallel spawn --branch b --task t"}})
    skill = json.dumps({"tool_name": "Write", "cwd": str(repo), "tool_input": {
        "file_path": str(repo / ".claude" / "skills" / "pdf-tools" / "SKILL.md"), "content": VALID_SKILL}})
    # One interpreter for all: the hook commands run the first python3 on PATH, so PATH
    # starts with this one's directory (not a version manager's shim, which costs more
    # than the interpreter).
    bindir = Path(sys.executable).resolve().parent
    python3 = str(bindir / "python3") if (bindir / "python3").exists() else sys.executable
    run_env = {**env, "CLAUDE_PROJECT_DIR": str(repo), "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}"}

    def runner(argv: list[str], stdin: str) -> Callable[[], object]:
        return lambda: subprocess.run(argv, input=stdin, env=run_env, cwd=repo, capture_output=True, check=True,
                                      text=True)

    times = side_by_side({
        "python3 -c pass": runner([python3, "-c", "pass"], ""),
        "python3 -I -S -c pass": runner([python3, "-I", "-S", "-c", "pass"], ""),
        "init's enforce-limits command (sh -c), a spawn": runner(["/bin/sh", "-c", commands["enforce-limits"]], spawn),
        "init's validate-skill command (sh -c), a SKILL.md": runner(["/bin/sh", "-c", commands["validate-skill"]],
                                                                    skill),
    }, runs)
    base, bare = times.pop("python3 -c pass"), times.pop("python3 -I -S -c pass")
    rows += [("python3 -c pass", base, "1.00x"), ("python3 -I -S -c pass", bare, f"{bare / base:.2f}x")]
    rows += [(f"{name} (matching call)", t, f"{t / base:.2f}x of python3 -c pass, {t / bare:.2f}x of -I -S")
             for name, t in times.items()]
    return rows


def hook_processes(tmp: Path, env: dict[str, str], repo: Path) -> list[int] | None:
    """hook_started events per tool call of one scripted session (None without a claude CLI).
    The session is a worker's (ENVOY_WORKER), so envoy denies the spawn instead of running it."""
    if not CLAUDE.exists():
        return None
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from fake_model import FakeModel, bash, text, write  # type: ignore[import-not-found]

    written = (repo / "notes.txt", repo / ".claude" / "skills" / "pdf-tools" / "SKILL.md")
    for path in written:
        path.unlink(missing_ok=True)  # a Write over a file the session never read fails, and runs no PostToolUse
    with FakeModel() as fake:
        marker = fake.script("calls", [
            bash("ls -la"), write("notes.txt", "notes\n"),
            bash("python3 .claude/envoy.pyz parallel spawn --branch b --task t"),
            write(".claude/skills/pdf-tools/SKILL.md", VALID_SKILL), text("done")])
        proc = subprocess.run([str(CLAUDE), "-p", "--output-format", "stream-json", "--verbose",
                               "--include-hook-events", "--permission-mode", "bypassPermissions"],
                              input=f"{marker} work", capture_output=True, text=True, cwd=repo, timeout=300,
                              env={**claude_env(tmp / "claude-home", env, fake.url), "ENVOY_WORKER": "bench"})
    counts: list[int] = []
    for line in proc.stdout.splitlines():
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("type") == "assistant":
            counts += [0 for block in event["message"]["content"] if block.get("type") == "tool_use"]
        elif event.get("type") == "system" and event.get("subtype") == "hook_started" and counts:
            counts[-1] += 1
    if len(counts) != 4 or not all(path.is_file() for path in written):
        raise SystemExit(f"benchmark step failed: the scripted session made {len(counts)} tool calls, not 4 that work\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return counts


# -- 2. spawn overhead ------------------------------------------------------
def bench_spawn(tmp: Path, env: dict[str, str], runs: int, files: int) -> list[tuple[str, float, str]]:
    (tmp / "spawn").mkdir()
    repo = make_repo(tmp / "spawn", files, env)
    counter = iter(range(10_000))
    run_env = {**env, "PARALLEL_MAX_WORKERS": "1000", "PARALLEL_TIMEOUT": "60"}

    def git_worktree_add() -> None:
        n = next(counter)
        sh("git", "worktree", "add", "-q", "-b", f"g{n}", str(tmp / "spawn" / f"g{n}"), "HEAD", cwd=repo, env=env)

    def envoy_spawn() -> None:
        n = next(counter)
        sh(*envoy("parallel", "spawn", "--branch", f"e{n}", "--task", "@result ok"), cwd=repo, env=run_env)

    times = side_by_side({"git worktree add -b": git_worktree_add, "envoy parallel spawn": envoy_spawn}, runs)
    base = times["git worktree add -b"]
    return [(f"git worktree add -b ({files} files)", base, "1.00x"),
            (f"envoy parallel spawn ({files} files)", times["envoy parallel spawn"],
             f"{target('spawn / git worktree add', times['envoy parallel spawn'] / base, 1.25):.2f}x (target <= 1.25x)")]


# -- 3. status at scale -----------------------------------------------------
def bench_status(tmp: Path, env: dict[str, str], runs: int) -> list[tuple[str, float, str]]:
    from filelock import FileLock

    from envoy.worker import locks
    from envoy.worker.record import now_iso
    from envoy.worker.store import State

    held, repos = [], {}
    for count in (1, 10, 100):
        (tmp / f"status{count}").mkdir()
        repo = make_repo(tmp / f"status{count}", 1, env)
        state = State(repo / ".git")
        state.ensure()
        for i in range(count):
            running = i % 2 == 0
            name = f"w{i}"
            state.write({"name": name, "branch": f"feat/{name}", "base": "main", "base_sha": "0" * 40,
                         "path": str(tmp / f"claude-worker-{name}"), "state": "running" if running else "succeeded",
                         "session_id": "00000000-0000-4000-8000-%012d" % i, "created_at": now_iso(),
                         "started_at": now_iso(), "finished_at": None if running else now_iso(), "exit_code": 0,
                         "cost_usd": 0.0123, "num_turns": 7, "result": "Did the thing. " * 20, "runs": [{}],
                         "options": {}})
            if running:  # a live supervisor holds its worker lock
                lock = FileLock(str(state.lock_path(locks.worker(name))), thread_local=False)
                lock.acquire()
                held.append(lock)
        repos[count] = repo

    def status_in(repo: Path) -> Callable[[], object]:
        return lambda: sh(*envoy("parallel", "status"), cwd=repo, env=env)

    # Interleaved run by run (1, 10, 100, 1, 10, 100, ...): a change of load hits all three alike.
    times = side_by_side({count: status_in(repo) for count, repo in repos.items()}, runs)
    for lock in held:
        lock.release()
    first = times[1]
    rows = []
    for count, t in times.items():
        note = f"{t / first:.2f}x of 1 worker"
        if count == 100:
            note = f"{target('status of 100 workers / of 1', t / first, 10):.2f}x of 1 worker (target <= 10x)"
        rows.append((f"envoy parallel status, {count} worker{'s' if count != 1 else ''}", t, note))
    return rows


# -- 4. throughput of a batch -----------------------------------------------
def cpu_of(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float | None]:
    """(wall seconds, CPU seconds of every process it started, detached ones too). CPU is
    measured in a PID namespace of its own (unshare -fp, root only): whatever is
    orphaned there is reaped by its init, so its CPU time counts; None without one."""
    wrapped = ["unshare", "-fp", "--kill-child", "sh", "-c", '"$@"; sleep 1', "sh", *argv]
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(wrapped, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        proc = None
    if proc is not None:
        _, status, usage = os.wait4(proc.pid, 0)
        if status == 0:
            return time.perf_counter() - start - 1.0, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start, None


def bench_batch(tmp: Path, env: dict[str, str], runs: int, tasks: int, cap: int,
                sleep: float) -> list[tuple[str, float, str]]:
    """`tasks` agents sleeping `sleep` s at a cap of `cap`: xargs -P of the stand-in agent
    against envoy spawn --batch + wait, interleaved run by run; wall time and the CPU
    of everything each started, per task."""
    (tmp / "batch").mkdir()
    repo = make_repo(tmp / "batch", 10, env)
    task = f"@sleep {sleep}\n@result ok"
    task_file = tmp / "batch" / "task.txt"
    task_file.write_text(task)
    batch_file = tmp / "batch" / "tasks.jsonl"
    batch_file.write_text("".join(json.dumps({"branch": f"b{i}", "task": task}) + "\n" for i in range(tasks)))
    agent = f"{FAKE_CLAUDE} -p --output-format stream-json --verbose < {task_file} > /dev/null"
    run_env = {**env, "PARALLEL_MAX_WORKERS": str(cap)}
    contenders = {
        "xargs": ["sh", "-c", f"seq {tasks} | xargs -P {cap} -I{{}} sh -c '{agent}'"],
        "envoy": ["sh", "-c", f"{' '.join(envoy('parallel', 'spawn', '--batch', str(batch_file)))} >/dev/null && "
                  f"{' '.join(envoy('parallel', 'wait'))} >/dev/null 2>&1"],
    }
    walls: dict[str, list[float]] = {k: [] for k in contenders}
    cpus: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(runs):
        for name, argv in contenders.items():
            wall, cpu = cpu_of(argv, repo, run_env)
            walls[name].append(wall)
            if cpu is not None:
                cpus[name].append(cpu)
            sh(*envoy("parallel", "cleanup", "--all", "--force"), cwd=repo, env=run_env)  # untimed reset
    wall = {k: statistics.median(v) for k, v in walls.items()}
    rows = [(f"xargs -P {cap}: {tasks} agents sleeping {sleep:g}s", wall["xargs"], "1.00x"),
            (f"envoy spawn --batch ({tasks} lines) + wait, cap {cap}", wall["envoy"],
             f"{target('batch: envoy / xargs', wall['envoy'] / wall['xargs'], 1.1):.2f}x (target <= 1.1x)")]
    if cpus["xargs"] and cpus["envoy"]:
        per = {k: statistics.median(v) / tasks for k, v in cpus.items()}
        rows += [("CPU per task, xargs (the agent itself)", per["xargs"], "CPU, all processes (PID namespace)"),
                 ("CPU per task, envoy (agent + envoy)", per["envoy"],
                  f"CPU: envoy adds {(per['envoy'] - per['xargs']) * 1000:.0f} ms a task")]
    return rows


# -- 4b. a fleet: status, conflicts ---------------------------------------------
def fleet_records(repo: Path, tmp: Path, count: int) -> None:
    """`count` finished workers' records (a fleet's status with no agents running)."""
    from envoy.worker.record import now_iso
    from envoy.worker.store import State

    state = State(repo / ".git")
    state.ensure()
    sha = sh("git", "rev-parse", "HEAD", cwd=repo).strip()
    for i in range(count):
        name = f"w{i:03d}"
        state.write({"name": name, "branch": name, "base": "main", "base_sha": sha, "path": str(tmp / f"wt-{name}"),
                     "state": "failed" if i % 20 == 0 else "succeeded", "reason": "error_max_turns" if i % 20 == 0 else None,
                     "error": "the agent hit its turn limit" if i % 20 == 0 else None,
                     "session_id": "00000000-0000-4000-8000-%012d" % i, "created_at": now_iso(), "started_at": now_iso(),
                     "finished_at": now_iso(), "duration_s": 12.5, "exit_code": 0, "cost_usd": 0.0123,
                     "num_turns": 7, "result": "Did the thing. " * 20, "runs": [{}], "options": {}, "run": 1})


def bench_fleet(tmp: Path, env: dict[str, str], runs: int) -> list[tuple[str, float, str]]:
    rows: list[tuple[str, float, str]] = []
    times = {}
    for count in (10, 200):
        (tmp / f"fleet{count}").mkdir()
        repo = make_repo(tmp / f"fleet{count}", 1, env)
        fleet_records(repo, tmp / f"fleet{count}", count)
        times[count] = median_time(lambda: sh(*envoy("parallel", "status", "--all"), cwd=repo, env=env), runs)
        if count == 200:
            compact = len(sh(*envoy("parallel", "status"), cwd=repo, env=env).encode())
            every = len(sh(*envoy("parallel", "status", "--all"), cwd=repo, env=env).encode())
            target("status JSON bytes, 200 workers", compact, 4096, noisy=False)
            rows.append(("status JSON, 200 workers (default: folded)", compact,
                         f"bytes (target <= 4096; --all: {every:,} bytes)"))
    rows += [("status --all, 10 workers", times[10], "1.00x"),
             ("status --all, 200 workers", times[200], f"{target('status --all: 200 / 10 workers', times[200] / times[10], 1.5):.2f}x of 10 (target <= 1.5x)")]
    # conflicts: 50 workers, each with a commit on a file of its own
    (tmp / "conflicts").mkdir()
    repo = make_repo(tmp / "conflicts", 1, env)
    fleet_records(repo, tmp / "conflicts", 50)
    for i in range(50):
        sh("git", "switch", "-qc", f"w{i:03d}", "main", cwd=repo, env=env)
        (repo / f"own{i}.txt").write_text(f"{i}\n")
        sh("git", "add", "-A", cwd=repo, env=env)
        sh("git", "commit", "-qm", f"w{i}", cwd=repo, env=env)
    sh("git", "switch", "-q", "main", cwd=repo, env=env)
    t = median_time(lambda: sh(*envoy("parallel", "conflicts"), cwd=repo, env=env), runs)
    size = len(sh(*envoy("parallel", "conflicts"), cwd=repo, env=env).encode())

    def every_pair() -> None:  # the way conflicts answered before: a dry-run merge of each of the 1,225 pairs
        for a in range(50):
            for b in range(a + 1, 50):
                subprocess.run(["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", f"w{a:03d}",
                                f"w{b:03d}"], cwd=repo, env=env, capture_output=True)

    old = median_time(every_pair, 1, warmup=0)
    rows += [("dry-run merge of all 1,225 pairs (50 workers, by hand)", old, "1.00x"),
             ("envoy parallel conflicts, 50 workers on disjoint files", t,
              f"{t / old:.3f}x; answer {size:,} bytes")]
    return rows


# -- 5. memory --------------------------------------------------------------
def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bench_memory(tmp: Path, env: dict[str, str]) -> list[tuple[str, float, str]]:
    (tmp / "memory").mkdir()
    repo = make_repo(tmp / "memory", 1, env)
    release = tmp / "memory" / "release"
    record = sh(*envoy("parallel", "spawn", "--branch", "m", "--task", f"@wait-for {release}"), cwd=repo, env=env)
    name = json.loads(record)["data"]["name"]
    state_file = repo / ".git" / "envoy" / "workers" / f"{name}.json"
    deadline = time.time() + 30
    while "agent_pid" not in json.loads(state_file.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    pid = json.loads(state_file.read_text())["supervisor_pid"]
    samples = rss_samples(pid, MEMORY_SAMPLES)
    release.touch()
    supervisor = max(samples)  # the worst of them: memory is what is held, not a typical moment
    rows = [(f"supervisor resident memory, max of {len(samples)} samples over {MEMORY_SAMPLES * 0.25:g} s",
             supervisor / 1024, "MiB"),
            ("  its median", statistics.median(samples) / 1024, "MiB")]
    claude = claude_idle_rss(tmp, env)
    if claude:
        rows.append(("claude (real CLI) resident memory, idle on the fake model, median of samples", claude / 1024, "MiB"))
        share = target("supervisor / claude resident memory, %", 100 * supervisor / claude, 5)
        rows.append(("supervisor / claude", float("nan"), f"{share:.1f}% (target < 5%)"))
    else:
        rows.append(("claude (real CLI) resident memory", float("nan"),
                     "not measured: real CLI not installed (bash .ci/install-claude)"))
    return rows


MEMORY_SAMPLES = 8  # 0.25 s apart


def rss_samples(pid: int, count: int) -> list[int]:
    samples = []
    for i in range(count):
        if i:
            time.sleep(0.25)
        samples.append(rss_kb(pid))
    return [kb for kb in samples if kb] or [0]


def claude_env(home: Path, env: dict[str, str], url: str) -> dict[str, str]:
    """The real claude, hermetic, against the fake model at `url`."""
    home.mkdir(exist_ok=True)
    return {**{k: v for k, v in env.items() if not k.startswith("ANTHROPIC")}, "HOME": str(home),
            "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-test", "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1", "IS_SANDBOX": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0"}


def claude_idle_rss(tmp: Path, env: dict[str, str]) -> int | None:
    """The real claude binary waiting on a slow model answer: its resident memory."""
    if not CLAUDE.exists():
        return None
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from fake_model import FakeModel, delay, text  # type: ignore[import-not-found, unused-ignore]

    with FakeModel() as fake:
        marker = fake.script("idle", [delay(8.0), text("done")])
        run_env = claude_env(tmp / "claude-home", env, fake.url)
        proc = subprocess.Popen([str(CLAUDE), "-p", "--output-format", "stream-json", "--verbose"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=run_env, cwd=tmp)
        assert proc.stdin
        proc.stdin.write(f"{marker} wait".encode())
        proc.stdin.close()
        fake.wait_for(lambda requests: any(not r.side for r in requests), timeout=30)
        time.sleep(1.0)
        rss = int(statistics.median(rss_samples(proc.pid, MEMORY_SAMPLES)))  # within the 8 s the answer takes
        proc.wait(timeout=60)
    return rss


# -- 6. output size ---------------------------------------------------------
def bench_output(tmp: Path, env: dict[str, str]) -> list[tuple[str, float, str]]:
    (tmp / "output").mkdir()
    repo = make_repo(tmp / "output", 1, env)
    long_task = "\n".join(f"@run echo line {i}" for i in range(200)) + "\n@result " + "A long answer. " * 30
    run_env = {**env, "PARALLEL_MAX_WORKERS": "10"}
    for i in range(10):
        sh(*envoy("parallel", "spawn", "--branch", f"feature/o{i}", "--task", long_task), cwd=repo, env=run_env)
    sh(*envoy("parallel", "wait"), cwd=repo, env=run_env)
    status = len(sh(*envoy("parallel", "status"), cwd=repo, env=env).encode())
    one = len(sh(*envoy("parallel", "results", "--worker", "feature-o0"), cwd=repo, env=env).encode())
    short = len(sh(*envoy("parallel", "results", "--worker", "feature-o0", "--tail", "5"), cwd=repo, env=env).encode())
    log = (repo / ".git" / "envoy" / "logs" / "feature-o0" / "1.jsonl").stat().st_size
    target("status JSON of 10 workers, bytes", status, 4096, noisy=False)
    return [("status JSON, 10 workers", status, f"bytes ({status / 4096:.2f} of the 4 KB target)"),
            ("results JSON, 1 worker, default --tail 50", one, f"bytes (its log: {log} bytes)"),
            ("results JSON, 1 worker, --tail 5", short, "bytes")]


# -- 7. landing ----------------------------------------------------------------
def bench_land(tmp: Path, env: dict[str, str], runs: int, check_s: float,
               goal: float | None) -> list[tuple[str, float, str]]:
    """4 finished workers landed with a check of `check_s` seconds: speculative (4 checks
    at once, each on top of the ones ahead) against serial (one at a time) against
    the check run once by hand. The ratio depends on the check's length: envoy's own
    cost (about a second) is fixed, so a short check shows it and a long one hides it;
    `goal` (the target for speculative, in T) is set for the long check only."""
    where = tmp / f"land-{check_s:g}s"
    where.mkdir()
    repo = make_repo(where, 10, env)
    base = sh("git", "rev-parse", "main", cwd=repo, env=env).strip()
    for i in range(4):
        sh(*envoy("parallel", "spawn", "--branch", f"w{i}", "--task", f"@write w{i}.txt {i}\n@commit w{i}"),
           cwd=repo, env=env)
    sh(*envoy("parallel", "wait"), cwd=repo, env=env)
    sh("git", "switch", "-qc", "elsewhere", cwd=repo, env=env)  # main is checked out nowhere
    check = f"sleep {check_s:g}"

    def land(width: int) -> Callable[[], object]:
        return lambda: sh(*envoy("parallel", "land", "--order", "fifo", "--check", check), cwd=repo,
                          env={**env, "PARALLEL_MAX_WORKERS": str(width)})

    def reset() -> None:  # main back where the workers started: all 4 land again
        sh("git", "update-ref", "refs/heads/main", base, cwd=repo, env=env)

    timed = side_by_side({"single": lambda: sh("sh", "-c", check, cwd=repo, env=env), "speculative": land(4),
                          "serial": land(1)}, runs, reset)
    single = timed["single"]
    ratio = timed["speculative"] / single
    if goal is not None:
        target(f"land, 4 workers, speculative / one check ({check})", ratio, goal)
    return [(f"one check by hand ({check})", single, "1.00x (T)"),
            (f"envoy parallel land, 4 workers, speculative (cap 4), check {check_s:g} s", timed["speculative"],
             f"{ratio:.2f}x T" + (f" (target <= {goal:g}x)" if goal is not None else
                                  f" (no target: envoy's fixed cost, {timed['speculative'] - single:.2f} s here, dominates a short check)")),
            (f"envoy parallel land, 4 workers, serial (cap 1), check {check_s:g} s", timed["serial"],
             f"{timed['serial'] / single:.2f}x T")]


SECTIONS = ("hook", "hookcost", "spawn", "status", "batch", "fleet", "memory", "output", "land", "watch", "ray", "raywatch",
            "node")
SHORT_CHECK, LONG_CHECK = 0.3, 2.0  # seconds: land's ratio is reported for both


def bench_watch(tmp: Path, env: dict[str, str], idle_s: float, changes: int) -> list[tuple[str, float, str]]:
    """`envoy parallel watch` over 200 workers in a real terminal (tmux): how soon a
    changed record is on screen, and the CPU it uses while nothing changes; against
    `envoy parallel status`, what a person polls without it."""
    import shutil

    from filelock import FileLock

    from envoy.worker import locks
    from envoy.worker.record import now_iso
    from envoy.worker.store import State

    if shutil.which("tmux") is None:
        return [("watch", float("nan"), "tmux is not installed: not measured")]
    (tmp / "watch").mkdir()
    repo = make_repo(tmp / "watch", 1, env)
    state = State(repo / ".git")
    state.ensure()
    held = []
    for i in range(200):
        running = i % 2 == 0
        name = f"w{i:03d}"
        state.write({"name": name, "branch": name, "base": "main", "base_sha": "0" * 40,
                     "path": str(tmp / f"claude-worker-{name}"), "state": "running" if running else "succeeded",
                     "session_id": "00000000-0000-4000-8000-%012d" % i, "created_at": now_iso(), "run": 1,
                     "started_at": now_iso(), "finished_at": None if running else now_iso(), "exit_code": 0,
                     "cost_usd": 0.0123, "num_turns": 7, "result": "Did the thing. " * 20, "runs": [{}], "options": {}})
        state.run_dir(name)
        line = {"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Bash",
                                                              "input": {"command": f"make test-{i}"}}]}}
        state.run_file(name, 1, "jsonl").write_text(json.dumps(line) + "\n")
        if running:  # a live supervisor holds its worker lock
            lock = FileLock(str(state.lock_path(locks.worker(name))), thread_local=False)
            lock.acquire()
            held.append(lock)
    socket = str(tmp / "watch" / "tmux.sock")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-S", socket, *args], capture_output=True, text=True, check=True).stdout

    command = " ".join(["env", "-u", "LINES", "-u", "COLUMNS", "CI=", *(f"{k}={v}" for k, v in env.items() if " " not in v),
                        *envoy("parallel", "watch")])
    env = {**env, "PARALLEL_MAX_WORKERS": "200"}  # 100 running under the cap: status does not wait for them to settle
    tmux("-f", "/dev/null", "new-session", "-d", "-x", "150", "-y", "60", "-c", str(repo), command)
    rows: list[tuple[str, float, str]] = []
    try:
        deadline = time.monotonic() + 30
        while "w000" not in tmux("capture-pane", "-p") and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = int(tmux("display", "-p", "#{pane_pid}").strip())
        latencies = []
        for n in range(changes):  # a finished worker's record changes; the screen must show it
            name = f"w{2 * n + 1:03d}"
            record = state.read(name) or {}
            record["state"], record["reason"] = "failed", f"bench{n}"
            start = time.perf_counter()
            state.write(record)
            while f"bench{n}" not in tmux("capture-pane", "-p"):
                if time.perf_counter() - start > 10:
                    break
            latencies.append(time.perf_counter() - start)
        redraw = statistics.median(latencies)
        status = median_time(lambda: sh(*envoy("parallel", "status"), cwd=repo, env=env), 3)
        rows.append(("watch, 200 workers: a changed record on screen (incl. tmux capture)", redraw,
                     f"{redraw / status:.2f}x of one envoy parallel status (target < 100 ms)"))
        target("watch: a change on screen, seconds", redraw, 0.1)
        rows.append(("envoy parallel status, 200 workers", status, "1.00x"))
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime

        before, start = cpu(), time.perf_counter()
        time.sleep(idle_s)
        used = (cpu() - before) / (time.perf_counter() - start)
        poll = status / 2.0  # a person running status every 2 s: a core-fraction of at least this
        rows.append((f"watch, 200 workers, idle {idle_s:g}s: CPU of one core", used * 100,
                     f"% ({used / poll:.2f}x of polling status every 2 s; target < 2%)"))
        target("watch: idle CPU, % of one core", used * 100, 2.0)
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)
        for lock in held:
            lock.release()
    return rows


# -- 9. a Ray cluster -----------------------------------------------------------
def bench_ray(tmp: Path, env: dict[str, str], runs: int, tasks: int, slots: int) -> list[tuple[str, float, str]]:
    """On a local two-node cluster in namespaces of its own (tests/e2e/ray_cluster.py):
    `tasks` one-second workers on `slots` worker slots against as many local ones at
    cap `slots` (each side one `spawn --batch`); 100 submissions as 100 `spawn --on`
    processes against one `spawn --batch --on`; and `status` of 100 remote workers
    (one HTTP request) against 100 local ones."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from ray_cluster import TOKEN, RayCluster, ray_bin

    from envoy.worker.record import now_iso
    from envoy.worker.store import State

    if ray_bin() is None:
        return [("Ray cluster", float("nan"), "skipped: no ray[default] installed (tests/requirements.txt)")]
    cluster = RayCluster(tmp / "ray", {}, worker_slots=slots)
    rows: list[tuple[str, float, str]] = []
    try:
        cluster.enter()
        cluster.node_env = {**env, "ENVOY_NODE_DIR": str(tmp / "ray" / "node")}
        cluster.start_ray()
        (tmp / "rayb").mkdir()
        repo = make_repo(tmp / "rayb", 10, env)
        bare = tmp / "rayb" / "remote.git"
        sh("git", "init", "-q", "--bare", str(bare), env=env)
        sh("git", "remote", "add", "origin", str(bare), cwd=repo, env=env)
        run_env = {**env, "PARALLEL_MAX_WORKERS": str(slots), "PARALLEL_RAY_TOKEN": TOKEN}
        task = "@sleep 1\n@result ok"
        counter = iter(range(100_000))

        def batch_file(prefix: str, count: int, text: str) -> tuple[Path, list[str]]:
            names = [f"{prefix}{next(counter)}" for _ in range(count)]
            path = tmp / "rayb" / f"{names[0]}.jsonl"
            path.write_text("".join(json.dumps({"branch": n, "task": text}) + "\n" for n in names))
            return path, names

        def remote_batch() -> None:  # one process submits them all: the ratio measures running them
            path, names = batch_file("r", tasks, task)
            sh(*envoy("parallel", "spawn", "--batch", str(path), "--on", cluster.address), cwd=repo, env=run_env)
            sh(*envoy("parallel", "wait", *(a for n in names for a in ("--worker", n))), cwd=repo, env=run_env)

        def local_batch() -> None:  # the rest queue, as --queue would
            path, names = batch_file("l", tasks, task)
            sh(*envoy("parallel", "spawn", "--batch", str(path)), cwd=repo, env=run_env)
            sh(*envoy("parallel", "wait", *(a for n in names for a in ("--worker", n))), cwd=repo, env=run_env)

        def reset() -> None:
            sh(*envoy("parallel", "cleanup", "--all", "--force"), cwd=repo, env=run_env)

        timed = side_by_side({"local": local_batch, "ray": remote_batch}, runs, reset)
        overhead = (timed["ray"] - timed["local"]) * slots / tasks
        rows += [(f"{tasks} one-second workers, local, cap {slots} (one spawn --batch)", timed["local"], "1.00x"),
                 (f"{tasks} one-second workers on the cluster, {slots} slots (one spawn --batch --on)", timed["ray"],
                  f"{timed['ray'] / timed['local']:.2f}x; Ray adds ~{overhead:.2f}s per job")]
        # status: 100 remote workers (pending on the cluster: a resource no node has) vs 100 local ones
        state = State(repo / ".git")
        reset()
        for i in range(100):
            name = f"s{i}"
            sid = "00000000-0000-4000-8000-%012d" % i
            record = {"name": name, "branch": f"feat/{name}", "base": "main", "base_sha": "0" * 40,
                      "path": str(tmp / f"claude-worker-{name}"), "state": "queued", "session_id": sid,
                      "created_at": now_iso(), "options": {}, "executor": "ray", "cluster": cluster.url,
                      "remote_url": str(bare), "job_id": f"envoy-{name}-1", "job_status": "PENDING", "run": 1}
            state.write(record)
            import urllib.request
            body = json.dumps({"entrypoint": "true", "submission_id": f"envoy-{name}-1",
                               "entrypoint_resources": {"envoy_bench_nowhere": 1}}).encode()
            urllib.request.urlopen(urllib.request.Request(
                f"{cluster.url}/api/jobs/", data=body, method="POST",
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}), timeout=30).read()
        remote_t = median_time(lambda: sh(*envoy("parallel", "status"), cwd=repo, env=run_env), runs * 3)
        for i in range(100):
            state.delete(f"s{i}")
        (tmp / "rays").mkdir()
        local_repo = make_repo(tmp / "rays", 1, env)
        local_state = State(local_repo / ".git")
        local_state.ensure()
        for i in range(100):
            name = f"s{i}"
            local_state.write({"name": name, "branch": f"feat/{name}", "base": "main", "base_sha": "0" * 40,
                               "path": str(tmp / f"claude-worker-{name}"), "state": "succeeded",
                               "session_id": "00000000-0000-4000-8000-%012d" % i, "created_at": now_iso(),
                               "started_at": now_iso(), "finished_at": now_iso(), "exit_code": 0, "options": {}})
        local_t = median_time(lambda: sh(*envoy("parallel", "status"), cwd=local_repo, env=run_env), runs * 3)
        rows += [("envoy parallel status, 100 local workers", local_t, "1.00x"),
                 ("envoy parallel status, 100 workers on the cluster (one GET /api/jobs/)", remote_t,
                  f"{remote_t / local_t:.2f}x (goal <= 2x)")]
        # Submitting 100: a process per worker against one batch, the jobs kept pending (a
        # resource no node has) so only submission is measured. Ray 2.60 does not stop or
        # delete a pending job (it answers {"stopped": true} and keeps it PENDING), so
        # `cleanup --force` would wait for each in vain: the untimed reset forgets the
        # records instead, and the jobs stay pending until the cluster stops. Last, so
        # they weigh on no other row.
        pending_env = {**run_env, "PARALLEL_RAY_RESOURCE": '{"envoy_bench_nowhere": 1}'}

        def one_by_one() -> None:
            for _ in range(100):
                sh(*envoy("parallel", "spawn", "--on", cluster.address, "--branch", f"p{next(counter)}",
                          "--task", task), cwd=repo, env=pending_env)

        def in_one_batch() -> None:
            path, _ = batch_file("q", 100, task)
            sh(*envoy("parallel", "spawn", "--batch", str(path), "--on", cluster.address), cwd=repo, env=pending_env)

        def forget() -> None:
            for record in state.all():
                state.delete(record["name"])

        forget()
        submitted = side_by_side({"single": one_by_one, "batch": in_one_batch}, runs, forget)
        rows += [("100 submissions to the cluster: 100 spawn --on processes", submitted["single"], "1.00x"),
                 ("100 submissions to the cluster: one spawn --batch --on", submitted["batch"],
                  f"{submitted['batch'] / submitted['single']:.2f}x "
                  f"({submitted['single'] / submitted['batch']:.1f}x faster)")]
    finally:
        cluster.stop()
    return rows


def bench_ray_watch(tmp: Path, turns: int) -> list[tuple[str, float, str]]:
    """The remote watcher's job-log reads (ray_watch.Watcher.actions), in this process
    against a fake Job API on loopback, over `turns` turns of a simulated clock (20 turns:
    a minute): the CPU of the watcher's thread (requests, parsing, record writes; the
    fake server's threads are not counted) for 2, 16 and 200 running remote workers,
    and for 200 with no budget (every log read every ACTIONS_EVERY, as before the
    budget). Each log is 300 of the node's lines (~20 KB). The steady state: untimed
    turns first read every log once (its first action written in the record).
    The rest of a turn (one GET /api/jobs/, the records read) is not measured here."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from envoy.executors import ray_watch
    from envoy.worker.store import State

    log = "".join(f"envoy 02:40:{i % 60:02d}.000: action: Bash: pytest -q tests/test_{i}.py\n"
                  for i in range(300)).encode()
    body = b'{"logs": ' + json.dumps(log.decode()).encode() + b"}"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    class Clock:
        now = 1000.0

        def monotonic(self) -> float:
            return self.now

    real_time, budget = ray_watch.time, ray_watch.LOG_READS
    cpu: dict[str, float] = {}
    try:
        for label, fleet, reads in (("2", 2, budget), ("16", 16, budget), ("200", 200, budget),
                                    ("200 unbudgeted", 200, 10 ** 9)):
            (tmp / f"watch-{fleet}-{reads}" / ".git").mkdir(parents=True)
            state = State(tmp / f"watch-{fleet}-{reads}" / ".git")
            state.ensure()
            running: list[Any] = []
            for i in range(fleet):
                name = f"w{i}"
                record: Any = {"name": name, "branch": name, "state": "running", "path": f"/tmp/claude-worker-{name}",
                               "executor": "ray", "cluster": url, "job_id": f"job-{name}", "last_action": None,
                               "last_action_at": None}
                state.write(record)
                running.append(record)
            clock = Clock()
            ray_watch.time, ray_watch.LOG_READS = clock, reads  # type: ignore[assignment]
            watcher = ray_watch.Watcher(state)
            for _ in range(-(-fleet // min(reads, fleet)) + 2):  # untimed: every record's first action written
                watcher.actions(running)
                clock.now += ray_watch.TURN
            started = time.thread_time()
            for _ in range(turns):
                watcher.actions(running)
                clock.now += ray_watch.TURN
            cpu[label] = time.thread_time() - started
    finally:
        ray_watch.time, ray_watch.LOG_READS = real_time, budget
        server.shutdown()
        server.server_close()
    minute = f"over {turns * ray_watch.TURN:g} s of turns"
    return [(f"watcher's log reads, 2 running remote workers ({minute})", cpu["2"], "CPU 1.00x"),
            (f"watcher's log reads, 16 running remote workers (budget {budget} a turn)", cpu["16"],
             f"CPU {cpu['16'] / cpu['2']:.1f}x of 2"),
            (f"watcher's log reads, 200 running remote workers (budget {budget} a turn)", cpu["200"],
             f"CPU {cpu['200'] / cpu['2']:.1f}x of 2, "
             f"{target('watcher log reads, 200 / 16 running workers', cpu['200'] / cpu['16'], 1.5):.2f}x of 16 "
             "(goal <= 1.5x: no growth with the fleet)"),
            ("watcher's log reads, 200 running remote workers, no budget (each log every 5 s)",
             cpu["200 unbudgeted"], f"CPU {cpu['200 unbudgeted'] / cpu['2']:.1f}x of 2, "
             f"{cpu['200 unbudgeted'] / cpu['200']:.1f}x the budgeted 200")]


def bench_node_cache(tmp: Path, env: dict[str, str], runs: int, commits: int, size: int) -> list[tuple[str, float, str]]:
    """The first job on a new node (executors/node.py): its cache fetches the job's ref,
    then checks the branch out in a worktree. A project whose history rewrote a large
    file `commits` times (`size` random bytes each): a full fetch brings every version,
    a partial one (--filter=blob:none, what the node does where the server allows it)
    only the blobs the checkout needs. The same git steps as the node's, over file://."""
    work = tmp / "nodecache"
    src = work / "src"
    src.mkdir(parents=True)
    sh("git", "init", "-q", cwd=src, env=env)
    for i in range(commits):
        (src / "big.bin").write_bytes(os.urandom(size))
        (src / "small.txt").write_text(f"version {i}\n")
        sh("git", "add", "-A", cwd=src, env=env)
        sh("git", "commit", "-qm", f"version {i}", cwd=src, env=env)
    bare = work / "remote.git"
    sh("git", "clone", "-q", "--bare", str(src), str(bare), env=env)
    sh("git", "config", "uploadpack.allowFilter", "true", cwd=bare, env=env)
    url = f"file://{bare}"
    made: list[Path] = []

    def first_job(partial: bool) -> None:
        cache = work / f"cache-{len(made)}.git"
        made.append(cache)
        sh("git", "init", "-q", "--bare", str(cache), env=env)
        refspec = "+refs/heads/main:refs/envoy/jobs/w/1"
        if partial:
            sh("git", "config", "remote.origin.url", url, cwd=cache, env=env)
            sh("git", "fetch", "--quiet", "--no-tags", "--filter=blob:none", "origin", refspec, cwd=cache, env=env)
        else:
            sh("git", "fetch", "--quiet", "--no-tags", url, refspec, cwd=cache, env=env)
        sh("git", "worktree", "add", "--quiet", "-B", "w", str(cache) + "-work", "refs/envoy/jobs/w/1", cwd=cache,
           env=env)

    def stored(cache: Path) -> int:
        return sum(f.stat().st_size for f in (cache / "objects").rglob("*") if f.is_file())

    timed = side_by_side({"full": lambda: first_job(False), "partial": lambda: first_job(True)}, runs)
    full_bytes, partial_bytes = stored(made[0]), stored(made[1])  # the warm-ups: full, then partial
    assert (Path(str(made[1]) + "-work") / "big.bin").stat().st_size == size  # the checkout is complete
    history = f"{commits} versions of a {size // 1024} KiB file"
    return [(f"first job on a new node, full fetch + checkout ({history})", timed["full"], ""),
            ("first job on a new node, partial fetch + checkout", timed["partial"],
             f"{timed['partial'] / timed['full']:.2f}x the full one's time"),
            ("  bytes stored in the node's cache, full", float(full_bytes), "bytes"),
            ("  bytes stored in the node's cache, partial", float(partial_bytes),
             f"bytes: {partial_bytes / full_bytes:.3f}x the full one's")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few runs and a small repo: only proves it works")
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run this section only (repeatable; default: all)")
    parser.add_argument("--check", action="store_true",
                        help="compare each figure with its target and exit 1 if one is worse by more than --margin")
    parser.add_argument("--margin", type=float, default=0.2,
                        help="the noise allowed by --check, a fraction of each target (default 0.2)")
    args = parser.parse_args()
    runs = 3 if args.quick else 15
    files = 2000 if args.quick else 20000
    sh(sys.executable, str(ROOT / "build.py"))
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="envoy-bench-") as name:
        tmp = Path(name)
        (tmp / "home").mkdir()
        env = hermetic_env(tmp / "home")
        try:
            print(f"envoy benchmarks ({'quick' if args.quick else 'full'}): medians of {runs} runs after a warm-up",
                  file=sys.stderr)
            sections = (
                    ("hook latency", lambda: bench_hooks(tmp, env, runs * 2)),
                    ("hook input size", lambda: bench_big_command(runs)),
                    ("hookcost (hook processes per tool call; a matching call against a bare interpreter)",
                     lambda: bench_hookcost(tmp, env, runs * 2)),
                    ("spawn overhead", lambda: bench_spawn(tmp, env, runs, files)),
                    ("status at scale", lambda: bench_status(tmp, env, runs)),
                    ("batch throughput", lambda: bench_batch(tmp, env, 1 if args.quick else 5,
                                                             16 if args.quick else 100, 4 if args.quick else 8, 0.5)),
                    ("fleet (status and conflicts at scale)", lambda: bench_fleet(tmp, env, 3 if args.quick else 7)),
                    ("memory", lambda: bench_memory(tmp, env)),
                    ("output size", lambda: bench_output(tmp, env)),
                    ("land speculation, a short check", lambda: bench_land(tmp, env, 1 if args.quick else 5,
                                                                           SHORT_CHECK, None)),
                    # the target is the README's, for its 2 s check: --quick's 1 s check has none
                    ("land speculation, a long check", lambda: bench_land(tmp, env, 1 if args.quick else 5,
                                                                          1.0 if args.quick else LONG_CHECK,
                                                                          None if args.quick else 1.5)),
                    ("watch (200 workers, in tmux)", lambda: bench_watch(tmp, env, 3.0 if args.quick else 20.0,
                                                                         3 if args.quick else 15)),
                    ("ray cluster (workers as Ray jobs vs local ones)",
                     lambda: bench_ray(tmp, env, 1 if args.quick else 3, 8 if args.quick else 40, 4 if args.quick else 8)),
                    ("raywatch (the remote watcher's job-log reads, a fake Job API: 2 to 200 running workers)",
                     lambda: bench_ray_watch(tmp, 20)),
                    ("node cache (first job on a new node: fetch of a repo with large history, full vs partial)",
                     lambda: bench_node_cache(tmp, env, 3 if args.quick else 5, 10 if args.quick else 20, 1 << 20)))
            for section, bench in sections:
                if args.only and section.split()[0] not in args.only:
                    continue
                print(f"  {section} ...", file=sys.stderr)
                rows.append((f"## {section}", 0.0, ""))
                rows += bench()
            breakdown = import_breakdown(env) if not args.only or "hook" in args.only else []
        finally:
            for repo in tmp.glob("*/repo"):  # stop whatever workers are left
                subprocess.run(envoy("parallel", "cleanup", "--all", "--force"), cwd=repo, env=env, capture_output=True)
    print(render(rows, breakdown))
    if not args.check:
        return 0
    ok, lines = check(args.margin)
    print("\n".join(["", f"--check ({len(TARGETS)} targets, noise margin {args.margin:.0%}):", *lines,
                     "no regression" if ok else "REGRESSION: a figure is worse than its target"]))
    return 0 if ok else 1


def render(rows: list[tuple[str, float, str]], breakdown: list[str]) -> str:
    lines = ["| measurement | median | ratio / note |", "|---|---:|---|"]
    for name, value, note in rows:
        if name.startswith("## "):
            lines.append(f"| **{name[3:]}** | | |")
        elif value != value:  # NaN: a ratio or a note without a figure of its own
            lines.append(f"| {name} | | {note} |")
        elif note.startswith("CPU"):
            lines.append(f"| {name} | {value * 1000:,.1f} ms | {note} |")
        elif note.startswith("hook processes"):
            lines.append(f"| {name} | {value:.0f} | {note} |")
        elif note in ("MiB",) or note.startswith("bytes") or "%" in note:
            lines.append(f"| {name} | {value:,.1f} | {note} |" if note == "MiB" or "%" in note
                         else f"| {name} | {value:,.0f} | {note} |")
        else:
            lines.append(f"| {name} | {value * 1000:,.1f} ms | {note} |")
    if breakdown:
        lines += ["", "import time of `envoy.pyz hook enforce-limits` (python3 -X importtime; self us | cumulative us | module):",
                  *(f"    {line}" for line in breakdown)]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
