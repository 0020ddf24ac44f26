"""Command line: parse, dispatch to the verb's module, turn errors into exit codes.

Verb modules are imported only when their verb runs, so `envoy hook ...`
(on the hot path of every Claude Code tool call) loads only what it needs.
"""
from __future__ import annotations

import argparse
import errno
import sys
from typing import Any, NoReturn, Sequence

from envoy import __version__, hooks, output
from envoy.config import PERMISSION_MODES
from envoy.errors import EXIT_CODES, EnvoyError, Terminated, UsageError, end_on_signals

_ENVIRONMENT_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG)

PARALLEL_EPILOG = """\
examples:
  envoy parallel spawn --branch quick/hook-fix --from main --task "Fix the hook validation"
  envoy parallel status
  envoy parallel results --worker quick-hook-fix
  envoy parallel cleanup --worker quick-hook-fix
  envoy parallel spawn --queue --branch feat/db --task "..."      # wait for a slot instead of refusing
  envoy parallel spawn --after feat-db --branch feat/api --task "..."   # start from feat-db's work
  envoy parallel spawn --batch tasks.jsonl                        # many workers, one JSON object a line
  envoy parallel stop --worker feat-db                            # end a run now, keep its work
  envoy parallel wait                                             # join: 0 all succeeded, 3 some need attention
  envoy parallel conflicts && envoy parallel merge --worker feat-db
  envoy parallel land --check "make test" --repair                # all finished work home, checked

Output is JSON when piped (or with --json), text on a terminal (or with --text)."""


class Parser(argparse.ArgumentParser):
    _seen: list[str] = []
    deepest: Parser | None = None  # the verb's parser, the last to parse: it knows the verb's options

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._seen = list(sys.argv[1:] if args is None else args)  # for error(): what the user typed
        Parser.deepest = self
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:  # argparse calls this on bad usage
        # The top parser reports leftovers ("unrecognized arguments") of the verb's parser.
        parser = Parser.deepest if message.startswith("unrecognized") and Parser.deepest else self
        raise UsageError(*parser.explain(message))

    def explain(self, message: str) -> tuple[str, str]:
        """(message, suggestion) for argparse's complaint, with a "did you mean" for a
        mistyped verb or option. A mistyped option is named as such: argparse would
        first complain that the option it stands for is missing."""
        from envoy.typos import closest

        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and "invalid choice" in message:
                typed = next((a for a in self._seen if not a.startswith("-")), "")
                match = closest(typed, action.choices)
                if match:
                    return (f"unknown command {typed!r}; did you mean {match!r}?", f"{self.prog} {match}")
        known = [o for o in self._option_string_actions if o.startswith("--")]
        for arg in self._seen:
            if arg == "--":
                break
            option = arg.split("=", 1)[0]
            if option.startswith("--") and option not in self._option_string_actions:
                match = closest(option, known)
                if match:
                    return (f"unknown option {option!r}; did you mean {match!r}?", f"{self.prog} {match} ...")
                if "required" in message or "unrecognized" in message:
                    return (f"unknown option {option!r}", f"{self.prog} --help")
        return message, f"{self.prog} --help"


def finite(text: str) -> float:
    """A number argument: float() also reads nan, inf and 1e999, which no limit means
    (and which a record or JSON output cannot hold)."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def nonempty(text: str) -> str:
    """A name argument: an empty one is a mistake, never "all" or "the default"
    (`cleanup --worker ""` must not clean up every worker)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _output_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    group.add_argument("--text", action="store_true", default=argparse.SUPPRESS, help="print text")


