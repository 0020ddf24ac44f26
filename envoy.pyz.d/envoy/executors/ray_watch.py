"""The remote watcher: one detached process per repository (`envoy _ray_watch <git
common dir>`) that lives while any remote worker is active (queued, with or without
its job, starting or running) and moves them on with no verb called:

- every TURN seconds it looks at them through the executor's poll (one GET
  /api/jobs/ per cluster): a job's end is recorded when it happens (work fetched,
  PARALLEL_ON_END and the notification announced), and an --after dependent is
  submitted within a turn of its dependency succeeding;
- every ACTIONS_EVERY seconds at most, for each running worker (and only those), it
  reads the end of the job's log (GET /api/jobs/{id}/logs) and records its last
  `action:` line in the record (`last_action`), for status and watch: LOG_READS
  logs a turn at most, the longest unread first, so a fleet of 200 costs a turn no
  more than a fleet of 16.

It is a process of its own, not the queue runner's work: the runner holds the
launch mutex and must start a local worker the moment a slot frees, which a
cluster that takes 15 s to not answer would hold up. Every state change it makes
is the executor's (ray.py), through record.transition, as a verb's look would.

A cluster that does not answer is retried at a slower pace (doubling up to SLOW);
what went wrong goes to envoy.log once per change, never as a crash. Started by
whatever submits a job or looks at an active remote worker (ray.keep_watched: a
lock probe when it runs), never from inside a worker's processes; it ends when no
remote worker is active, or on SIGTERM, between two looks.
"""
from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

from filelock import Timeout

from envoy.errors import EnvoyError
from envoy.executors import ray_api
from envoy.executors.ray import EXECUTOR, WATCHER
from envoy.executors.ray_api import client
from envoy.output import one_line
from envoy.worker import locks, on_end
from envoy.worker.record import FINISHED, Record, now_iso
from envoy.worker.store import State

TURN = 3.0  # seconds between looks while the clusters answer
SLOW = 30.0  # at most this long between looks while none does
ACTIONS_EVERY = 5.0  # seconds between reads of one running worker's job log
# Job-log reads per turn, however large the fleet: a read is the node's whole log
# sent by the dashboard (see RayJobs.logs_tail), so the watcher's load must not grow
# with the fleet. 8 keeps today's pace for up to 16 running workers (each is due every
# other turn anyway: ACTIONS_EVERY > TURN) and refreshes a fleet of 200 every 25 turns
# (75 s), at under 3 reads a second for the dashboard.
LOG_READS = 8
USER_AGENT = "envoy-watcher"  # its requests, told apart in the cluster's logs (and the tests')
ACTION = re.compile(r"^envoy (\d\d:\d\d:\d\d\.\d{3}): action: (.*?)\s*$", re.MULTILINE)


# -- the job log's action lines ----------------------------------------------
def action_lines(log: str) -> list[tuple[str, str]]:
    """(time, text) of every `envoy HH:MM:SS.mmm: action: <text>` line of a job's log,
    in order. The log is the node's output: each text is cut to one printable line."""
    found = []
    for stamp, text in ACTION.findall(log):
        clean = one_line("".join(c if c.isprintable() else " " for c in text), 200)
        if clean:
            found.append((stamp, clean))
    return found


def last_action(log: str) -> str | None:
    found = action_lines(log)
    return found[-1][1] if found else None


def record_action(state: State, record: Record, text: str) -> Record:
    """Write `text` as the running worker's last action, if its record still says it
    runs that job; under its lock, as every writer of a record."""
    lock = locks.lock(state, locks.worker(record["name"]))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return record  # someone is changing it (its end, say): the next look
    try:
        fresh = state.read(record["name"])
        if fresh is None or fresh.get("job_id") != record.get("job_id") or fresh.get("state") != "running" \
                or fresh.get("last_action") == text:
            return fresh or record
        fresh["last_action"], fresh["last_action_at"] = text, now_iso()
        state.write(fresh)
        return fresh
    finally:
        lock.release()


# -- the process ----------------------------------------------------------------
def remote_active(state: State) -> list[Record]:
    return [r for r in state.all()
            if r.get("executor") == EXECUTOR.name and r.get("cluster") and r.get("state") not in FINISHED]


class _Stop(BaseException):
    """Raised by SIGTERM, only while the watcher sleeps between two looks."""


