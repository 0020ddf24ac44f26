"""The detached process behind each run of a worker.

It holds the worker's lock and its slot for the whole run (that is what
makes `running` true and the cap exact), runs the agent in the worktree in
its own process group, streams the agent's stream-json to the log, bounds
the run by its timeout, records how it ended, frees the slot, then lets
queued workers start.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path
from typing import Any

import sh
from filelock import Timeout

from . import agent, scheduler, slots
from .state import Record, State, elapsed, now_iso

GRACE = 5.0  # seconds between TERM and KILL when stopping the agent
LOCK_WAIT = 10.0  # a status probe may hold our lock for an instant

# Inherited from a calling Claude Code session, these would make the worker's
# `claude` think it is nested inside that session (and refuse to start).
PARENT_SESSION_VARS = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_SSE_PORT")


def _die_with_parent() -> None:
    """In the agent, before exec: if the supervisor dies (even by kill -9), so does the agent,
    so no agent outlives the lock that counts it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the agent may outlive a killed supervisor


class Stop(Exception):
    pass


def main(common_dir: Path, name: str, run: int, slot_index: int, ready_fd: int) -> int:
    state = State(common_dir)
    worker_lock = slots.lock(state, slots.worker(name))
    slot_lock = slots.lock(state, slots.slot(slot_index))
    try:
        worker_lock.acquire(timeout=LOCK_WAIT)
        slot_lock.acquire(timeout=LOCK_WAIT)
    except Timeout:
        state.log(f"supervisor {name}: could not take its locks")
        return 1
    record = state.read(name)
    if record is None:
        state.log(f"supervisor {name}: record vanished before start")
        return 1
    record.update(state="running", run=run, slot=slot_index, supervisor_pid=os.getpid(),
                  started_at=now_iso(), finished_at=None, duration_s=None, reason=None, error=None,
                  exit_code=None)
    state.write(record)
    os.write(ready_fd, b"ok")
    os.close(ready_fd)

    stop_requested = False

    def on_term(_signo: int, _frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        ending = _run_agent(state, record, run, slot_index, lambda: stop_requested)
    except Exception as exc:  # never leave a run without an ending
        state.log(f"supervisor {name}: {type(exc).__name__}: {exc}")
        ending = {"state": "failed", "reason": "supervisor_error", "error": str(exc)}
    _finish(state, record, run, ending)
    slot_lock.release()
    _start_queued(state, record)
    worker_lock.release()
    return 0


def _start_queued(state: State, record: Record) -> None:
    """Our slot is free: hand it to the queue (nothing else would while no one looks)."""
    try:
        from .git import Git

        scheduler.dispatch_if_queued(Git(record.get("repo") or record["path"]), state)
    except Exception as exc:
        state.log(f"supervisor {record['name']}: starting queued workers failed: {type(exc).__name__}: {exc}")


def _run_agent(state: State, record: Record, run: int, slot_index: int, stopping: Any) -> dict[str, Any]:
    options = record.get("options", {})
    name = record["name"]
    env = {k: v for k, v in os.environ.items() if k not in PARENT_SESSION_VARS}
    env.update(ENVOY_WORKER=name, PARALLEL_WORKER_DEPTH="1", ENVOY_WORKER_INDEX=str(slot_index),
               ENVOY_PORT=str(record.get("port") or ""))
    timeout = options.get("timeout_s") or 0
    deadline = time.monotonic() + timeout if timeout else None
    err_path = state.run_file(name, run, "err")
    if run == 1 and options.get("setup"):
        with open(os.devnull, "rb") as nothing, open(err_path, "ab") as out:
            out.write(f"== setup: {options['setup']}\n".encode())
            out.flush()
            code, why = _run(["sh", "-c", options["setup"]], nothing, out, out, record["path"], env, deadline,
                             stopping, state, name)
        if why or code != 0:
            return _ending_of_stop(why, timeout) if why else {
                "state": "failed", "reason": "setup_failed", "exit_code": code,
                "error": f"setup command exited {code}: {_last_err_line(state, name, run)}"}
    argv = agent.command(
        record["agent"], session_id=record["session_id"], resume=run > 1, system_prompt=agent.worker_prompt(record),
        permission_mode=options["permission_mode"], allowed_tools=options["allowed_tools"],
        model=options.get("model"), max_turns=options.get("max_turns"), budget_usd=options.get("budget_usd"))
    log = state.run_file(name, run, "jsonl")
    with open(state.run_file(name, run, "task"), "rb") as task, open(log, "ab") as out, open(err_path, "ab") as err:
        exit_code, why_stopped = _run(argv, task, out, err, record["path"], env, deadline, stopping, state, name)
    found = agent.outcome(log)
    result = found["result"]
    ending: dict[str, Any] = {"exit_code": exit_code, "result_message": result,
                              "session_id": found["session_id"] or record["session_id"]}
    if why_stopped:
        ending.update(_ending_of_stop(why_stopped, timeout))
    elif exit_code is not None and exit_code < 0 and result is None:
        ending.update(state="failed", reason="killed", error=f"agent killed by signal {-exit_code}")
    else:
        reason = agent.failure_reason(result)
        if reason is None and exit_code != 0:
            reason = "exit_code"
        if reason is None:
            ending.update(state="succeeded")
        else:
            detail = (result or {}).get("errors") or (result or {}).get("result") or _last_err_line(state, name, run)
            if isinstance(detail, list):
                detail = "; ".join(str(d) for d in detail)
            ending.update(state="failed", reason=reason,
                          error=f"{reason} (exit {exit_code})" + (f": {detail}" if detail else ""))
    return ending


def _ending_of_stop(why: str, timeout: float) -> dict[str, Any]:
    if why == "timeout":
        return {"state": "failed", "reason": "timeout", "error": f"killed after the {timeout:g}s timeout"}
    return {"state": "failed", "reason": "stopped", "error": "stopped by envoy parallel cleanup"}


def _run(argv: list[str], stdin: Any, out: Any, err: Any, cwd: str, env: dict[str, str], deadline: float | None,
         stopping: Any, state: State, name: str) -> tuple[int | None, str | None]:
    """Run one process in its own process group until it ends, the deadline passes or a
    stop is requested; (exit code, "timeout" / "stopped" / None)."""
    process = sh.Command(argv[0])(
        *argv[1:], _in=stdin, _out=out, _err=err, _cwd=cwd, _env=env, _bg=True, _bg_exc=False,
        _new_session=True, _preexec_fn=_die_with_parent, _tty_out=False, _ok_code=list(range(-64, 256)),
        _no_out=True, _no_err=True)
    group = process.pid
    current = state.read(name)
    if current is not None:
        state.write({**current, "agent_pid": group})
    why_stopped = None
    while process.is_alive():
        if stopping():
            why_stopped = "stopped"
        elif deadline is not None and time.monotonic() > deadline:
            why_stopped = "timeout"
        if why_stopped:
            _kill_group(group, process)
            break
        time.sleep(0.1)
    process.wait()
    _kill_group(group, None, grace=0)  # strays it left in its group
    return process.exit_code, why_stopped


def _kill_group(group: int, process: Any, grace: float = GRACE) -> None:
    """TERM the agent's process group, KILL it after the grace period."""
    try:
        os.killpg(group, signal.SIGTERM if grace else signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    if process is None:
        return
    deadline = time.monotonic() + grace
    while process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _last_err_line(state: State, name: str, run: int) -> str:
    try:
        lines = state.run_file(name, run, "err").read_text(encoding="utf-8", errors="replace").split("\n")
    except OSError:
        return ""
    lines = [line.strip() for line in lines if line.strip()]
    return lines[-1][:300] if lines else ""


def _finish(state: State, record: Record, run: int, ending: dict[str, Any]) -> None:
    """Record how the run ended, in the record and in its `runs` history."""
    result = ending.pop("result_message", None) or {}
    record = state.read(record["name"]) or record
    record.update(ending)
    record.setdefault("reason", None)
    record.setdefault("error", None)
    record["finished_at"] = now_iso()
    record["duration_s"] = elapsed(record)
    record["result"] = result.get("result")
    run_cost = result.get("total_cost_usd")
    run_turns = result.get("num_turns")
    runs = [r for r in record.get("runs", []) if r.get("run") != run]
    runs.append({"run": run, "state": record["state"], "reason": record.get("reason"),
                 "session_id": record["session_id"], "exit_code": record.get("exit_code"),
                 "cost_usd": run_cost, "num_turns": run_turns, "started_at": record.get("started_at"),
                 "finished_at": record["finished_at"], "duration_s": record["duration_s"]})
    record["runs"] = runs
    record["cost_usd"] = round(sum(r.get("cost_usd") or 0 for r in runs), 6)
    record["num_turns"] = sum(r.get("num_turns") or 0 for r in runs)
    state.write(record)
