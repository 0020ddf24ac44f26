"""Where every way of running envoy starts (envoy.pyz, `python -m envoy`, the
`envoy` console script). Hooks (on every tool call) and a worker's watcher
(beside every agent, for hours) skip the command-line parser and import only
their own module; everything else goes through cli.main."""
from __future__ import annotations

import os
import sys

from envoy import hooks

TYPE_CHECKING = False  # not typing's: hooks and the watcher beside each agent would pay its import
if TYPE_CHECKING:
    from typing import NoReturn


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for stream in ("stdout", "stderr"):
        if getattr(sys, stream) is None:  # started with it closed (`envoy ... >&-`): nobody reads it
            setattr(sys, stream, open(os.devnull, "w", encoding="utf-8"))
    if args[:1] == ["hook"] and len(args) == 2 and args[1] in hooks.NAMES:  # else the parser says what is wrong
        from envoy.commands.hook import main as hook_main

        return hook_main(args[1])
    if args[:1] == ["_watch"]:
        from envoy.worker.watcher import main as watch_main

        return watch_main(args[1:])
    if args[:1] == ["_on_end"] and len(args) == 4:
        from envoy.worker.on_end import main as on_end_main

        return on_end_main(args[1:])
    if args[:1] == ["_queue"] and len(args) == 2:
        from envoy.worker.queue import main as queue_main

        return queue_main(args[1])
    if args[:1] == ["_ray_watch"] and len(args) == 2:  # the remote watcher (executors/ray_watch.py)
        from envoy.executors.ray_watch import main as ray_watch_main

        return ray_watch_main(args[1])
    if args[:1] == ["_budget"] and len(args) == 2:
        from envoy.worker.stopping import enforce_budget

        return enforce_budget(args[1])
    if args == ["_workers"]:  # shell completion's live worker names: no parser, no git
        from envoy.commands.completion import list_workers

        return list_workers(os.getcwd())
    if args[:1] == ["_standin"]:  # envoy demo's scripted stand-in for `claude`
        from envoy.demo_script import standin_main

        return standin_main(args[1:])
    if args[:1] == ["_remote"]:  # a remote worker's run, on its node (a Ray job's entrypoint)
        from envoy.executors.node import main as remote_main

        return remote_main(args[1:])
    from envoy.cli import main as cli_main

    return cli_main(args)


def run() -> NoReturn:
    """Run envoy and end the process. Once the output is flushed there is nothing left
    to do, so it exits without the interpreter's teardown of every module and object:
    8-20 ms of each command (measured on a spawn), paid on every hook and spawn."""
    if "COVERAGE_PROCESS_START" in os.environ and "coverage" not in sys.modules:
        measure_coverage()
    try:
        code = main()
    except OSError:  # a hook's stdout failed mid-answer: a closed pipe, a full disk (verbs handle their own)
        code = 1
    if code not in (0, 1, 2, 3, 129, 130, 143):  # the README's promise (errors.EXIT_CODES), whatever a verb returned
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader went away, or stdout was closed
        code = code or 1
    os._exit(code)


def measure_coverage() -> None:
    """Developers' coverage runs only (tests/coverage/run sets COVERAGE_PROCESS_START):
    measure this process too. Every other interpreter envoy starts is measured by the
    .pth file coverage installs, but the watcher runs `python -I -S`, which reads no .pth
    and has no site-packages to import coverage from. The data is saved by coverage's
    own patch of os._exit (the run's config says `patch = _exit`), before run() ends."""
    import importlib
    import sysconfig

    sys.path.append(sysconfig.get_paths()["purelib"])
    try:  # by name: coverage is a developer's tool, installed or not where mypy checks envoy
        coverage = importlib.import_module("coverage")
    except ImportError:  # not installed for this interpreter: nothing to measure with
        return
    coverage.process_startup(slug="envoy")