def _verb(sub: Any, name: str, verb: str, help_text: str, description: str = "") -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=description or help_text,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(verb=verb)
    _output_flags(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="envoy", description="Run Claude Code workers in parallel git worktrees, under a cap.",
                    formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PARALLEL_EPILOG)
    parser.add_argument("--version", action="version", version=f"envoy {__version__}")
    _output_flags(parser)
    top = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    parallel = top.add_parser("parallel", help="worktree workers: spawn, status, results, wait, merge, land, cleanup ...",
                              description="Worktree workers: each task gets its own git worktree, branch and "
                              "detached headless Claude Code session.", epilog=PARALLEL_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    parallel.set_defaults(help_parser=parallel)
    verbs = parallel.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)

    spawn = _verb(verbs, "spawn", "spawn", "create a worktree + branch and start a headless session in it",
                  "Create a worktree and branch, and start a detached headless Claude Code session on the task.\n"
                  "Returns once the worker runs; refused (limit_exceeded) when PARALLEL_MAX_WORKERS run.\n"
                  "With --queue (or --after) it returns at once, queued; the queue starts it when it can.")
    spawn.add_argument("--branch", help="new branch for the worker; its name is the branch "
                       "made safe (quick/hook-fix -> quick-hook-fix)")
    spawn.add_argument("--task", help="what the worker should do (sent on stdin, never in argv)")
    spawn.add_argument("--task-file", metavar="PATH", help="read the task from a file, or - for stdin")
    spawn.add_argument("--from", dest="from_ref", metavar="REF", help="base ref (default: your current branch)")
    spawn.add_argument("--wait", action="store_true", help="block until the worker ends; exit 0 if it succeeded "
                       "cleanly, 3 if it succeeded but needs attention, 1 otherwise")
    spawn.add_argument("--model", type=nonempty, help="model for the session (claude --model)")
    spawn.add_argument("--permission-mode", choices=PERMISSION_MODES,
                       help="claude --permission-mode (default PARALLEL_PERMISSION_MODE, else acceptEdits)")
    spawn.add_argument("--allowed-tools", action="append", metavar="RULE",
                       help='extra permission rule, repeatable (e.g. "Bash(npm test:*)"); added to the '
                       "project's permissions.allow and the git commands a worker needs")
    spawn.add_argument("--max-turns", type=int, metavar="N", help="stop the agent after N turns")
    spawn.add_argument("--budget", type=finite, metavar="USD", help="stop the agent past this cost (--max-budget-usd)")
    spawn.add_argument("--timeout", type=finite, metavar="SECONDS",
                       help="kill the worker past this long (default PARALLEL_TIMEOUT, 7200; 0: no limit)")
    spawn.add_argument("--queue", action="store_true",
                       help="queue the worker (FIFO) instead of refusing at the cap; returns at once, and the "
                       "worker starts as soon as a slot is free (at once if one is)")
    spawn.add_argument("--after", action="append", metavar="WORKER", type=nonempty,
                       help="start only once WORKER has succeeded, from its branch tip (repeatable; implies --queue)")
    spawn.add_argument("--on", metavar="WHERE",
                       help="where the worker runs: local (default PARALLEL_EXECUTOR, else local) or a Ray "
                       "cluster, ray://HEAD:8265 (its dashboard; the job fetches and pushes git through --remote); "
                       "with --batch, where every worker of the batch runs")
    spawn.add_argument("--remote", metavar="NAME|URL",
                       help="with --on ray://...: the git remote the cluster's nodes share (default origin); envoy "
                       "pushes only refs/envoy/workers/<name>/ to it")
    spawn.add_argument("--setup", metavar="COMMAND",
                       help="shell command run in the new worktree before the agent (default PARALLEL_SETUP)")
    spawn.add_argument("--on-end", metavar="COMMAND",
                       help="shell command run once when the worker ends, with ENVOY_WORKER, ENVOY_STATE, "
                       "ENVOY_ATTENTION, ENVOY_RESULT_FILE ... in its environment (default PARALLEL_ON_END)")
    spawn.add_argument("--touches", action="append", metavar="GLOB",
                       help="a path glob (relative to the repository root) the worker will change, repeatable; "
                       "workers whose globs overlap never run at the same time: the later one waits in the queue")
    spawn.add_argument("--batch", metavar="FILE",
                       help="many workers in one call: a JSON Lines file (or - for stdin), one task a line, keys "
                       'named after these options, e.g. {"branch": "feat/db", "task": "...", "after": "feat-x", '
                       '"touches": ["db/**"]}; every line is checked first (a bad one refuses the whole batch); '
                       "as many start as slots allow, the rest queue. With --on ray://...: every line one job, "
                       "submitted from this one process (one git push for all, the package sent once); a job the "
                       "cluster refuses is recorded failed (start_failed) and the answer is an error (exit 1) that "
                       "still lists every worker, the others submitted")

    status = _verb(verbs, "status", "status", "list workers and their state")
    status.add_argument("--worker", metavar="NAME", type=nonempty, help="only this worker (name or branch)")
    status.add_argument("--all", action="store_true", help="every worker's row; by default a large fleet is "
                        "folded to counts and the rows that need someone (at most 4 KB of JSON, one screen of text)")

    results = _verb(verbs, "results", "results", "what each worker did: answer, commits, diffstat, transcript")
    results.add_argument("--worker", metavar="NAME", type=nonempty, help="only this worker (name or branch)")
    results.add_argument("--tail", type=int, default=50, metavar="N", help="lines to show of the final answer and the transcript, together "
                         "(default 50): the answer's last lines first, then the transcript's")
    results.add_argument("--all", action="store_true", help="every worker in full; by default many workers are "
                         "folded to counts and brief rows of those that need someone")

    cleanup = _verb(verbs, "cleanup", "cleanup", "remove finished workers' worktrees and branches",
                    "Remove worktrees, branches and records of finished workers. Workers with uncommitted or\n"
                    "unmerged work are skipped unless --force, which first keeps that work under\n"
                    "refs/envoy/trash/<name> and prints the command that restores it.")
    cleanup.add_argument("--worker", metavar="NAME", type=nonempty, help="only this worker (name or branch)")
    cleanup.add_argument("--all", action="store_true", help="every worker, stopping running ones first")
    cleanup.add_argument("--force", action="store_true",
                         help="also remove dirty/unmerged work (kept in a trash ref) and stop a running --worker")

    stop = _verb(verbs, "stop", "stop", "end running (or queued) workers now, keeping their work",
                 "End a worker's agent and every process of its run now. Its worktree, branch and transcript\n"
                 "stay, and it is recorded `stopped`: continue it with resume, remove it with cleanup.\n"
                 "A queued worker is stopped before it starts.")
    stop.add_argument("--worker", metavar="NAME", type=nonempty, help="the worker (name or branch)")
    stop.add_argument("--all", action="store_true", help="every queued and running worker")

    hook = top.add_parser("hook", help="a Claude Code hook: reads the hook's JSON on stdin",
                          description="Run a Claude Code hook. Reads the hook JSON on stdin; never blocks a "
                          "session by failing (errors go to .git/envoy/envoy.log).")
    hook.add_argument("name", choices=hooks.NAMES)
    hook.set_defaults(verb="hook")

    init = _verb(top, "init", "init", "set this repository up for envoy: hooks, settings, /parallel-discovery",
                 "Install envoy into this repository, idempotently: copy envoy.pyz to .claude/envoy.pyz,\n"
                 "merge hooks, env defaults and permissions into .claude/settings.json, and write the\n"
                 "/parallel-discovery command and the explorer, curator and researcher agents.")
    init.add_argument("--force", action="store_true", help="replace command and agent files that differ")

    discover = _verb(top, "discover", "discover", "run 2-4 read-only sessions at once and aggregate findings",
                     "Mode 1, parallel discovery: 2-4 read-only headless Claude Code sessions at once in this\n"
                     "checkout, one per role, each with its own scope; their findings aggregated.")
    discover.add_argument("task", nargs="?", help="what to find out")
    discover.add_argument("--task-file", metavar="PATH", help="read the task from a file, or - for stdin")
    discover.add_argument("--roles", metavar="LIST", help="comma-separated roles, 2 to 4: explorer, curator, "
                          "researcher, or an agent in .claude/agents (default explorer,curator,researcher)")
    discover.add_argument("--model", type=nonempty, help="model for every stream")
    discover.add_argument("--timeout", type=finite, metavar="SECONDS", help="per-stream time limit (default 600)")
    discover.add_argument("--max-words", type=int, metavar="N", help="word budget per stream (default 300)")

    demo = _verb(top, "demo", "demo", "see envoy work: workers, the cap, the queue, a conflict, land (no account)",
                 "Run envoy's main job end to end in a scratch repository: five workers at a cap of two\n"
                 "(the third refused, the rest queued), two of them in conflict, land with a check, a\n"
                 "worker's results, cleanup. The workers are driven by a SCRIPTED STAND-IN agent that\n"
                 "speaks claude's stream-json (no model, no account, no network), or by the real\n"
                 "claude CLI with --agent claude. Everything is removed at the end unless --keep.")
    demo.add_argument("--agent", choices=("stand-in", "claude"), default="stand-in",
                      help="who does the workers' tasks: envoy's scripted stand-in (default) or the real "
                      "claude CLI (installed and logged in; costs what its sessions cost)")
    demo.add_argument("--dir", metavar="PATH", help="a new or empty directory to run in (default: a temporary one)")
    demo.add_argument("--keep", action="store_true", help="leave the scratch repository and its workers to explore")

    path = _verb(verbs, "path", "path", "print a worker's worktree path: cd \"$(envoy parallel path --worker X)\"",
                 "Print the worker's worktree path alone (also into a pipe, so it works inside $(...)),\n"
                 "JSON only with --json; a refusal goes to stderr.")
    path.add_argument("--worker", required=True, metavar="NAME", type=nonempty, help="the worker (name or branch)")

    completion = top.add_parser("completion", help="print a shell completion script: eval \"$(envoy completion bash)\"",
                                description="Print a completion script for bash or zsh: verbs, options, and the "
                                "names of this repository's workers, live. Add to ~/.bashrc (or ~/.zshrc): "
                                'eval "$(envoy completion bash)"')
    completion.add_argument("shell", choices=("bash", "zsh"))
    completion.set_defaults(verb="completion")

    wait = _verb(verbs, "wait", "wait", "block until workers end; exit 0 only if all succeeded cleanly",
                 "Block until the named workers (default: every worker not yet cleaned up, those that ended\n"
                 "before this call too) end, with progress on stderr, then print their records.\n"
                 "Exit 0: all succeeded, none needs attention; 3: all succeeded, some need attention\n"
                 "(denied tool calls, uncommitted work, a failed commit: see results); 1: one did not\n"
                 "succeed (failed, lost) or the timeout passed.")
    wait.add_argument("--worker", action="append", metavar="NAME", type=nonempty, help="a worker to wait for (repeatable)")
    wait.add_argument("--timeout", type=finite, metavar="SECONDS", help="give up after this long (exit 1)")

    watch = _verb(verbs, "watch", "watch", "a live view of the workers; piped: a line per change until they end",
                  "On a terminal: a full-screen live view (totals, a row per worker with state, time, cost,\n"
                  "commits, attention and last action; the queue below). Keys: up/down select, r results,\n"
                  "d diff, l log tail, s stop, R resume, L land (each confirmed), q quit.\n"
                  "Piped (or --json, --once): one line per change of a worker's state (JSON lines), then the\n"
                  "records as wait prints them, once every worker it follows has ended; exit 0 only if all\n"
                  "of them succeeded.")
    watch.add_argument("--worker", action="append", metavar="NAME", type=nonempty,
                       help="follow only this worker (repeatable; default: every unfinished one)")
    watch.add_argument("--once", action="store_true", help="print each worker's current line and exit")
    watch.add_argument("--timeout", type=finite, metavar="SECONDS", help="piped: give up after this long (exit 1)")

    resume = _verb(verbs, "resume", "resume", "continue a finished worker's session with a follow-up task",
                   "Continue the same Claude Code session (claude --resume) in the same worktree, as a new run\n"
                   "of the worker under the same cap. Refused while the worker runs.")
    resume.add_argument("--worker", required=True, metavar="NAME", type=nonempty, help="the worker (name or branch)")
    resume.add_argument("--task", help="the follow-up task (sent on stdin)")
    resume.add_argument("--task-file", metavar="PATH", help="read the follow-up from a file, or - for stdin")
    resume.add_argument("--wait", action="store_true", help="block until the run ends; exit 0 if it succeeded "
                        "cleanly, 3 if it succeeded but needs attention, 1 otherwise")
    resume.add_argument("--model", type=nonempty, help="model for this run")
    resume.add_argument("--max-turns", type=int, metavar="N", help="turn limit for this run")
    resume.add_argument("--budget", type=finite, metavar="USD", help="cost limit for this run")
    resume.add_argument("--timeout", type=finite, metavar="SECONDS", help="time limit for this run (0: no limit)")

    diff = _verb(verbs, "diff", "diff", "a worker's commits and full diff against its base, plus uncommitted changes")
    diff.add_argument("--worker", required=True, metavar="NAME", type=nonempty, help="the worker (name or branch)")
    diff.add_argument("--stat", action="store_true", help="a diffstat instead of the full diff")

    merge = _verb(verbs, "merge", "merge", "merge a worker's branch without touching your checkout",
                  "Integrate a worker's branch into a branch (default: its base) without touching your checkout\n"
                  "or index. On conflict nothing changes and the conflicting files are listed. A target checked\n"
                  "out somewhere has its files updated there; refused, changing nothing, if that would overwrite\n"
                  "local changes or untracked or ignored files, or while a rebase, merge, cherry-pick or bisect is\n"
                  "in progress on it. After a merge, cleanup removes the worker without --force.")
    merge.add_argument("--worker", required=True, metavar="NAME", type=nonempty, help="the worker (name or branch)")
    merge.add_argument("--into", metavar="BRANCH", type=nonempty, help="the branch to merge into (default: the worker's base)")
    merge.add_argument("--squash", action="store_true", help="one commit with the worker's changes")
    merge.add_argument("--rebase", action="store_true", help="replay the worker's commits on top (linear history)")

    _verb(verbs, "conflicts", "conflicts", "which workers collide with each other or their base (dry-run merges)")

    land = _verb(verbs, "land", "land", "merge finished workers like a merge queue: checked, ordered, repaired",
                 "Land finished workers' branches on their target like a merge queue, without touching your\n"
                 "checkout, index or branch. Each merge is checked (--check, default PARALLEL_CHECK) in a scratch\n"
                 "worktree holding the merge result, and the target moves, by compare-and-swap, only to a commit\n"
                 "whose tree passed. Up to PARALLEL_MAX_WORKERS checks run at once, candidate i on top of\n"
                 "candidates 1..i-1; a failure drops out and only the ones after it are re-checked. A target\n"
                 "checked out somewhere has its files updated there, as merge does (refused if that would overwrite\n"
                 "local changes or untracked or ignored files, or while a rebase, merge or bisect is in progress).\n"
                 "A target that moves meanwhile is landed on anew, never overwritten. Each check has a time limit\n"
                 "(--check-timeout) and everything it started is ended when it ends. A plain land lists the\n"
                 "succeeded workers it did not take and why. Exit 0 only if every candidate landed and none was\n"
                 "left out for a problem; landed workers count as merged for cleanup.",)
    land.epilog = ("examples:\n"
                   "  envoy parallel land --dry-run                    # the plan: order and predicted conflicts\n"
                   "  envoy parallel land --check \"make test\"          # every succeeded worker, checked\n"
                   "  envoy parallel land --worker feat-a --worker feat-b --into main --order fifo\n"
                   "  envoy parallel land --check \"pytest -x\" --repair --repair-attempts 2")
    land.add_argument("--worker", action="append", metavar="NAME",
                      help="a worker to land (repeatable; default: every succeeded worker with commits not yet "
                      "in its target)")
    land.add_argument("--into", metavar="BRANCH", help="the branch to land on (default: each worker's base)")
    land.add_argument("--check", metavar="COMMAND",
                      help="shell command that must pass on each merge result (default PARALLEL_CHECK; "
                      "none: merge only)")
    land.add_argument("--no-check", action="store_true", help="merge only, even if PARALLEL_CHECK is set")
    land.add_argument("--check-timeout", type=float, metavar="S",
                      help="seconds each check may run (default PARALLEL_CHECK_TIMEOUT, else 1800; 0: no limit); "
                      "a check past it fails, and it and every process it started are ended")
    land.add_argument("--order", choices=("auto", "fifo"), default="auto",
                      help="auto (default): what conflicts least with the others and the target first; "
                      "fifo: spawn order")
    land.add_argument("--repair", action="store_true",
                      help="resume a worker that conflicts or fails the check in its own session, to bring "
                      "the target in and fix it; when that run succeeds it re-enters the queue")
    land.add_argument("--repair-attempts", type=int, metavar="N",
                      help="repair runs per worker (default 1; implies --repair)")
    land.add_argument("--dry-run", action="store_true", help="print the plan (order, predicted conflicts); "
                      "change nothing")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    output.set_mode("--json" in argv, "--text" in argv)  # already for usage errors
    try:
        _check_text(argv)
        args = parser.parse_args(argv)
        output.set_mode(getattr(args, "json", False), getattr(args, "text", False))
        verb = getattr(args, "verb", None)
        if verb is None:  # `envoy` or `envoy parallel` alone
            getattr(args, "help_parser", parser).print_help()
            return 0
        code = run_verb(verb, args)
        return code if code in EXIT_CODES else 1
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        print("envoy: interrupted", file=sys.stderr)
        return 130
    except Terminated as ended:
        return _terminated(ended, argv)
    except Exception as exc:
        return _refuse(exc)


