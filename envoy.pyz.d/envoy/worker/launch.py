"""Starting workers: the one place a worker goes from decided to running.

Everything here runs under the launch mutex (see locks.py): the caller has
counted the held slots and picked a free one; `start` launches the detached
supervisor of a run and returns once the supervisor holds the slot, so the
next launcher counts it. The queue (queueing.py) starts workers through here.
"""
from __future__ import annotations

import os
import select
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from envoy import files
from envoy.errors import EnvoyError
from envoy.worker import locks, lookup, on_end, worktree
from envoy.worker.record import ACTIVE, Record, now_iso, transition
from envoy.worker.store import State

if TYPE_CHECKING:
    from envoy.git import Git
    from envoy.worker.record import Options
    from envoy.worker.workspace import Workspace
    from envoy.worker.worktree import Layout


READY_TIMEOUT = 60.0


def check_out(git: Git, state: State, record: Record, where: Layout) -> None:
    """Make the worker's worktree unless it has one. The record says a checkout is
    under way before git makes anything, so a checkout killed half-way is known to
    every verb (cleanup removes it; the queue redoes it); one that fails or is
    interrupted is undone before this raises."""
    if record.get("worktree_created"):
        return
    if record.get("checking_out"):
        worktree.discard(git, where, record)
    record["checking_out"] = True
    state.write(record)
    try:
        worktree.create(git, record)
    except BaseException:
        with worktree.deferred_interrupt():
            undo_checkout(git, state, record, where)
        raise
    record["worktree_created"] = True  # so cleanup removes only what envoy made
    del record["checking_out"]
    state.write(record)


def undo_checkout(git: Git, state: State, record: Record, where: Layout) -> None:
    """Remove the worktree and branch of a start that failed. The record stops claiming
    them only once they are gone (cleanup must not later take a same-named branch for
    this worker's); if the undo fails, it goes on saying a checkout was left behind."""
    try:
        worktree.discard(git, where, record)
    except EnvoyError as exc:
        state.log(f"undo of {record['name']}'s checkout: {exc.message}")
        record["checking_out"] = True
        record.pop("worktree_created", None)
        state.write(record)
        return
    record.pop("checking_out", None)
    record.pop("worktree_created", None)
    state.write(record)


def give_up(state: State, record: Record, error: BaseException) -> None:
    """After spawn's start failed: no record if nothing was left behind, or the record,
    failed, saying what was (cleanup removes it)."""
    with worktree.deferred_interrupt():
        if locks.is_held(state, locks.worker(record["name"])):
            return  # its supervisor did start, and records its own end
        if record.get("checking_out") or record.get("worktree_created"):
            why = error.message if isinstance(error, EnvoyError) else "interrupted"
            mark_failed(state, record, "start_failed", f"{why}; its checkout is left for envoy parallel cleanup")
        else:
            state.delete(record["name"])


def start(state: State, record: Record, slot_index: int, env: Mapping[str, str] | None = None,
          records: list[Record] | None = None) -> Record:
    """Launch the supervisor of the record's next run in `slot_index`; return the
    record as the supervisor wrote it once it holds its locks.

    The supervisor is forked, not executed: it starts in milliseconds with
    everything already imported. A double fork with setsid detaches it: its
    own session, so it survives the terminal closing and the calling Claude
    Code session ending, and no signal to our process group reaches it."""
    run = int(record.get("run", 0)) + 1
    claim_run_files(state, record["name"], run)
    record["port"] = free_port(state, records)
    state.write(record)
    err_path = state.run_file(record["name"], run, "err")
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        os.close(read_fd)
        _become_supervisor(state, record["name"], run, slot_index, write_fd, err_path, env)
    os.close(write_fd)
    os.waitpid(child, 0)
    try:
        ready = _read_ready(read_fd)
    finally:
        os.close(read_fd)
    if not ready:
        detail = files.last_line(err_path)
        raise EnvoyError("start_failed", f"the supervisor of {record['name']} did not start"
                         + (f": {detail}" if detail else ""), f"see {state.log_file} and retry")
    fresh = state.read(record["name"])
    assert fresh is not None
    return fresh


