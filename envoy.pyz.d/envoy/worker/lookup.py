"""Finding workers, keeping their recorded state exact, and their short view."""
from __future__ import annotations

from filelock import Timeout

from envoy import processes
from envoy.errors import EnvoyError
from envoy.worker import locks, on_end
from envoy.worker.record import ACTIVE, Record, elapsed, now_iso, transition
from envoy.worker.store import State

LOST_ERROR = "its supervisor ended without recording an end (killed, or the machine restarted)"


CUT_SHORT_ERROR = ("its checkout was cut short (the process making it was killed); "
                   "envoy parallel cleanup removes what it made")


def find(state: State, key: str) -> Record:
    """A worker by name or by branch; never by a path built from user text."""
    record = state.read(key) if _plain_name(key) else None
    if record is None:
        record = next((r for r in state.all() if r.get("branch") == key), None)
    if record is None:
        from envoy.typos import closest

        records = state.all()
        names = [r["name"] for r in records]
        meant = closest(key, names + [b for r in records if isinstance(b := r.get("branch"), str)])
        if meant is not None:
            name = next((r["name"] for r in records if meant in (r["name"], r.get("branch"))), meant)
            raise EnvoyError("not_found", f"no worker named {key!r}; did you mean {name!r}?",
                             f"--worker {name} (the workers: {', '.join(names)})")
        raise EnvoyError("not_found", f"no worker named {key!r}",
                         f"pick one of: {', '.join(names)}" if names else "envoy parallel status lists the workers")
    return refresh(state, record)


def _plain_name(key: str) -> bool:
    return (bool(key) and "/" not in key and "\0" not in key and key not in (".", "..")
            and len(key.encode("utf-8", "surrogateescape")) < 250)  # a longer one is no file name


def refresh(state: State, record: Record) -> Record:
    """Turn a `running` record whose supervisor is gone into `lost`. Liveness is the
    worker lock: held means alive, whatever PIDs say. A worker of another executor
    (a cluster) is looked at there (executors/remote.py). An ended worker whose end was
    never announced (its recorder died first) is announced here (on_end.sweep)."""
    if record.get("executor"):
        from envoy.executors import remote

        record = remote.poll(state, [record])[0]
        if record.get("state") not in ACTIVE:
            on_end.sweep(state, record)
        return record
    if record.get("state") not in ACTIVE:
        on_end.sweep(state, record)
        return record
    if locks.is_held(state, locks.worker(record["name"])):
        return record
    if record["state"] == "starting" and locks.is_held(state, locks.LAUNCH):
        return record  # a launcher is still bringing it up
    lock = locks.lock(state, locks.worker(record["name"]))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return state.read(record["name"]) or record  # a supervisor just took it
    try:
        fresh = state.read(record["name"])
        if fresh is None or fresh.get("state") not in ACTIVE:
            return fresh or record
        transition(fresh, "lost", {"reason": "lost", "error": CUT_SHORT_ERROR if fresh.get("checking_out") else LOST_ERROR,
                                   "finished_at": now_iso()})
        fresh["duration_s"] = elapsed(fresh)
        try:
            state.write(fresh)
        except EnvoyError as exc:  # a full disk, say: what is shown is still the truth; the next look records it
            if exc.kind != "state_unwritable":
                raise
            state.log(f"worker {fresh['name']} is lost, but its record cannot be written: {exc.message}")
        else:
            on_end.announce(state, fresh)
        processes.end_run(fresh.get("run_id"))  # what its supervisor could no longer end
        return fresh
    finally:
        lock.release()


def all_refreshed(state: State) -> list[Record]:
    return refresh_all(state, state.all())


def refresh_all(state: State, records: list[Record]) -> list[Record]:
    """Every record refreshed; those of other executors together, in one look (one
    request per cluster for the whole fleet), not one each."""
    elsewhere = [i for i, r in enumerate(records) if r.get("executor")]
    out = [r if r.get("executor") else refresh(state, r) for r in records]
    if elsewhere:
        from envoy.executors import remote

        for i, fresh in zip(elsewhere, remote.poll(state, [records[i] for i in elsewhere])):
            if fresh.get("state") not in ACTIVE:
                on_end.sweep(state, fresh)
            out[i] = fresh
    return out


def duration(record: Record) -> float | None:
    """Seconds the latest run took, or has taken so far while it runs."""
    return elapsed(record) if record.get("state") in ACTIVE else record.get("duration_s")


