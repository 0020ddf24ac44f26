"""`envoy parallel spawn`: a worktree, a branch and a detached headless session.

Everything is validated before anything is created; then, under the launch
mutex, a free slot is taken (or the spawn is refused at the cap) and the
worker started. Nothing is left half-made: a failure removes what it made.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envoy import agent, executors, footprint, output, usage
from envoy.commands import common
from envoy.errors import EnvoyError, UsageError
from envoy.worker import locks, lookup, queue, worktree
from envoy.worker.record import Record, now_iso, transition, worker_name
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
        if dep["state"] in ("failed", "lost", "stopped"):
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


def options_of(ws: Workspace, args: argparse.Namespace) -> Options:
    """The run options from spawn's flags (or a batch line's keys), checked."""
    permission_mode = args.permission_mode or ws.config.get("PARALLEL_PERMISSION_MODE")
    if args.timeout == 0:
        timeout = None  # no limit, as PARALLEL_TIMEOUT=0 means
    else:
        timeout = common.positive(args.timeout, "--timeout")
        if timeout is None:
            timeout = ws.config.get("PARALLEL_TIMEOUT") or None
    setup = args.setup if args.setup is not None else ws.config.get("PARALLEL_SETUP")
    options: Options = {
        "permission_mode": permission_mode,
        "allowed_tools": agent.allowed_tools(ws.config.allow_rules(), args.allowed_tools or []),
        "model": args.model,
        "max_turns": common.positive(args.max_turns, "--max-turns", int),
        "budget_usd": common.positive(args.budget, "--budget"),
        "timeout_s": timeout,
        "setup": setup.strip() if isinstance(setup, str) and setup.strip() else None,
    }
    options.update(end_options(ws, args.on_end))
    return options


def new_record(ws: Workspace, name: str, branch: str, base: str | None, base_sha: str | None, path: Path,
               task: str, agent_path: str, options: Options, after: list[str], touches: list[str]) -> Record:
    record: Record = {
        "name": name, "branch": branch, "base": base, "base_sha": base_sha, "path": str(path),
        "reason": None, "error": None, "session_id": agent.new_session_id(),
        "agent": agent_path, "options": options, "task_chars": len(task), "task": task,
        "repo": str(ws.git.main_worktree()), "max_workers": ws.config.get("PARALLEL_MAX_WORKERS"),
        "after": after, "created_at": now_iso(), "run": 0, "runs": [], "copied": [],
        "cost_usd": 0, "num_turns": 0,
    }
    if touches:
        record["touches"] = touches
    return record


def end_options(ws: Workspace, on_end: str | None) -> Options:
    """Who is told when the worker ends (worker/on_end.py): --on-end, else PARALLEL_ON_END;
    a desktop notification per PARALLEL_NOTIFY (default: on outside CI, where notify-send is)."""
    from envoy.worker import on_end as ending

    command = on_end if on_end is not None else ws.config.get("PARALLEL_ON_END")
    options: Options = {}
    if isinstance(command, str) and command.strip():
        options["on_end"] = command.strip()
    if ending.notify_default(ws.config.get("PARALLEL_NOTIFY")):
        options["notify"] = True
    return options


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
        return run_batch(args)
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




# -- spawn --batch -------------------------------------------------------------
BATCH_FLAGS = ("branch", "task", "task_file", "from_ref", "after", "touches", "model", "permission_mode",
               "allowed_tools", "max_turns", "budget", "timeout", "setup", "wait")


def run_batch(args: argparse.Namespace) -> int:
    """Every task of a batch file, in one process: all checked first (a bad line refuses
    the whole batch, naming it), then all queued in one go under the launch mutex and
    as many started as slots allow; the rest start as slots free."""
    given = [f"--{f.replace('_ref', '').replace('_', '-')}" for f in BATCH_FLAGS if getattr(args, f, None)]
    if given:
        raise EnvoyError("invalid_input", f"--batch takes every option from its lines, not from {', '.join(given)}",
                         "put the option in each line of the batch (keys are spawn's long options)")
    from envoy import batch

    try:
        if args.batch == "-":
            entries = batch.read(sys.stdin.buffer)
        else:
            with open(args.batch, "rb") as source:
                entries = batch.read(source)
    except OSError as exc:
        raise EnvoyError("invalid_input", f"cannot read --batch {args.batch}: {exc.strerror}",
                         "give a readable JSON Lines file, or - for standard input") from None
    common.refuse_nesting()
    ws = open_workspace()
    records, tasks = batch_records(ws, entries)
    state = ws.state
    state.ensure()
    with locks.launch_mutex(state):
        everyone = state.all()
        taken = {r["name"] for r in everyone}
        for record in records:  # again under the mutex: a spawn meanwhile may have taken a name
            if record["name"] in taken:
                raise EnvoyError("already_exists", f"a worker named {record['name']!r} already exists (spawned "
                                 "while this batch was checked); nothing of the batch was made",
                                 "drop that line, or pick another branch")
            check_free(ws, record["name"], Path(record["path"]))
        seq = queue.next_seq(everyone)
        env = dict(os.environ)
        for i, record in enumerate(records):
            state.write_task(record["name"], 1, tasks[i])
            transition(record, "queued", {"queued_seq": seq + i})
            queue.save_env(state, record["name"], env)
            state.write(record)
        # As many as slots are free now start now, first come first; no more: workers that end
        # meanwhile free slots the runner hands on, while this answers.
        cap = int(records[0].get("max_workers") or 1)
        queue.dispatch(ws.git, state, limit=cap - len(locks.held_slots(state)))
        after = state.all()
        if any(r["state"] == "queued" for r in after):
            queue.ensure_runner(ws.git, state)
    positions = queue.queue_positions(after)
    fresh = {r["name"]: r for r in after}
    rows: list[dict[str, Any]] = []
    for r in (fresh.get(record["name"], record) for record in records):  # in the batch's order
        row: dict[str, Any] = {"name": r["name"], "state": r["state"]}
        if r["name"] in positions:
            row["queue_position"] = positions[r["name"]]
        if r.get("reason"):
            row["reason"] = r["reason"]
        rows.append(row)
    counts: dict[str, int] = {}
    for shown in rows:
        counts[shown["state"]] = counts.get(shown["state"], 0) + 1
    output.success({"workers": rows, "counts": counts}, render_batch)
    return 0


def batch_records(ws: Workspace, entries: list[tuple[int, dict[str, Any]]]) -> tuple[list[Record], list[str]]:
    """The records and tasks of a batch, every line checked; creates nothing. What every
    line shares (existing workers and branches, the agent, the base) is looked up once."""
    from envoy import batch

    check_budget(ws)
    agent_path = agent.find(ws.config.get("ENVOY_CLAUDE"))
    existing = ws.state.all()
    by_key: dict[str, Record] = {r["name"]: r for r in existing}
    by_key.update({r["branch"]: r for r in existing if r["branch"] not in by_key})
    branches = set(ws.git.branch_tips())
    bases: dict[str | None, tuple[str, str]] = {}
    where = ws.layout()
    mine: dict[str, int] = {}  # worker name (and branch) -> its line
    named: dict[str, str] = {}  # worker name (and branch) -> worker name
    lines: list[tuple[int, dict[str, Any], str]] = []
    for number, entry in entries:
        try:
            name = validate_branch(ws, entry["branch"])
            for key in (name, entry["branch"]):
                if key in mine:
                    raise EnvoyError("invalid_input", f"worker {name} is also line {mine[key]}'s",
                                     "give each task its own branch")
            in_way = _branch_in_the_way(entry["branch"], branches)
            if in_way is not None or name in by_key:
                raise EnvoyError("already_exists", f"branch {entry['branch']!r} " + (
                    "already exists" if in_way == entry["branch"] or name in by_key
                    else f"cannot be made while branch {in_way!r} exists"),
                    "pick another branch" + (f", or envoy parallel cleanup --worker {name}" if name in by_key else ""))
            mine[name] = mine[entry["branch"]] = number
            named[name] = named[entry["branch"]] = name
            lines.append((number, entry, name))
        except EnvoyError as exc:
            raise _on_line(number, exc) from None
    records: list[Record] = []
    tasks: list[str] = []
    edges: dict[str, list[str]] = {}
    for number, entry, name in lines:
        try:
            after = []
            for key in entry.get("after", []):
                if key in mine:
                    target = named[key]
                elif key in by_key:
                    found = by_key[key]
                    if found["state"] in ("failed", "lost", "stopped"):
                        raise EnvoyError("dependency_failed", f"dependency {found['name']} already ended "
                                         f"{found['state']}", f"resume or respawn {found['name']} first")
                    target = found["name"]
                else:
                    raise EnvoyError("not_found", f"\"after\" names {key!r}, which is no worker and no line of "
                                     "this batch", "name an existing worker or the branch of another line")
                if target == name:
                    raise EnvoyError("invalid_input", "\"after\" names this line's own worker: a dependency cycle",
                                     "a worker waits only for others")
                if target not in after:
                    after.append(target)
            edges[name] = [a for a in after if a in mine]
            task = _batch_task(entry)
            ns = argparse.Namespace(permission_mode=entry.get("permission_mode"), timeout=entry.get("timeout"),
                                    setup=entry.get("setup"), allowed_tools=entry.get("allowed_tools"),
                                    model=entry.get("model"), max_turns=entry.get("max_turns"),
                                    budget=entry.get("budget"), on_end=entry.get("on_end"))
            options = options_of(ws, ns)
            touches = footprint.check(entry.get("touches", []), '"touches"')
            if after and entry.get("from") is None:
                base, base_sha = None, None
            else:
                if entry.get("from") not in bases:
                    bases[entry.get("from")] = resolve_base(ws, entry.get("from"))
                base, base_sha = bases[entry.get("from")]
        except EnvoyError as exc:
            raise _on_line(number, exc) from None
        records.append(new_record(ws, name, entry["branch"], base, base_sha, where.path(name), task, agent_path,
                                  options, after, touches))
        tasks.append(task)
    loop = batch.cycle(edges)
    if loop:
        first = mine[loop[0]]
        raise EnvoyError("invalid_input", f"batch line {first}: a dependency cycle in \"after\": "
                         + " -> ".join(loop), "a worker can wait only for workers that do not wait for it", line=first)
    for record in records:
        record.pop("task", None)
    return records, tasks


def _on_line(number: int, exc: EnvoyError) -> EnvoyError:
    return EnvoyError(exc.kind, f"batch line {number}: {exc.message}", exc.suggestion, line=number,
                      **{k: v for k, v in exc.extra.items() if k != "line"})


def _batch_task(entry: dict[str, Any]) -> str:
    if "task" in entry:
        return str(entry["task"])
    ns = argparse.Namespace(task=None, task_file=entry["task_file"])
    return common.read_task(ns)


def _branch_in_the_way(branch: str, branches: set[str]) -> str | None:
    """git.branch_in_the_way, against a set of branches read once."""
    parts = branch.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if prefix in branches:
            return prefix
    inside = branch + "/"
    return next((b for b in branches if b.startswith(inside)), None)


def render_batch(data: dict[str, Any]) -> str:
    lines = [", ".join(f"{n} {state}" for state, n in data["counts"].items())]
    lines += [f"  {r['name']}: {r['state']}" + (f" (position {r['queue_position']})" if r.get("queue_position") else "")
              for r in data["workers"]]
    return "\n".join(lines)