def claim_run_files(state: State, name: str, run: int) -> None:
    """Make the run's log files (0600) before anything starts, or refuse (`unsafe_path`)
    if what is there is not envoy's: a symlink planted at a worker's next
    logs/<name>/<run>.jsonl would have the agent's transcript written where it points."""
    state.run_dir(name)
    for suffix in ("jsonl", "err"):
        try:
            os.close(state.private_fd(state.run_file(name, run, suffix), os.O_WRONLY | os.O_APPEND))
        except OSError as exc:
            from envoy.worker.store import unwritable

            raise unwritable(state.root, exc) from None


def in_detached_child(state: State, label: str, err_path: Path, env: Mapping[str, str] | None,
                       body: Callable[[], int]) -> None:
    """In a forked child: detach (new session, second fork so it is never our zombie,
    stdio to /dev/null and `err_path`), run `body`, exit. Never returns."""
    code = 1
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        locks.close_inherited(state)  # the launcher's locks (the mutex...) are not ours to hold
        null = os.open(os.devnull, os.O_RDWR)
        err = state.private_fd(err_path, os.O_WRONLY | os.O_APPEND)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        os.chdir(state.root)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        code = body()
    except BaseException as exc:
        state.log(f"{label}: {type(exc).__name__}: {exc}")
    finally:
        os._exit(code)


