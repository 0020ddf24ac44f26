"""A new worker's intake: its inputs checked and its record built before anything is
made, for `spawn` (commands/spawn.py) and `spawn --batch` (batch_run.py) alike."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from envoy import agent, usage
from envoy.commands import common
from envoy.errors import EnvoyError
from envoy.worker.record import Record, now_iso, worker_name

if TYPE_CHECKING:
    from envoy.worker.record import Options
    from envoy.worker.workspace import Workspace


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


def check_budget(ws: Workspace) -> None:
    budget = ws.config.get("PARALLEL_BUDGET_USD")
    if budget is None:
        return
    spent = usage.total_cost(ws.state.all())
    if spent > budget:
        raise EnvoyError("budget_exceeded", f"workers have already cost ${spent:.4f}, over PARALLEL_BUDGET_USD "
                         f"(${budget:g})", "raise PARALLEL_BUDGET_USD, or clean up finished workers to reset the total")


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
