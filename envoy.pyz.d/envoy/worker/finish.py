"""Phase 3 of a worker's run (see supervisor.py): how the run ended, recorded.

It runs in the watcher's bare interpreter once the agent has exited and the
slot is free, so it loads little: the queue machinery (filelock, git) only
when no queue runner is listening to be told.
"""
from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False  # typing is not loaded at run time: this runs beside every agent
if TYPE_CHECKING:
    from typing import Any

from envoy import agent, processes, usage
from envoy.worker import on_end, wake
from envoy.worker.record import Record, elapsed, now_iso, transition
from envoy.worker.store import State


def finish(args: dict[str, Any]) -> int:
    """Phase 3, in the watcher's process once the agent has ended and the watcher has
    freed the slot: record the end, wake the queue, let go of the worker."""
    state = State(Path(args["common_dir"]))
    name, run = args["name"], args["run"]
    result: dict[str, Any] = {}
    try:
        ending, result = agent_ending(state, name, run, args["exit_code"], args["why"])
    except Exception as exc:
        state.log(f"finisher {name}: {type(exc).__name__}: {exc}")
        ending = {"state": "failed", "reason": "supervisor_error", "error": str(exc)}
    try:
        ending["left"], ending["attention"] = assess(state, name, run, result)
    except Exception as exc:  # what it left stays unknown; the end is still recorded
        state.log(f"finisher {name}: what the worker left: {type(exc).__name__}: {exc}")
    try:
        record_end(state, name, run, ending, result)
    except Exception as exc:  # the end is recorded, if only as this failure: never left `running` (then lost)
        state.log(f"finisher {name}: recording the end: {type(exc).__name__}: {exc}")
        record_end(state, name, run, {"state": "failed", "reason": "supervisor_error", "exit_code": args["exit_code"],
                                      "error": f"could not record how the run ended: {type(exc).__name__}: {exc}"})
    if usage.cost(result.get("total_cost_usd")):  # only a run that cost something can go over the budget
        from envoy.worker.stop_request import check_budget

        check_budget(state, name)
    start_queued(state, name)
    os.close(args["worker_fd"])  # the flock goes with its last descriptor
    return 0


def assess(state: State, name: str, run: int, result: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What the worker left (left.assess), looked at in its worktree, else (removed
    meanwhile) from the repository, where its branch still is."""
    from envoy.git import Git  # here: only a run that ended pays for git's machinery
    from envoy.worker import left

    record: Record = state.read(name) or {}
    if not record.get("path"):
        return left.assess(None, {}, state.run_file(name, run, "jsonl"), result)
    where = Path(record["path"])
    git = Git(where if where.is_dir() else state.root.parent, state.root.parent)
    return left.assess(git, record, state.run_file(name, run, "jsonl"), result)


def ending_of_stop(why: str, timeout: float, asked: tuple[str, str] | None = None) -> Record:
    """A run ended by its timeout (failed), or by a stop (`stopped`, resumable); `asked`:
    why the stop was asked for (stop_request.asked), else a cleanup --force stopped it."""
    if why == "timeout":
        return {"state": "failed", "reason": "timeout", "error": f"killed after the {timeout:g}s timeout"}
    reason, error = asked or ("stopped", "stopped by envoy parallel cleanup")
    return {"state": "stopped", "reason": reason, "error": error}


def agent_ending(state: State, name: str, run: int, exit_code: int | None,
                 why: str | None) -> tuple[Record, dict[str, Any]]:
    """How the run ended, from the agent's exit and its stream-json: the ending, and
    the agent's `result` message (checked by agent.outcome)."""
    record: Record = state.read(name) or {}
    found = agent.outcome(state.run_file(name, run, "jsonl"))
    result = found["result"]  # None: the agent printed no result at all
    ending: Record = {"exit_code": exit_code, "session_id": found["session_id"] or record.get("session_id") or ""}
    if why:
        from envoy.worker.stop_request import asked

        ending.update(ending_of_stop(why, (record.get("options") or {}).get("timeout_s") or 0,
                                     asked(state, name) if why == "stopped" else None))
        return ending, result or {}
    reason, error = agent.failure(result, exit_code, state.run_file(name, run, "err"))
    return {**ending, "state": "failed" if reason else "succeeded", "reason": reason, "error": error}, result or {}


MAX_RESULT = 64 * 1024  # characters of the final answer kept in the record, which every `status` reads


def record_end(state: State, name: str, run: int, ending: Record, result: dict[str, Any] | None = None) -> None:
    """Record how the run ended (`ending`: its state and the fields that say why), in
    the record and in its `runs` history. What came from the agent (`result`) was
    checked by agent.outcome; the history is re-checked, as it comes from disk."""
    result = result or {}
    record = state.read(name)
    if record is None:
        return
    changes: Record = {"reason": None, "error": None, "left": None, "attention": None}
    changes.update(ending)
    transition(record, changes.pop("state", "failed"), changes)
    record["finished_at"] = now_iso()
    record["duration_s"] = elapsed(record)
    answer = result.get("result")
    if isinstance(answer, str) and len(answer) > MAX_RESULT:
        answer = answer[:MAX_RESULT] + f"\n[... cut: the whole answer is in {state.run_file(name, run, 'jsonl')}]"
    record["result"] = answer
    history = record.get("runs")
    runs = [r for r in history if isinstance(r, dict) and r.get("run") != run] if isinstance(history, list) else []
    runs.append({"run": run, "state": record["state"], "reason": record.get("reason"),
                 "session_id": record.get("session_id"), "exit_code": record.get("exit_code"),
                 "cost_usd": usage.cost(result.get("total_cost_usd")),
                 "num_turns": usage.turns(result.get("num_turns")),
                 "started_at": record.get("started_at"), "finished_at": record["finished_at"],
                 "duration_s": record["duration_s"]})
    record["runs"] = runs
    record["cost_usd"] = usage.total_cost(runs)
    record["num_turns"] = usage.total_turns(runs)
    state.write(record)
    on_end.announce(state, record)  # after the final write: the command sees what it says


def start_queued(state: State, name: str) -> None:
    """A slot is free or a dependency ended: make sure the queue hears of it. A
    listening runner is poked; without one (killed), a new runner is started, if
    anything is queued. Started as a process of its own (`envoy _queue`), not run
    here: this process holds the worker's lock until it returns, and the queue's
    machinery (filelock, git) would only weigh on it."""
    if wake.poke(state.root):
        return
    try:
        if any(r.get("state") == "queued" for r in state.all()):
            processes.start_detached([*processes.self_command(bare=True), "_queue", str(state.root.parent)],
                                     state.log_file)
    except Exception as exc:
        state.log(f"supervisor {name}: starting queued workers failed: {type(exc).__name__}: {exc}")
