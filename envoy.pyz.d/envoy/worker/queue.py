"""The queue: workers spawned with --queue or --after wait here, as records in
state `queued`, until a slot is free and their dependencies have succeeded.

`dispatch` starts them first come, first served (a sequence number taken under
the launch mutex orders them across processes). A queue runner, one detached
process per repository that lives while the queue waits, calls it the moment
it is poked (wake.py): a worker queued, a slot freed, a dependency ended.
If no runner listens, a finishing worker dispatches itself; status, wait and
cleanup dispatch too, so a queue whose runner was killed still moves.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from filelock import Timeout

from envoy import files, processes
from envoy.config import Config
from envoy.errors import EnvoyError
from envoy.worker import locks, wake
from envoy.worker.launch import check_out, detach, mark_failed, start_new
from envoy.worker.record import ACTIVE, Record
from envoy.worker.store import State
from envoy.worker.worktree import Layout, layout

if TYPE_CHECKING:
    from envoy.git import Git


def _env_file(state: State, name: str) -> str:
    return str(state.logs / name / "spawn-env.json")


def save_env(state: State, name: str, env: Mapping[str, str]) -> None:
    """A queued worker runs with the environment it was spawned with (private to the user)."""
    state.run_dir(name)
    fd = state.private_fd(_env_file(state, name), os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(dict(env), f)


def _take_env(state: State, name: str) -> dict[str, str] | None:
    """The environment `name` was queued with; None if it has none (it takes ours).
    A file there that is not one is refused: it is read from disk, untrusted (and read
    by files.read_bytes: a FIFO put there must not hang the queue runner)."""
    try:
        env = files.parse_json(state.read_bytes(_env_file(state, name)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        env = None
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise EnvoyError("invalid_input", f"the saved environment of {name} ({_env_file(state, name)}) is not valid",
                         f"spawn it again: envoy parallel cleanup --worker {name}, then spawn")
    return env


def _drop_env(state: State, name: str) -> None:
    try:
        state.remove(_env_file(state, name))
    except OSError as exc:  # a symlink on the way there, say: left alone, and said
        state.log(f"could not remove {name}'s saved environment: {exc}")


def _layout(git: Git, env: Mapping[str, str] | None) -> Layout:
    """Where a queued worker's worktree goes: by the settings it was spawned with."""
    return layout(git, Config(git.main_worktree(), None if env is None else dict(env)))


def in_queue(records: list[Record]) -> list[Record]:
    """The queued records, first come first. A worker queued on another executor (a
    cluster's queue) is that executor's to start, not this machine's."""
    return sorted((r for r in records if r.get("state") == "queued" and not r.get("executor")),
                  key=lambda r: r.get("queued_seq", 0))


def queue_positions(records: list[Record]) -> dict[str, int]:
    return {r["name"]: i for i, r in enumerate(in_queue(records), 1)}


def next_seq(records: list[Record]) -> int:
    """The queue ticket of a worker queued now: after every one ever queued."""
    return 1 + max((int(r.get("queued_seq") or 0) for r in records), default=0)


def readiness(state: State, record: Record) -> tuple[str, str | None]:
    """Where a queued worker stands on its dependencies, reading each once:
    ("ready", None), ("waiting", None), or ("never", why it can never start)."""
    waiting = False
    for name in record.get("after") or []:
        try:
            dep = state.read(name)
        except EnvoyError as exc:
            return "never", f"dependency {name}: {exc.message}"
        if dep is None:
            return "never", f"dependency {name} was cleaned up before it succeeded"
        if dep.get("state") in ("failed", "lost", "stopped"):
            return "never", f"dependency {name} ended {dep['state']}" + (
                f" ({dep.get('reason')})" if dep.get("reason") not in (None, dep["state"]) else "")
        waiting = waiting or dep.get("state") != "succeeded"
    return ("waiting" if waiting else "ready"), None


def touches_blocker(record: Record, records: list[Record]) -> str | None:
    """Why a worker with declared `touches` must wait: a queued, starting or running one
    whose footprint overlaps (`waits for feat-x: touches overlap`), or None. Only
    workers that started count here; dispatch adds the ones it starts as it goes."""
    mine = record.get("touches")
    if not mine:
        return None
    from envoy import footprint

    for other in records:
        if other["name"] != record["name"] and other.get("state") in ACTIVE and other.get("touches") \
                and footprint.overlap(mine, other["touches"]):
            return f"waits for {other['name']}: touches overlap"
    return None


