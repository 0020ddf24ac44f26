"""`envoy parallel spawn`: a worktree, a branch and a detached headless session.

Everything is validated before anything is created; then, under the launch
mutex, a free slot is taken (or the spawn is refused at the cap) and the
worker started. Nothing is left half-made: a failure removes what it made.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from envoy import executors, footprint, output
from envoy.commands import common
from envoy.errors import EnvoyError, UsageError
from envoy.intake import check_budget, check_free, new_record, options_of, resolve_base, validate_branch
from envoy.worker import locks, lookup, queue, worktree
from envoy.worker.record import Record, worker_name
from envoy.worker.workspace import Workspace, open_workspace


def check_branch_free(ws: Workspace, branch: str) -> None:
    existing = ws.git.branch_in_the_way(branch)
    if existing == branch:
        mine = ws.state.read(worker_name(branch))  # a worker of it: say how to be rid of it
        raise EnvoyError("already_exists", f"branch {branch!r} already exists",
                         f"envoy parallel cleanup --worker {mine['name']}, or pick another --branch" if mine else
                         "pick another --branch (a worker always starts a new branch)")
    if existing is not None:  # git keeps x and x/y as a file and a directory: they cannot both exist
        raise EnvoyError("already_exists", f"branch {branch!r} cannot be created while branch {existing!r} exists",
                         "pick another --branch (e.g. one that is not a directory or parent of an existing branch)")


def dependencies(ws: Workspace, keys: list[str], name: str, branch: str) -> list[Record]:
    """The workers named by --after: each must exist and must not have failed already."""
    deps: list[Record] = []
    for key in keys:
        if key in (name, branch):
            raise EnvoyError("invalid_input", f"--after {key} names this worker itself: a dependency cycle",
                             "--after takes other, existing workers")
        dep = lookup.find(ws.state, key)
        if dep["state"] in ("failed", "lost", "stopped"):
            raise EnvoyError("dependency_failed", f"dependency {dep['name']} already ended {dep['state']}",
                             f"resume or respawn {dep['name']} first (envoy parallel results --worker {dep['name']})")
        if dep["name"] not in (d["name"] for d in deps):
            deps.append(dep)
    return deps


def build_record(ws: Workspace, args: argparse.Namespace) -> Record:
    """Validate every input and build the new worker's record; creates nothing."""
    common.refuse_nesting()
    task = common.read_task(args)
    name = validate_branch(ws, args.branch)
    deps = dependencies(ws, args.after or [], name, args.branch)
    if deps and args.from_ref is None:
        base, base_sha = None, None  # the dependency's branch tip when this one starts
    else:
        base, base_sha = resolve_base(ws, args.from_ref)
    ws.git.check_can_commit()  # a worker that cannot commit would "succeed" with its work left behind
    kind, where = executors.placement(args.on if args.on is not None else ws.config.raw("PARALLEL_EXECUTOR")[0])
    options = options_of(ws, args)
    touches = footprint.check(args.touches or [])
    path = ws.layout().path(name)
    check_budget(ws)
    record = new_record(ws, name, args.branch, base, base_sha, path, task, "", options,
                        [d["name"] for d in deps], touches)
    executors.get(kind).prepare(ws, record, where, args.remote)  # the agent, or the cluster and remote
    return record


def unseen_warning(ws: Workspace, record: Record) -> list[str]:
    """What a worker started from this checkout's HEAD will not see: its uncommitted
    edits and untracked files (those not copied in). Said, never refused: a side
    fix from a dirty checkout is normal, a silent surprise is not."""
    head = ws.git.head()
    if not record.get("base_sha") or head is None or head[0] != record["base_sha"]:
        return []  # it starts elsewhere (another ref, a dependency's tip): the checkout's edits are not its business
    paths = worktree.unseen(ws.git, ws.toplevel)
    if not paths:
        return []
    shown = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
    return [f"uncommitted changes the worker will not see (it starts from the last commit, "
            f"{record['base_sha'][:12]}): {shown}; commit them first, or list gitignored files it needs "
            f"in .worktreeinclude"]


def run(args: argparse.Namespace) -> int:
    if args.batch is not None:
        from envoy import batch_run

        return batch_run.run(args)
    if args.branch is None:  # argparse's own words: --branch is required unless --batch
        raise UsageError("the following arguments are required: --branch (or --batch FILE)",
                         "envoy parallel spawn --help")
    ws = open_workspace()
    record = build_record(ws, args)
    warnings = unseen_warning(ws, record)
    if warnings:
        record["warnings"] = warnings
    task = record.pop("task")
    state = ws.state
    state.ensure()
    position = None
    blocker = None
    # The branch is checked before taking the mutex (a git call: other launchers
    # would wait for it); two spawns of one branch collide on the worker name below.
    check_branch_free(ws, record["branch"])
    with locks.launch_mutex(state):
        check_free(ws, record["name"], Path(record["path"]))
        state.write_task(record["name"], 1, task)
        blocker = queue.touches_blocker(record, state.all()) if record.get("touches") else None
        record, position = executors.of(record).start(ws, record, task,
                                                      queued=bool(args.queue or record["after"] or blocker))
    if args.wait:
        from envoy.worker.join import wait_for

        finished = wait_for(ws, [record["name"]], timeout=None)[0]
        return common.report_finished(finished)
    view = common.record_view(record)
    if warnings:
        view["warnings"] = warnings
    if record["state"] == "queued":
        view["queue_position"] = position  # as queued: the runner may have started it since
        if blocker:
            view["waits_for"] = blocker
    output.success(view, common.render_record)
    return 0
