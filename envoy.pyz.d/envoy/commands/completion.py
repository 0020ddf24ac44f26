"""`envoy completion bash|zsh`: a shell completion script.

Verbs, options and option choices are written into the script from the
parser itself, so they never drift from the CLI. Worker names are live: the
script asks `envoy _workers` (a fast path in entry.py: it reads the record
files' names, no git, no parser) whenever a `--worker` or `--after` value is
completed. The script runs the same envoy that wrote it (an alias such as
`envoy='python3 .claude/envoy.pyz'` is not visible inside a completion
function). zsh runs the same function through its bash-completion layer.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from envoy import processes

WORKER_OPTIONS = ("--worker", "--after")


def _options(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]]]:
    """(its long options, {option: its choices})."""
    options: list[str] = []
    choices: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        for flag in action.option_strings:
            if flag.startswith("--"):
                options.append(flag)
                if action.choices:
                    choices[flag] = [str(c) for c in action.choices]
    return options, choices


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _case(key: str, words: list[str]) -> str:
    return f"        {shlex.quote(key)}) words={shlex.quote(' '.join(words))} ;;"


def bash_function(parser: argparse.ArgumentParser, envoy: list[str]) -> str:
    """The completion function `_envoy`, for `complete -F _envoy envoy`."""
    top = _subcommands(parser)
    verbs = _subcommands(top["parallel"])
    word_cases, choice_cases = [], []
    for name, sub in [*((n, p) for n, p in top.items() if n != "parallel"), *((f"parallel {v}", p) for v, p in verbs.items())]:
        options, choices = _options(sub)
        positional = [str(c) for a in sub._actions if not a.option_strings and a.choices
                      and not isinstance(a, argparse._SubParsersAction) for c in a.choices]
        word_cases.append(_case(name, positional + options))
        choice_cases += [_case(f"{name} {flag}", values) for flag, values in choices.items()]
    lines = [
        "_envoy() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" words="" w i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do  # the command typed so far: `parallel spawn`, `demo`",
        '        w="${COMP_WORDS[i]}"',
        '        case "$w" in -*) continue ;; esac',
        '        case "$cmd" in "" | parallel) cmd="${cmd:+$cmd }$w" ;; esac',
        "    done",
        '    case "$prev" in ' + "|".join(WORKER_OPTIONS) + ")",
        f'        COMPREPLY=($(compgen -W "$({shlex.join([*envoy, "_workers"])} 2>/dev/null)" -- "$cur"))',
        "        return ;;",
        "    esac",
        '    case "$cmd $prev" in',
        *choice_cases,
        '        *) case "$cmd" in',
        _case("", [*top, "--help", "--version"]).replace("        ", "            ", 1),
        _case("parallel", [*verbs, "--help"]).replace("        ", "            ", 1),
        *(c.replace("        ", "            ", 1) for c in word_cases),
        "            esac ;;",
        "    esac",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
    ]
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    envoy = processes.self_command(bare=True)
    head = f"# envoy {shell} completion: eval \"$(envoy completion {shell})\" in your ~/.{shell}rc\n"
    function = bash_function(parser, envoy)
    names = "envoy envoy.pyz ./envoy.pyz .claude/envoy.pyz"
    if shell == "bash":
        return head + function + f"complete -F _envoy {names}\n"
    # zsh: the same function through zsh's own bash-completion layer
    return (head + "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + function + f"complete -F _envoy {names}\n")


def list_workers(cwd: str) -> int:
    """`envoy _workers`: the workers' names, one a line, for completion: file names of
    the records, read without git or the parser (completion runs it on every Tab)."""
    from envoy.gitdir import find_common_dir

    common = find_common_dir(cwd)
    if common is None:
        return 0
    try:
        names = sorted(p.name[:-len(".json")] for p in Path(common, "envoy", "workers").iterdir()
                       if p.name.endswith(".json") and not p.name.startswith("."))
    except OSError:
        return 0
    sys.stdout.write("".join(f"{n}\n" for n in names if n.isprintable() and " " not in n))
    return 0


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`parser`: the CLI's own, handed over by cli.py (a verb never imports the CLI)."""
    sys.stdout.write(script(args.shell, parser))
    return 0
