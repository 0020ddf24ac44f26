"""The detached process behind each run of a worker, in three phases that
keep one PID (so the agent stays its child) and the same lock descriptors:

1. `main` (forked by the launcher, so it starts in milliseconds): take the
   worker's lock and its slot (that is what makes `running` true and the cap
   exact), tell the launcher it is ready, run the setup command, start the
   agent in the worktree in its own process group, then exec
2. watcher.py in a bare interpreter, which waits for the agent within its
   timeout, frees the slot, and calls
3. `ending.finish`: read the agent's stream-json, record how the run ended,
   wake the queue, and exit (the kernel drops the worker's lock).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from filelock import Timeout

from envoy import agent, files, processes
from envoy.worker import locks, watcher
from envoy.worker.finish import ending_of_stop, record_end, start_queued
from envoy.worker.record import Record, now_iso, transition
from envoy.worker.store import State

LOCK_WAIT = 10.0  # a status probe may hold our lock for an instant

def main(common_dir: Path, name: str, run: int, slot_index: int, ready_fd: int) -> int:
    state = State(common_dir)
    worker_lock = locks.lock(state, locks.worker(name))
    slot_lock = locks.lock(state, locks.slot(slot_index))
    try:
        worker_lock.acquire(timeout=LOCK_WAIT, poll_interval=locks.POLL)
        slot_lock.acquire(timeout=LOCK_WAIT, poll_interval=locks.POLL)
    except Timeout:
        state.log(f"supervisor {name}: could not take its locks")
        return 1
    record = state.read(name)
    if record is None:
        state.log(f"supervisor {name}: record vanished before start")
        return 1
    processes.become_subreaper()  # before anything of the worker starts: all it leaves comes to us
    transition(record, "running", {"run": run, "slot": slot_index, "supervisor_pid": os.getpid(),
                                   "run_id": processes.new_run_id(), "started_at": now_iso(), "finished_at": None,
                                   "duration_s": None, "reason": None, "error": None, "exit_code": None,
                                   "left": None, "attention": None})  # a new run: what the last one left is re-assessed at its end
    # Before the launcher hears "ok" (and lets go of the mutex a `stop` takes): a stop
    # that comes at once is a stop, not a supervisor killed by TERM's default action.
    stop: list[str] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("stopped"))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    state.write(record)
    os.write(ready_fd, b"ok")
    os.close(ready_fd)
    try:
        ending: Record = _start_agent(state, record, run, slot_index, stop, (locks.worker(name), locks.slot(slot_index)))
    except Exception as exc:  # never leave a run without an ending
        state.log(f"supervisor {name}: {type(exc).__name__}: {exc}")
        ending = {"state": "failed", "reason": "supervisor_error", "error": str(exc)}
    # Only when the agent never started (or setup failed): the run ends here.
    record_end(state, name, run, ending)
    slot_lock.release()
    start_queued(state, name)
    worker_lock.release()
    return 0


def _start_agent(state: State, record: Record, run: int, slot_index: int, stop: list[str],
                 held: tuple[str, str]) -> Record:
    """Run the setup, start the agent and exec the watcher (no return), or return the
    ending of a run that failed before its agent started."""
    options = record.get("options", {})
    name = record["name"]
    env = agent.environment(ENVOY_WORKER=name, PARALLEL_WORKER_DEPTH="1", ENVOY_WORKER_INDEX=str(slot_index),
                            ENVOY_PORT=str(record.get("port") or ""), **{processes.RUN_ID: record["run_id"]})
    timeout = options.get("timeout_s") or 0
    deadline = time.time() + timeout if timeout else None
    err_path = state.run_file(name, run, "err")
    setup = options.get("setup")
    if run == 1 and setup:
        with open(os.devnull, "rb") as nothing, state.private_open(err_path, "ab") as out:
            out.write(f"== setup: {setup}\n".encode())
            out.flush()
            code, why = _run_setup(setup, nothing, out, record["path"], env, deadline, stop)
        if why:
            from envoy.worker.stop_request import asked

            return ending_of_stop(why, timeout, asked(state, name) if why == "stopped" else None)
        if code != 0:
            return {"state": "failed", "reason": "setup_failed", "exit_code": code,
                    "error": f"setup command exited {code}: {files.last_line(err_path)}"}
    argv = agent.command(
        record["agent"], session_id=record["session_id"], resume=run > 1, system_prompt=worker_prompt(record),
        permission_mode=options.get("permission_mode"), allowed_tools=options.get("allowed_tools") or [],
        model=options.get("model"), max_turns=options.get("max_turns"), budget_usd=options.get("budget_usd"))
    with os.fdopen(files.open_below(state.base, state.run_file(name, run, "task"), os.O_RDONLY), "rb") as task, \
            state.private_open(state.run_file(name, run, "jsonl"), "ab") as out, state.private_open(err_path, "ab") as err:
        process = agent.start(argv, task, out, err, record["path"], env)
    current = state.read(name) or record
    state.write({**current, "agent_pid": process.pid})
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    if stop:  # a stop came while the agent was starting: pending across the exec, the watcher hears it
        os.kill(os.getpid(), signal.SIGTERM)
    _exec_watcher(state, name, run, record["run_id"], process.pid, deadline, held)
    raise AssertionError("not reached")


WORKER_PROMPT = """\
You are envoy worker "{name}", a headless Claude Code session in your own git worktree.
- Worktree: {path}
- Branch: {branch} (created from {base} at {base_short})
Work only inside this worktree. Before you finish, commit your work on branch {branch} \
with clear commit messages: uncommitted work is not reported as done. Never push, never \
switch, create or delete branches, never rewrite history that is not yours.{copied_note}
Do not start other workers: nested `envoy parallel spawn` (or any other way of launching \
parallel sessions) is refused inside a worker. If the task needs more parallelism, say so.
End with a short summary of what you did and what is left undone."""


def worker_prompt(record: Record) -> str:
    copied = record.get("copied") or []
    note = (f"\nThese files were copied in from the main checkout for local use; never commit them: "
            f"{', '.join(copied[:20])}{' ...' if len(copied) > 20 else ''}") if copied else ""
    return WORKER_PROMPT.format(base_short=(record.get("base_sha") or "")[:10], copied_note=note, **record)


def _run_setup(command: str, stdin: Any, out: Any, cwd: str, env: dict[str, str], deadline: float | None,
               stop: list[str]) -> tuple[int | None, str | None]:
    """The setup command, to its end, its deadline or a stop: (exit code, why stopped).
    Nothing it started survives it."""
    process = agent.start(["sh", "-c", command], stdin, out, out, cwd, env)
    why = None
    while not watcher.has_exited(process.pid):
        why = "stopped" if stop else "timeout" if deadline is not None and time.time() > deadline else None
        if why:
            processes.kill_group(process.pid, lambda: not watcher.has_exited(process.pid))
            break
        time.sleep(0.05)
    while not watcher.has_exited(process.pid):  # killed: it goes at once
        time.sleep(0.01)
    processes.kill_group(process.pid, None)  # before it is reaped: strays in its group
    code = watcher.reap(process.pid)
    process.returncode = -1 if code is None else code  # reaped here: Popen must never wait for its pid again
    processes.end_strays(env[processes.RUN_ID], {str(process.pid)})  # and those that left its group
    return code, why


def _exec_watcher(state: State, name: str, run: int, run_id: str, pid: int, deadline: float | None,
                  held: tuple[str, str]) -> None:
    """Become watcher.py, keeping our PID, the agent as our child and the locks' descriptors."""
    fds = [locks.descriptor_of(state, what) for what in held]
    for fd in fds:
        os.set_inheritable(fd, True)
    entry = processes.self_command(bare=True)
    job = [str(pid), "-" if deadline is None else repr(deadline), str(state.root.parent), name, str(run),
           str(fds[0]), str(fds[1]), run_id]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # a stop waits for the watcher's handler
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(entry[0], [*entry, "_watch", *job])