def _check_text(argv: list[str]) -> None:
    """Arguments that are not UTF-8 (Python hands them over with surrogates) can be
    neither passed to git nor written to a task file or a record: refused up front."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise EnvoyError("invalid_input", f"argument {ascii(arg)} is not UTF-8 text",
                             "give branch names, refs and tasks as UTF-8") from None


def _refuse(exc: Exception) -> int:
    """Print why the verb failed, as one JSON document when piped; the exit code (1 or 2)."""
    from envoy.files import NotOurs

    if isinstance(exc, EnvoyError):
        error = exc.as_dict()
    elif isinstance(exc, NotOurs):  # a symlink (or hard link) where envoy keeps its own file: never followed
        error = {"type": "unsafe_path", "message": f"will not use {exc.filename}: it {exc.strerror}",
                 "suggestion": "envoy never follows what it did not create (a worker's shell can write .git): "
                               "look at it, move it away, then retry"}
    elif isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:
        # the machine, not envoy: a read-only or full disk, another user's files, a name too long
        where = f" {exc.filename}" if exc.filename else ""
        error = {"type": "io_error", "message": f"cannot use{where}: {exc.strerror}",
                 "suggestion": "make it writable by you, or free some disk space, then retry"}
    else:  # a bug, not a user mistake: one line here, the traceback in the log
        log = _log_unexpected()
        error = {"type": "internal_error", "message": f"unexpected error: {type(exc).__name__}: {exc}",
                 "suggestion": f"details in {log}" if log else "please report this"}
    try:
        output.error(error)
    except OSError:  # stdout itself failed (a full disk, a closed pipe): the first error was about it
        return _reader_gone()
    code = exc.exit_code if isinstance(exc, EnvoyError) else 1
    return code if code in EXIT_CODES else 1


# The verbs that may run for long (checks, waits, a merge's hooks) and so get ended by
# CI's cancel or `timeout`: they answer SIGTERM/SIGHUP with one document (see errors.Terminated).
ANSWER_SIGNALS = ("land", "wait", "merge")


def _terminated(ended: Terminated, argv: list[str]) -> int:
    """The one document of a verb ended by SIGTERM or SIGHUP; exit 128 + the signal."""
    import signal

    name = signal.Signals(ended.signum).name
    verb = next((a for a in argv if a in ANSWER_SIGNALS), "the verb")
    error = {"type": "terminated", "message": f"envoy parallel {verb} was ended by {name} before it finished; "
             "what it had not done is undone (a target moves only by compare-and-swap, so it moved whole or not "
             "at all)" + ("; data says what it did" if ended.data is not None else ""),
             "suggestion": f"envoy parallel status shows where things stand; run envoy parallel {verb} again to "
                           "finish"}
    try:
        output.error(error, ended.data)
    except OSError:
        return _reader_gone()
    return 128 + ended.signum


def _reader_gone() -> int:
    """stdout's reader went away (`envoy ... | head -c1`) or stdout cannot be written
    (`> /dev/full`): nothing more can be said there, and Python's own flush at exit
    must not print a traceback about it either."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 1


