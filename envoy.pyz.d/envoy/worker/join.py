"""Blocking until workers end, with progress on stderr (a heartbeat at least
every 30 s, so CI logs show life), for `spawn --wait` and `wait`."""
from __future__ import annotations

import os
import sys
import time

from envoy import output
from envoy.errors import EnvoyError
from envoy.worker import lookup, queue
from envoy.worker.record import FINISHED, Record
from envoy.worker.store import State
from envoy.worker.workspace import Workspace

POLL = 0.01  # a stat of the workers directory: records are re-read only when it moved
REREAD = 1.0  # ... and at least this often, to notice a supervisor that died without a word
HEARTBEAT = 30.0
QUEUE_CHECK = 1.0  # also start queued workers whose slot a dead supervisor never handed on


def wait_for(ws: Workspace, names: list[str], timeout: float | None) -> list[Record]:
    """Wait until every named worker has finished; their final records, in order."""
    state = ws.state
    last_queue_check = 0.0
    deadline = None if timeout is None else time.monotonic() + timeout
    heartbeat = 5.0 if sys.stderr.isatty() else HEARTBEAT
    last_beat = time.monotonic()
    seen: dict[str, str] = {}
    looked = (0.0, 0.0)  # when the records were last read: time.monotonic(), time.time()
    known: dict[str, tuple[int, Record]] = {}  # name -> (inode of its file when read, record)
    while True:
        if not _moved(state, *looked):
            time.sleep(POLL * min(len(names), 5))  # a fleet's end is no less timely for 50 ms; its polling costs less
            continue
        full = time.monotonic() - looked[0] >= REREAD
        looked = (time.monotonic(), time.time())
        records = _changed(state, names, known, full)
        for record in records:
            if seen.get(record["name"]) != record["state"]:
                seen[record["name"]] = record["state"]
                reason = f" ({record['reason']})" if record.get("reason") else ""
                output.progress(f"{record['name']}: {record['state']}{reason}")
        pending = [r for r in records if r["state"] not in FINISHED]
        if not pending:
            return records
        now = time.monotonic()
        if now - last_queue_check >= QUEUE_CHECK:
            last_queue_check = now
            queue.dispatch_if_queued(ws.git, state)
        if deadline is not None and now >= deadline:
            raise EnvoyError("timeout", f"still unfinished after {timeout:g}s: "
                             + ", ".join(r["name"] for r in pending),
                             "wait longer, or check on them with envoy parallel status",
                             unfinished=[r["name"] for r in pending])
        if now - last_beat >= heartbeat:
            last_beat = now
            output.progress("waiting for " + ", ".join(
                f"{r['name']} ({r['state']}, {output.duration(lookup.duration(r))})" for r in pending))
        time.sleep(POLL)


def _moved(state: State, looked: float, looked_wall: float) -> bool:
    """Whether the records may have changed since they were read: every write replaces
    a file in the workers directory, moving its mtime. The kernel stamps it with a
    coarse clock, so a write just after a read can keep the stamp it saw: a stamp
    close to the read counts as moved."""
    if time.monotonic() - looked >= REREAD:
        return True
    try:
        return os.stat(state.workers).st_mtime >= looked_wall - 0.05
    except FileNotFoundError:
        return True


def _changed(state: State, names: list[str], known: dict[str, tuple[int, Record]], full: bool) -> list[Record]:
    """The named records, re-reading only those whose file was replaced since `known` was
    (every write is a new file: os.replace); `full`: also those not yet finished (a
    supervisor killed -9 leaves its record as it was: refresh finds it lost; a cluster's
    worker changes there, not here). Waiting for a fleet then costs a directory listing
    per change, not a read of every record; the re-read ones are refreshed together (a
    cluster's in one request)."""
    try:
        inodes = {e.name[:-len(".json")]: e.inode() for e in os.scandir(state.workers) if e.name.endswith(".json")}
    except FileNotFoundError:
        inodes = {}
    stale = [name for name in names if name not in known or inodes.get(name) != known[name][0]
             or (full and known[name][1]["state"] not in FINISHED)]
    if stale:
        for name, record in zip(stale, lookup.refresh_all(state, [_read(state, name) for name in stale])):
            known[name] = (inodes.get(name, -1), record)
    return [known[name][1] for name in names]


def _read(state: State, name: str) -> Record:
    record = state.read(name)
    if record is None:
        raise EnvoyError("not_found", f"worker {name} was removed while waiting for it",
                         "envoy parallel status lists the workers")
    return record