def detach(state: State, label: str, body: Callable[[], int]) -> None:
    """Run `body` in a detached process of its own (see in_detached_child) and return
    at once; its stderr goes to envoy.log."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        in_detached_child(state, label, state.log_file, None, body)
    os.waitpid(child, 0)


def start_janitor(state: State, lock: str, label: str, body: Callable[[], None]) -> None:
    """A detached process that waits for `lock`, which the caller holds, and then runs
    `body`: when the caller ends, however it ends (kill -9 too), what it leaves in
    the middle of its work (scratch worktrees, checks) is cleaned up."""
    import fcntl

    def wait_then_clean() -> int:
        fd = state.private_fd(state.lock_path(lock), os.O_RDWR)  # never through a symlink
        fcntl.flock(fd, fcntl.LOCK_EX)  # released only once the caller is gone
        try:
            body()
        finally:
            os.close(fd)
        return 0

    detach(state, label, wait_then_clean)


def _become_supervisor(state: State, name: str, run: int, slot_index: int, ready_fd: int, err_path: Path,
                       env: Mapping[str, str] | None) -> None:
    def body() -> int:
        from envoy.worker import supervisor

        return supervisor.main(state.root.parent, name, run, slot_index, ready_fd)

    in_detached_child(state, f"supervisor {name}", err_path, env, body)


def start_new(git: Git, state: State, record: Record, slot_index: int, where: Layout,
              env: Mapping[str, str] | None = None, records: list[Record] | None = None) -> Record:
    """The first run: worktree and branch, then the supervisor. A failure removes
    what it made (or says in the record what it could not) and raises; the caller
    decides whether the record stays."""
    if not record.get("base_sha"):  # --after: the base is resolved when the worker starts
        base = record.get("base")
        base_sha = git.resolve_commit(base) if base else None
        if base_sha is None:
            raise EnvoyError("not_found", f"base {record['base']!r} of {record['name']} no longer names a commit",
                             "spawn it again with an existing --from")
        record["base_sha"] = base_sha
    transition(record, "starting")
    state.write(record)  # first, so even a crash mid-way leaves a record saying so
    check_out(git, state, record, where)  # unless the queue runner has already
    try:
        return start(state, record, slot_index, env, records)
    except BaseException:
        with worktree.deferred_interrupt():
            if not locks.is_held(state, locks.worker(record["name"])):  # no supervisor took it over
                undo_checkout(git, state, record, where)
        raise


def free_port(state: State, records: list[Record] | None = None) -> int:
    """A free TCP port on this machine that no running worker was given (`records`: the
    caller's current read of them, those it started since included)."""
    import socket  # here: spawn --queue and the other verbs never need it

    taken = {r.get("port") for r in (state.all() if records is None else records) if r.get("state") in ACTIVE}
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port
    raise EnvoyError("no_port", "could not find a free TCP port for the worker", "retry in a moment")


def _read_ready(fd: int) -> bool:
    """True once the supervisor writes 'ok'; False if it closes the pipe first (it died)."""
    received = b""
    while True:
        readable, _, _ = select.select([fd], [], [], READY_TIMEOUT)
        if not readable:
            return False
        chunk = os.read(fd, 64)
        if not chunk:
            return received.startswith(b"ok")
        received += chunk
        if received.startswith(b"ok"):
            return True


def mark_failed(state: State, record: Record, reason: str, error: str) -> Record:
    transition(record, "failed", {"reason": reason, "error": error, "finished_at": now_iso()})
    state.write(record)
    on_end.announce(state, record)
    return record


def limit_exceeded(ws: Workspace, cap: int, queueable: bool = False) -> EnvoyError:
    running = [r for r in lookup.all_refreshed(ws.state) if r["state"] in ACTIVE]
    names = ", ".join(f"{r['name']} ({r['branch']})" for r in running) or "none recorded"
    return EnvoyError("limit_exceeded", f"{len(running)} of {cap} workers are running (PARALLEL_MAX_WORKERS={cap}): {names}",
                      ("add --queue to this spawn to start it as soon as a slot frees; or " if queueable else "")
                      + "wait for one to finish "
                      "(envoy parallel status), stop one (envoy parallel stop --worker NAME), "
                      "or raise PARALLEL_MAX_WORKERS", running=[r["name"] for r in running], max_workers=cap)


def relaunch(ws: Workspace, record: Record, task: str, options: Options | None = None) -> Record:
    """Start the worker's next run on `task` in its session (resume and land --repair)."""
    state = ws.state
    cap = ws.config.get("PARALLEL_MAX_WORKERS")
    with locks.launch_mutex(state):
        record = lookup.refresh(state, state.read(record["name"]) or record)
        check_resumable(record)  # again, under the mutex
        problem = worktree.verify(ws.git, ws.layout(), record["name"], Path(record["path"]))
        if problem:  # the path is read from the record: an agent runs only where envoy made its worktree
            raise EnvoyError("unverified_worktree", f"will not run {record['name']}'s agent there: {problem}",
                             "spawn a new worker instead")
        slot_index = locks.free_slot(state, cap)
        if slot_index is None:
            raise limit_exceeded(ws, cap)
        run_number = int(record.get("run") or 0) + 1
        claim_run_files(state, record["name"], run_number)  # before the record changes: a refusal changes nothing
        state.write_task(record["name"], run_number, task)
        transition(record, "starting", {"options": options or record["options"], "reason": None, "error": None})
        state.write(record)
        return start(state, record, slot_index)


def check_resumable(record: Record) -> None:
    name = record["name"]
    if record["state"] in ACTIVE:
        raise EnvoyError("still_running", f"worker {name} is still running",
                         f"wait for it first: envoy parallel wait --worker {name}")
    if record["state"] == "stopped" and not record.get("run"):
        raise EnvoyError("invalid_input", f"worker {name} was stopped before it started, so there is no session "
                         "to resume", f"remove it (envoy parallel cleanup --worker {name}) and spawn it again")
    if record["state"] == "queued" or not record.get("run"):
        raise EnvoyError("invalid_input", f"worker {name} has not started yet, so there is no session to resume",
                         f"wait for it to run: envoy parallel wait --worker {name}")
    if not Path(record["path"]).is_dir():
        raise EnvoyError("not_found", f"the worktree of {name} ({record['path']}) is gone",
                         "spawn a new worker instead")