def run_verb(verb: str, args: argparse.Namespace) -> int:
    """Run `verb`'s module, imported only now: `status` does not pay for `discover`."""
    if verb == "spawn":
        from envoy.commands import spawn
        return spawn.run(args)
    if verb == "status":
        from envoy.commands import status
        return status.run(args)
    if verb == "results":
        from envoy.commands import results
        return results.run(args)
    if verb == "cleanup":
        from envoy.commands import cleanup
        return cleanup.run(args)
    if verb == "wait":
        from envoy.commands import wait
        end_on_signals()
        return wait.run(args)
    if verb == "watch":
        from envoy.commands import watch
        return watch.run(args)
    if verb == "resume":
        from envoy.commands import resume
        return resume.run(args)
    if verb == "diff":
        from envoy.commands import diff
        return diff.run(args)
    if verb == "merge":
        from envoy.commands import merge
        end_on_signals()
        return merge.run(args)
    if verb == "conflicts":
        from envoy.commands import conflicts
        return conflicts.run(args)
    if verb == "land":
        from envoy.commands import land
        end_on_signals()
        return land.run(args)
    if verb == "init":
        from envoy.commands import init
        return init.run(args)
    if verb == "discover":
        from envoy.commands import discover
        return discover.run(args)
    if verb == "stop":
        from envoy.commands import stop
        return stop.run(args)
    if verb == "path":
        from envoy.commands import path
        return path.run(args)
    if verb == "completion":
        from envoy.commands import completion
        return completion.run(args, build_parser())
    if verb == "demo":
        from envoy.commands import demo
        return demo.run(args)
    if verb == "hook":
        from envoy.commands import hook
        return hook.run(args)
    raise AssertionError(f"no verb {verb!r}")  # build_parser names only the verbs above


def _log_unexpected() -> str | None:
    import traceback

    try:
        from pathlib import Path

        from envoy.git import Git
        from envoy.worker.store import State

        state = State(Git(Path.cwd()).common_dir())
        state.log("unexpected error:\n" + traceback.format_exc())
        return str(state.log_file)
    except Exception:
        return None
