"""Stopping workers: the agent and every process of its run end; the worktree,
branch and transcript stay; the record says `stopped` (resume continues it,
cleanup removes it). A queued worker is stopped before it starts.

A running worker is stopped by its own supervisor: SIGTERM to it (checked to be
the process holding the worker's lock) makes the watcher end the agent's group
and the run's orphans and record the end. Why it was stopped (`stopped` by a
user, `budget`) is left beside its logs first, for the finisher to record.

A worker with a job on a cluster is its executor's to stop (`executors.stop_many`:
a pending job is taken back, a running one stopped there); `by_executor` says
which, for `stop` and the budget stop alike.
"""
from __future__ import annotations

from envoy import executors, processes
from envoy.errors import EnvoyError
from envoy.worker.record import ACTIVE, Record, now_iso, transition
from envoy.worker.stop_request import ask, forget, over_budget, stoppable
from envoy.worker.store import State

TYPE_CHECKING = False  # filelock and typing are loaded only when used
if TYPE_CHECKING:
    from typing import Any

GRACE = 15.0  # the watcher gives the agent's group 5 s between TERM and KILL, then records the end
USER = ("stopped", "stopped by envoy parallel stop")
BUDGET = "budget"


def by_executor(record: Record) -> bool:
    """Whether the worker is stopped through its executor: a remote one with a job (pending
    or running on its cluster). One not submitted yet (--after) is stopped here before it
    starts, as a local queued one is."""
    return not executors.is_local(record) and (
        record["state"] in ACTIVE or bool(record.get("job_id")) and record["state"] == "queued")


def refuse(record: Record) -> EnvoyError:
    """The typed answer for a worker that is not running or queued."""
    name, now = record["name"], record["state"]
    if now == "stopped":
        return EnvoyError("already_stopped", f"worker {name} is already stopped"
                          + (f" ({record.get('reason')})" if record.get("reason") not in (None, "stopped") else ""),
                          f"continue it (envoy parallel resume --worker {name} --task ...) or remove it "
                          f"(envoy parallel cleanup --worker {name})")
    return EnvoyError("not_running", f"worker {name} has already ended ({now}): there is nothing to stop",
                      f"envoy parallel results --worker {name}; envoy parallel cleanup --worker {name} removes it")


def signal_one(state: State, name: str, reason: str, error: str) -> tuple[Record, bool]:
    """Under the launch mutex (so the queue cannot start it meanwhile): a queued worker
    becomes `stopped` at once; a running one is asked to stop. (record, whether its
    supervisor was signalled and must be waited for). Raises `refuse` for one that
    has ended."""
    from envoy.worker import locks, lookup

    with locks.launch_mutex(state):
        record = state.read(name)
        if record is None:
            raise EnvoyError("not_found", f"worker {name} was removed meanwhile", "envoy parallel status lists the workers")
        record = lookup.refresh(state, record)
        if record["state"] == "queued":
            transition(record, "stopped", {"reason": reason, "error": error, "finished_at": now_iso()})
            state.write(record)
            return record, False
        if record["state"] not in ACTIVE:
            raise refuse(record)
        pid = record.get("supervisor_pid")
        if not isinstance(pid, int) or not locks.opened_by(state, locks.worker(name), pid):
            # a pid read from disk is signalled only when it is the process holding the worker's lock
            raise EnvoyError("still_running", f"worker {name} runs, but its record does not name the process "
                             "that holds its lock", "retry in a moment (it may be starting)")
        ask(state, name, reason, error)
        processes.terminate(pid)
        return record, True


def settle(state: State, record: Record, grace: float = GRACE) -> Record:
    """Wait for a signalled worker's supervisor to record its end and let go; then end
    whatever process of the run outlived it. Its final record."""
    from filelock import Timeout

    from envoy.worker import locks

    name = record["name"]
    lock = locks.lock(state, locks.worker(name))
    try:
        lock.acquire(timeout=grace, poll_interval=0.02)
    except Timeout:
        raise EnvoyError("still_running", f"worker {name} did not stop within {grace:g}s",
                         f"retry envoy parallel stop --worker {name}, or envoy parallel cleanup --worker {name} --force") from None
    try:
        fresh = state.read(name) or record
        processes.end_run(fresh.get("run_id"))  # any process of it that left the supervisor's care
        forget(state, name)  # it ended by itself before the signal: the request is moot
        return fresh
    finally:
        lock.release()


def stop_many(state: State, names: list[str], reason: str, error: str) -> tuple[list[Record], list[dict[str, Any]]]:
    """Stop each named worker: every signal first, then every wait, so a fleet stops in
    one grace period, not one per worker. (final records, refusals as dicts)."""
    signalled: list[Record] = []
    done: list[Record] = []
    refused: list[dict[str, Any]] = []
    for name in names:
        try:
            record, wait = signal_one(state, name, reason, error)
        except EnvoyError as exc:
            refused.append({"name": name, **exc.as_dict()})
            continue
        (signalled if wait else done).append(record)
    for record in signalled:
        try:
            done.append(settle(state, record))
        except EnvoyError as exc:
            refused.append({"name": record["name"], **exc.as_dict()})
    return done, refused


def enforce_budget(common_dir: str) -> int:
    """`envoy _budget <git common dir>`: started by a finisher that found the workers'
    total cost over PARALLEL_BUDGET_USD: every queued and running worker is stopped,
    with reason `budget`; one with a job on a cluster through its executor, as `stop`
    does (a pending job is taken back, so it never runs the task)."""
    from pathlib import Path

    from envoy.config import Config

    state = State(Path(common_dir))
    try:
        records = state.all()
        repo = next((r.get("repo") for r in records if r.get("repo")), None)
        if repo is None:
            return 0
        budget = Config(Path(repo)).get("PARALLEL_BUDGET_USD")
        if not over_budget(records, budget):
            return 0
        from envoy import usage

        spent = usage.total_cost(records)
        names = stoppable(records)
        remote = [r for r in records if r["name"] in names and by_executor(r)]
        _done, refused = stop_many(state, [n for n in names if n not in {r["name"] for r in remote}], BUDGET,
                                   f"stopped: the workers' total cost ${spent:.4f} is over PARALLEL_BUDGET_USD (${budget:g})")
        if remote:
            from envoy.git import Git
            from envoy.worker.workspace import Workspace

            ws = Workspace(git=Git(repo, Path(common_dir)), toplevel=Path(repo), state=state,
                           config=Config(Path(repo)))
            asked = {r["name"] for r in executors.stop_many(ws, remote)}
            refused += [{"name": r["name"], "type": "still_running",
                         "message": "its executor could not be asked to stop it (no job on its cluster yet)"}
                        for r in remote if r["name"] not in asked]
        for r in refused:
            if r.get("type") not in ("not_running", "already_stopped", "not_found"):
                state.log(f"budget stop of {r['name']}: {r.get('message')}")
        return 0
    except Exception as exc:
        state.log(f"budget stop: {type(exc).__name__}: {exc}")
        return 1