class Watcher:
    def __init__(self, state: State) -> None:
        self.state = state
        self.pace = TURN
        self.read_logs: dict[str, float] = {}  # name -> when its job's log was last read
        self.errors: dict[str, str] = {}  # cluster -> the kind of trouble it is in (logged once per change)
        self.stopping = self.sleeping = False

    def turn(self, records: list[Record]) -> bool:
        """One look at the active remote workers; True if an end was recorded (the next
        look comes at once: a dependent may now be submitted)."""
        polled = EXECUTOR.poll(self.state, records)
        ended = False
        for before, after in zip(records, polled):
            if after.get("state") in FINISHED:
                on_end.sweep(self.state, after)  # announced by whoever recorded it; this covers a killed one
                ended = ended or before.get("state") not in FINISHED
        troubled = {str(r.get("cluster")): r["cluster_error"] for r in polled if r.get("cluster_error")}
        for cluster, error in troubled.items():
            if self.errors.get(cluster) != error["type"]:  # once per kind of trouble, not every look
                self.state.log(f"remote watcher: {error['message']}")
        for cluster in set(self.errors) - set(troubled):
            self.state.log(f"remote watcher: the Ray cluster at {cluster} answers again")
        self.errors = {cluster: error["type"] for cluster, error in troubled.items()}
        healthy = [r for r in polled if not r.get("cluster_error")]
        self.pace = TURN if healthy or not polled else min(SLOW, self.pace * 2)
        self.actions([r for r in healthy if r.get("state") == "running" and r.get("job_id")])
        return ended

    def actions(self, running: list[Record]) -> None:
        """Read the job logs of at most LOG_READS running workers whose last read is
        ACTIONS_EVERY old: the never read first, then the longest unread, so each is
        read again within ceil(running / LOG_READS) turns of its last read."""
        now = time.monotonic()
        for name in set(self.read_logs) - {r["name"] for r in running}:
            del self.read_logs[name]  # ended (or no longer running): a fleet's names do not pile up
        never = float("-inf")
        due = [r for r in running if now - self.read_logs.get(r["name"], never) >= ACTIONS_EVERY]
        due.sort(key=lambda r: self.read_logs.get(r["name"], never))
        for record in due[:LOG_READS]:
            self.read_logs[record["name"]] = now
            try:
                text = last_action(client(record["cluster"]).logs_tail(record["job_id"]))
            except EnvoyError:
                continue  # said on its row at the next poll, if the cluster is down
            if text is not None and text != record.get("last_action"):
                record_action(self.state, record, text)

    def sleep(self, seconds: float) -> None:
        try:
            self.sleeping = True
            if not self.stopping:
                time.sleep(seconds)
        except _Stop:
            pass
        finally:
            self.sleeping = False

    def on_term(self, *_: Any) -> None:
        self.stopping = True
        if self.sleeping:
            raise _Stop  # a look under way (an end being recorded) is finished first

    def run(self) -> int:
        lock = locks.lock(self.state, WATCHER)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return 0  # another watcher won the race
        signal.signal(signal.SIGTERM, self.on_term)
        try:
            while not self.stopping:
                records = remote_active(self.state)
                if not records:
                    lock.release()
                    # A submitter writes its record, then probes the lock: read again after
                    # letting go, so either this sees its worker or it starts a new watcher.
                    if not remote_active(self.state):
                        return 0
                    try:
                        lock.acquire(timeout=0)
                    except Timeout:
                        return 0  # a new watcher took over
                    continue
                try:
                    ended = self.turn(records)
                except Exception as exc:  # logged, never a crash: the next look tries again
                    self.state.log(f"remote watcher: {type(exc).__name__}: {exc}")
                    ended, self.pace = False, min(SLOW, self.pace * 2)
                if not ended:
                    self.sleep(self.pace)
            return 0
        except _Stop:  # at the edge of a sleep
            return 0
        finally:
            if lock.is_locked:
                lock.release()


def main(common_dir: str) -> int:
    """`envoy _ray_watch <git common dir>`, detached (ray.keep_watched)."""
    state = State(Path(common_dir))
    ray_api.USER_AGENT = USER_AGENT
    try:
        return Watcher(state).run()
    except Exception as exc:
        state.log(f"remote watcher: {type(exc).__name__}: {exc}")
        return 1
