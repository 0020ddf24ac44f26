"""Telling someone that a worker ended: PARALLEL_ON_END (spawn --on-end) and a
desktop notification, exactly once per end.

Whichever envoy process records an end (the finisher beside the agent, the
supervisor when the agent never started, the queue failing a worker that can
never start, whoever finds a worker `lost`) calls `announce` right after its
final write of the record. `announce` starts a detached runner (`envoy
_on_end`) and returns: the worker's end is not delayed by the user's command.
The runner claims the end with an `O_CREAT|O_EXCL` marker,
logs/<name>/ended-<run>-<finished_at>, so of any number of runners started for
one end (concurrent recorders, or a `status` that finds an end whose recorder
was killed before it could start one: `sweep`) exactly one runs the command.

The command's output and failures go to logs/<name>/on-end.log; nothing here
ever fails the recording process. Light (os only at import): the finisher
loads it in the watcher's bare interpreter.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not loaded at run time: the finisher imports this module
if TYPE_CHECKING:
    from envoy.worker.record import Record
    from envoy.worker.store import State

COMMAND_TIMEOUT = 60.0  # seconds the PARALLEL_ON_END command may take before its group is killed
NOTIFY_TIMEOUT = 10.0
FINISHED = ("succeeded", "failed", "lost", "stopped")  # `stopped` is issue 20's state; harmless before it exists


def wanted(record: Record) -> bool:
    options = record.get("options") or {}
    return bool(options.get("on_end") or options.get("notify"))


def marker_name(record: Record) -> str:
    """The marker of the record's current end: its run and the second it ended (a
    resume that fails to start keeps its run number but ends anew)."""
    stamp = "".join(c for c in str(record.get("finished_at") or "") if c.isdigit())
    return f"ended-{int(record.get('run') or 0)}-{stamp}"


def announce(state: State, record: Record) -> None:
    """After the final write of a worker's end: start the runner that claims the end
    and runs the command. Never raises."""
    try:
        if record.get("state") not in FINISHED or not wanted(record):
            return
        if os.path.lexists(state.logs / record["name"] / marker_name(record)):
            return  # already claimed: spare the process
        if "ENVOY_RUN_ID" in os.environ:
            return  # a process of a worker's run (its agent ran `status`): what it starts dies with that run
        from envoy import processes

        processes.start_detached([*processes.self_command(bare=True), "_on_end", str(state.root.parent),
                                  record["name"], marker_name(record)], state.log_file)
    except Exception as exc:
        state.log(f"on-end {record.get('name')}: could not start: {type(exc).__name__}: {exc}")


def sweep(state: State, record: Record) -> None:
    """An end recorded by a process killed before it started its runner: the next
    reader of the record (status, wait, watch) starts it. One stat when done."""
    if record.get("state") in FINISHED and wanted(record):
        announce(state, record)


def claim(state: State, name: str, marker: str) -> bool:
    """True for exactly one caller per marker. The marker is made 0600 in logs/<name>,
    itself checked to be a real directory (never followed through a symlink)."""
    import stat

    directory = state.logs / name
    try:
        if not stat.S_ISDIR(os.lstat(directory).st_mode):
            state.log(f"on-end {name}: {directory} is not a directory; not announced")
            return False
    except FileNotFoundError:
        state.run_dir(name)
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
    except FileExistsError:
        return False
    finally:
        os.close(dfd)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    return True


def environment(state: State, record: Record, run: int) -> dict[str, str]:
    """What the command is told, as environment variables (never in its command line)."""
    attention = record.get("attention") or []  # issue 16's field; absent on a clean end
    left = record.get("left") or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVOY_", "PARALLEL_WORKER_"))}
    env.update({
        "ENVOY_WORKER": record["name"],
        "ENVOY_BRANCH": record["branch"],
        "ENVOY_STATE": str(record.get("state") or ""),
        "ENVOY_REASON": str(record.get("reason") or ""),
        "ENVOY_ERROR": str(record.get("error") or "")[:2000],
        "ENVOY_ATTENTION": "\n".join(str(a) for a in attention) if isinstance(attention, list) else "",
        "ENVOY_COMMITS": str(left.get("commits", "")) if isinstance(left, dict) else "",
        "ENVOY_RESULT_FILE": str(state.run_file(record["name"], run, "jsonl")),
        "ENVOY_RUN": str(run),
        "ENVOY_REPO": str(record.get("repo") or state.root.parent.parent),
        "ENVOY_WORKTREE": record["path"],
        "ENVOY_COST_USD": str(record.get("cost_usd") or 0),
        "ENVOY_DURATION_S": str(record.get("duration_s") or ""),
    })
    return env


def main(argv: list[str]) -> int:
    """`envoy _on_end <common dir> <name> <marker>`, detached: claim the end, run the
    command and the notification, log what failed."""
    from pathlib import Path

    from envoy.worker.store import State

    state = State(Path(argv[0]))
    name, marker = argv[1], argv[2]
    import re

    from envoy.worker.record import is_worker_name

    if not is_worker_name(name) or not re.fullmatch(r"ended-[0-9]+-[0-9]*", marker):
        state.log(f"on-end: refused the arguments {name!r} {marker!r}")
        return 0
    try:
        record = state.read(name)
        if record is None or not claim(state, name, marker):
            return 0
        run = int(marker.split("-")[1])
        if marker_name(record) != marker:  # resumed before this runner started: tell of the end it had
            runs = [r for r in record.get("runs") or [] if r.get("run") == run]
            if runs:
                record = {**record, "state": runs[-1].get("state") or "failed", "reason": runs[-1].get("reason")}
        env = environment(state, record, run)
        options = record.get("options") or {}
        command = options.get("on_end")
        if command:
            _run(state, name, ["sh", "-c", command], env, COMMAND_TIMEOUT)
        if options.get("notify"):
            _notify(state, name, record, env)
    except Exception as exc:
        state.log(f"on-end {name}: {type(exc).__name__}: {exc}")
    return 0


def _run(state: State, name: str, argv: list[str], env: dict[str, str], timeout: float) -> None:
    import signal
    import subprocess

    from envoy.worker.record import now_iso

    cwd = env["ENVOY_REPO"] if os.path.isdir(env["ENVOY_REPO"]) else "/"
    with state.private_open(state.run_dir(name) / "on-end.log", "ab") as log:
        log.write(f"{now_iso()} run {env['ENVOY_RUN']} {env['ENVOY_STATE']}: {argv[-1]}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       start_new_session=True)
        except OSError as exc:
            log.write(f"{now_iso()} could not start: {exc}\n".encode())
            return
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            log.write(f"{now_iso()} killed after {timeout:g}s\n".encode())
            return
        if code != 0:
            log.write(f"{now_iso()} exited {code}\n".encode())


def _notify(state: State, name: str, record: Record, env: dict[str, str]) -> None:
    import shutil

    tool = shutil.which("notify-send", path=env.get("PATH"))
    if tool is None:
        return
    attention = env["ENVOY_ATTENTION"].replace("\n", "; ")
    body = f"{record['branch']}: {env['ENVOY_STATE']}" + (f" ({env['ENVOY_REASON']})" if env["ENVOY_REASON"] else "")
    body += f"\nneeds attention: {attention}" if attention else ""
    _run(state, name, [tool, "--app-name=envoy", f"envoy: worker {name} ended", body], env, NOTIFY_TIMEOUT)


def notify_default(setting: bool | None) -> bool:
    """Whether spawn asks for a desktop notification: PARALLEL_NOTIFY=1/0, else on
    unless in CI (CI=true) — and only where `notify-send` is on PATH."""
    import shutil

    on = setting if setting is not None else not in_ci()
    return on and shutil.which("notify-send") is not None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