def dispatch(git: Git, state: State, limit: int | None = None) -> list[str]:
    """Start queued workers in FIFO order while slots are free. Caller holds the mutex.
    Returns the names started (at most `limit`).

    Not from a process of a worker's run (its agent ran `status`, say): what that
    process forks carries the run's ENVOY_RUN_ID and lives in its process tree, so it
    would be ended with that run. A process outside any worker (the runner, a
    finishing watcher, the user's next verb) starts them."""
    if processes.RUN_ID in os.environ:
        return []
    started: list[str] = []
    everyone = state.all()
    active = [r for r in everyone if r.get("state") in ACTIVE and r.get("touches")]
    for record in in_queue(everyone):
        stand, problem = readiness(state, record)
        if stand == "never":
            mark_failed(state, record, "dependency_failed", problem or "")
            _drop_env(state, record["name"])
            continue
        if stand == "waiting":
            continue  # others may go first
        if record.get("touches") and touches_blocker(record, active):
            continue  # its footprint overlaps a running worker's: it waits, others may go
        slot_index = locks.free_slot(state, int(record.get("max_workers") or 1))
        if slot_index is None or (limit is not None and len(started) >= limit):
            break
        if record.get("after") and record.get("base") is None:
            dep = state.read(record["after"][0]) or {}
            record["base"] = dep.get("branch")  # it builds on its dependency's work
        try:
            env = _take_env(state, record["name"])
            start_new(git, state, record, slot_index, _layout(git, env), env, everyone)  # `record` is in it
        except EnvoyError as exc:
            mark_failed(state, record, "start_failed", exc.message)
            continue
        _drop_env(state, record["name"])
        started.append(record["name"])
        if record.get("touches"):
            active.append({**record, "state": "starting"})
    return started


def prepare_next(git: Git, state: State, queued: list[Record]) -> bool:
    """Check out the worktree of the first queued worker without one, so that it starts
    the moment a slot frees rather than after a checkout (seconds, in a large
    repository). A cap's worth of queued workers are kept prepared; one waiting for a
    dependency is not (it starts from the dependency's tip, known only then). Caller
    holds the mutex and passes the queue, first come first. True if it did something
    (prepared one, or failed it)."""
    prepared = sum(1 for r in queued if r.get("worktree_created"))
    for record in queued:
        if record.get("worktree_created") or record.get("after"):
            continue
        if prepared >= int(record.get("max_workers") or 1):
            return False
        try:
            check_out(git, state, record, _layout(git, _take_env(state, record["name"])))
        except EnvoyError as exc:
            mark_failed(state, record, "start_failed", exc.message)
            _drop_env(state, record["name"])
        return True
    return False


def dispatch_if_queued(git: Git, state: State, records: list[Record] | None = None) -> list[str]:
    """Run the queue if anything waits in it (cheap when nothing does). `records`: the
    caller's fresh read of them, if it has one."""
    if not in_queue(state.all() if records is None else records):
        return []
    if locks.is_held(state, RUNNER) and wake.poke(state.root):
        return []  # the runner is on it: no need to wait for the mutex it may hold through a checkout
    with locks.launch_mutex(state):
        return dispatch(git, state)


RUNNER = "runner"
RUNNER_NAP = 1.0  # at most this long between dispatches without a poke (a supervisor killed -9 pokes no one)


def ensure_runner(git: Git, state: State) -> None:
    """Make sure a queue runner is alive and looking (the caller holds the mutex and
    has queued work).

    The runner is one detached process per repository that lives while the queue
    is not empty, asleep on the wake FIFO (wake.py) until something may let a
    queued worker start: so a queued worker starts milliseconds after a slot frees,
    and `spawn --queue` returns without starting anything itself."""
    if locks.is_held(state, RUNNER):
        wake.poke(state.root)
        return
    detach(state, "queue runner", lambda: run_queue(git, state))


def run_queue(git: Git, state: State) -> int:
    runner = locks.lock(state, RUNNER)
    try:
        runner.acquire(timeout=0)
    except Timeout:
        return 0  # another runner won the race
    pokes = wake.listen(state.root)
    try:
        while True:
            with locks.launch_mutex(state):
                dispatch(git, state)
                queued = in_queue(state.all())
                if not queued:
                    runner.release()  # under the mutex: a spawn that queues after this starts a new runner
                    return 0
                busy = prepare_next(git, state, queued)  # one checkout per turn: a freed slot waits for at most one
            if not busy:
                wake.wait(pokes, RUNNER_NAP)  # a poke during the dispatch wakes this at once
    finally:
        if pokes is not None:
            os.close(pokes)
        if runner.is_locked:
            runner.release()


def main(common_dir: str) -> int:
    """`envoy _queue <git common dir>`: a runner started by a finishing worker that found
    queued workers and no runner listening (see finish.start_queued)."""
    from envoy.git import Git

    common = Path(common_dir)
    state = State(common)
    try:
        git = Git(Git(common, common).main_worktree(), common)
        return run_queue(git, state)
    except Exception as exc:
        state.log(f"queue runner: {type(exc).__name__}: {exc}")
        return 1
