"""The local executor: this machine. Worktrees beside the checkout, a detached
supervisor per run holding a lockfile slot (worker/launch.py, supervisor.py);
liveness by locks (worker/lookup.py). This module is its face to the verbs."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from envoy import agent, processes
from envoy.errors import EnvoyError
from envoy.worker import launch, locks, lookup, queue
from envoy.worker.record import transition

if TYPE_CHECKING:
    from envoy.worker.record import Options, Record
    from envoy.worker.store import State
    from envoy.worker.workspace import Workspace


class LocalExecutor:
    name = "local"

    def prepare(self, ws: Workspace, record: Record, where: str | None, remote: str | None) -> None:
        """The agent is this machine's: found now, before anything is made."""
        if remote is not None:
            raise EnvoyError("invalid_input", "--remote is for workers that run on a cluster",
                             "add --on ray://HOST:8265, or leave --remote out")
        record["agent"] = agent.find(ws.config.get("ENVOY_CLAUDE"))

    def start(self, ws: Workspace, record: Record, task: str, *, queued: bool) -> tuple[Record, int | None]:
        """Under the launch mutex (the caller holds it, and has written the task): queue
        the worker for the queue runner, or start it now in a free slot (refused at the
        cap). The record, and its queue position when queued."""
        state = ws.state
        if queued:
            # The queue runner starts it, at once if a slot is free: this returns
            # without waiting for a checkout, and the order stays first come, first served.
            everyone = state.all()
            transition(record, "queued", {"queued_seq": queue.next_seq(everyone)})
            position = len(queue.in_queue(everyone)) + 1
            queue.save_env(state, record["name"], os.environ)
            state.write(record)
            queue.ensure_runner(ws.git, state)
            return record, position
        queue.dispatch(ws.git, state)  # workers queued earlier go first
        slot_index = locks.free_slot(state, record["max_workers"])
        if slot_index is None:
            state.delete(record["name"])
            raise launch.limit_exceeded(ws, record["max_workers"], queueable=True)
        try:
            return launch.start_new(ws.git, state, record, slot_index, ws.layout()), None
        except BaseException as exc:
            launch.give_up(state, record, exc)
            raise

    def start_many(self, ws: Workspace, records: list[Record],
                   tasks: list[str]) -> list[tuple[Record, EnvoyError | None]]:
        """start() for a batch, under the launch mutex with the tasks written: all queued
        in one go, then as many started as slots are free now, first come first; no more:
        workers that end meanwhile free slots the runner hands on, while this answers."""
        state = ws.state
        seq = queue.next_seq(state.all())
        env = dict(os.environ)
        for i, record in enumerate(records):
            transition(record, "queued", {"queued_seq": seq + i})
            queue.save_env(state, record["name"], env)
            state.write(record)
        cap = int(records[0].get("max_workers") or 1)
        queue.dispatch(ws.git, state, limit=cap - len(locks.held_slots(state)))
        after = state.all()
        if any(r["state"] == "queued" for r in after):
            queue.ensure_runner(ws.git, state)
        fresh = {r["name"]: r for r in after}
        return [(fresh.get(r["name"], r), None) for r in records]

    def poll(self, state: State, records: list[Record]) -> list[Record]:
        return [lookup.refresh(state, r) for r in records]

    def relaunch(self, ws: Workspace, record: Record, task: str, options: Options | None = None,
                 branches: dict[str, str] | None = None) -> Record:
        return launch.relaunch(ws, record, task, options)  # its worktree shares this repository's branches

    def check_resumable(self, record: Record) -> None:
        launch.check_resumable(record)

    def stop(self, ws: Workspace, record: Record) -> bool:
        """TERM the supervisor (it stops its agent's group and records `stopped`); the
        caller then waits for the worker's lock. False if the record's pid is not the
        process holding the lock: a pid read from disk is never signalled on its word."""
        state = ws.state
        fresh = state.read(record["name"]) or record
        pid = fresh.get("supervisor_pid")
        if not pid or not locks.opened_by(state, locks.worker(record["name"]), pid):
            return False
        processes.terminate(pid)
        return True

    def stop_many(self, ws: Workspace, records: list[Record]) -> list[Record]:
        return [r for r in records if self.stop(ws, r)]

    def forget(self, ws: Workspace, record: Record) -> None:
        return None  # its worktree and branch are cleanup's to remove


EXECUTOR = LocalExecutor()
