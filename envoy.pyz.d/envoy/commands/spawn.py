"""`envoy parallel spawn`: a worktree, a branch and a detached headless session.

Everything is validated before anything is created; then, under the launch
mutex, a free slot is taken (or the spawn is refused at the cap) and the
worker started. Nothing is left half-made: a failure removes what it made.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from envoy import agent, executors, output, usage
from envoy.commands import common
from envoy.errors import EnvoyError
from envoy.worker import locks, lookup
from envoy.worker.record import Record, now_iso, worker_name
from envoy.worker.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    from envoy.worker.record import Options


MAX_BRANCH_BYTES = 200  # + PARALLEL_WORKER_PREFIX (at most 50) stays under a file name's 255


def validate_branch(ws: Workspace, branch: str) -> str:
    """The worker name for `branch`, or a refusal saying why the branch is unusable."""
    if len(branch.encode("utf-8", "surrogateescape")) > MAX_BRANCH_BYTES:
        # the name becomes file names (the ref, the record, the worktree): 255 bytes at most each
        raise EnvoyError("invalid_input", f"branch name is over {MAX_BRANCH_BYTES} bytes",
                         "use a shorter --branch (e.g. feat/short-name)")
    if not branch or branch.startswith("-") or not ws.git.valid_branch_name(branch):
        raise EnvoyError("invalid_input", f"{branch!r} is not a valid branch name",
                         "use letters, digits, '-', '_' and '/' (e.g. --branch fix/login-bug)")
    name = worker_name(branch)
    if not name:
        raise EnvoyError("invalid_input", f"branch {branch!r} gives an empty worker name",
                         "use a branch name with letters or digits")
    return name


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


def check_free(ws: Workspace, name: str, path: Path) -> None:
    """Under the launch mutex (cheap: no git), so no other spawn can take the name meanwhile."""
    if ws.state.read(name) is not None:
        raise EnvoyError("already_exists", f"a worker named {name!r} already exists",
                         f"envoy parallel cleanup --worker {name}, or pick another --branch")
    if path.exists() or path.is_symlink():
        raise EnvoyError("already_exists", f"{path} already exists",
                         "remove it, or set PARALLEL_WORKTREE_DIR / PARALLEL_WORKER_PREFIX elsewhere")


def resolve_base(ws: Workspace, ref: str | None) -> tuple[str, str]:
    """(base as named, its commit sha). Default: the caller's current branch."""
    if ref is not None and (not ref.strip() or ref.startswith("-")):
        raise EnvoyError("invalid_input", f"--from {ref!r} is not a ref", "use a branch, tag or commit, e.g. --from main")
    if ref is None:
        head = ws.git.head()
        if head is None:
            raise EnvoyError("no_commits", "the repository has no commits yet, so there is nothing to branch from",
                             'make a first commit (git commit --allow-empty -m "init"), then spawn')
        head_sha, branch = head
        return branch or head_sha, head_sha
    sha = ws.git.resolve_commit(ref)
    if sha is None:
        raise EnvoyError("not_found", f"--from {ref!r} does not name a commit in this repository",
                         "use an existing branch, tag or commit (git branch --list shows branches)")
    return ref, sha


def dependencies(ws: Workspace, keys: list[str], name: str, branch: str) -> list[Record]:
    """The workers named by --after: each must exist and must not have failed already."""
    deps: list[Record] = []
    for key in keys:
        if key in (name, branch):
            raise EnvoyError("invalid_input", f"--after {key} names this worker itself: a dependency cycle",
                             "--after takes other, existing workers")
        dep = lookup.find(ws.state, key)
        if dep["state"] in ("failed", "lost"):
            raise EnvoyError("dependency_failed", f"dependency {dep['name']} already ended {dep['state']}",
                             f"resume or respawn {dep['name']} first (envoy parallel results --worker {dep['name']})")
        if dep["name"] not in (d["name"] for d in deps):
            deps.append(dep)
    return deps


def check_budget(ws: Workspace) -> None:
    budget = ws.config.get("PARALLEL_BUDGET_USD")
    if budget is None:
        return
    spent = usage.total_cost(ws.state.all())
    if spent > budget:
        raise EnvoyError("budget_exceeded", f"workers have already cost ${spent:.4f}, over PARALLEL_BUDGET_USD "
                         f"(${budget:g})", "raise PARALLEL_BUDGET_USD, or clean up finished workers to reset the total")


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
    kind, where = executors.placement(args.on if args.on is not None else ws.config.raw("PARALLEL_EXECUTOR")[0])
    permission_mode = args.permission_mode or ws.config.get("PARALLEL_PERMISSION_MODE")
    timeout = common.positive(args.timeout, "--timeout")
    if timeout is None:
        timeout = ws.config.get("PARALLEL_TIMEOUT") or None
    setup = args.setup if args.setup is not None else ws.config.get("PARALLEL_SETUP")
    path = ws.layout().path(name)
    check_budget(ws)
    options: Options = {
        "permission_mode": permission_mode,
        "allowed_tools": agent.allowed_tools(ws.config.allow_rules(), args.allowed_tools or []),
        "model": args.model,
        "max_turns": common.positive(args.max_turns, "--max-turns", int),
        "budget_usd": common.positive(args.budget, "--budget"),
        "timeout_s": timeout,
        "setup": setup.strip() if isinstance(setup, str) and setup.strip() else None,
    }
    record: Record = {
        "name": name, "branch": args.branch, "base": base, "base_sha": base_sha, "path": str(path),
        "reason": None, "error": None, "session_id": agent.new_session_id(),
        "agent": "", "options": options, "task_chars": len(task), "task": task,
        "repo": str(ws.git.main_worktree()), "max_workers": ws.config.get("PARALLEL_MAX_WORKERS"),
        "after": [d["name"] for d in deps], "created_at": now_iso(), "run": 0, "runs": [], "copied": [],
        "cost_usd": 0, "num_turns": 0,
    }
    executors.get(kind).prepare(ws, record, where, args.remote)  # the agent, or the cluster and remote
    return record


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    record = build_record(ws, args)
    task = record.pop("task")
    state = ws.state
    state.ensure()
    position = None
    # The branch is checked before taking the mutex (a git call: other launchers
    # would wait for it); two spawns of one branch collide on the worker name below.
    check_branch_free(ws, record["branch"])
    with locks.launch_mutex(state):
        check_free(ws, record["name"], Path(record["path"]))
        state.write_task(record["name"], 1, task)
        record, position = executors.of(record).start(ws, record, task, queued=bool(args.queue or record["after"]))
    if args.wait:
        from envoy.worker.join import wait_for

        finished = wait_for(ws, [record["name"]], timeout=None)[0]
        return common.report_finished(finished)
    view = common.record_view(record)
    if record["state"] == "queued":
        view["queue_position"] = position  # as queued: the runner may have started it since
    output.success(view, common.render_record)
    return 0


