"""The enforce-limits hook's logic: does a Bash command run `envoy parallel
spawn`, and should it be refused (inside a worker, or at the cap)?"""
from __future__ import annotations

import os
import re

TYPE_CHECKING = False  # typing's import would be paid on every spawn the hook looks at
if TYPE_CHECKING:
    from typing import Mapping

from envoy.worker.nesting import worker_here

SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;", "|&", "\n"}
SEPARATOR_CHARS = frozenset("&|;()")
WRAPPERS = {"env", "exec", "nohup", "time", "command", "sudo", "nice", "timeout", "xargs"}
SHELLS = {"sh", "bash", "zsh", "dash"}


def _is_envoy(word: str) -> bool:
    base = os.path.basename(word)
    return base in ("envoy", "envoy.pyz") or base.endswith(".pyz") and "envoy" in base


PUNCTUATION = "();<>|&"
_PLAIN = re.compile(r"[^ \t\r\n'\"\\();<>|&]+")  # a run of characters that are only themselves
_PLAIN_NO_PUNCTUATION = re.compile(r"[^ \t\r\n'\"\\]+")
_IN_DOUBLE = re.compile(r'["\\]')


def shell_words(text: str, punctuation: bool = True) -> list[str]:
    """The words of a POSIX shell command line as shlex(posix=True, punctuation_chars=True,
    whitespace_split=True) splits them (or shlex.split, without `punctuation`), in time
    linear in its length: shlex grows each word a character at a time (`self.token +=
    c`, a copy each time), quadratic in the longest word (a 1.6 MB command took 26 s,
    against the hook's 30 s time-out). Unlike shlex, `#` starts a comment only where a
    word would start, as in the shell, and a newline (outside quotes) separates commands
    as `;` does. ValueError on an unclosed quote or a trailing backslash."""
    words: list[str] = []
    word: list[str] | None = None  # the parts of the word being read; None between words
    i, n = 0, len(text)
    punct, plain = (PUNCTUATION, _PLAIN) if punctuation else ("", _PLAIN_NO_PUNCTUATION)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            if word is not None:
                words.append("".join(word))
                word = None
            if c == "\n" and punctuation:
                words.append(";")
            i += 1
        elif c in punct:
            if word is not None:
                words.append("".join(word))
                word = None
            j = i + 1
            while j < n and text[j] in punct:  # shlex keeps a run of them together: `&&`, `;;`, `|&`
                j += 1
            words.append(text[i:j])
            i = j
        elif c == "#" and word is None and punctuation:
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("No closing quotation")
            if word is None:
                word = []
            word.append(text[i + 1:end])
            i = end + 1
        elif c == '"':
            parts = word if word is not None else []
            j = i + 1
            while True:
                match = _IN_DOUBLE.search(text, j)
                if match is None:
                    raise ValueError("No closing quotation")
                k = match.start()
                parts.append(text[j:k])
                if text[k] == '"':
                    i = k + 1
                    break
                if k + 1 >= n:
                    raise ValueError("No closing quotation")
                escaped = text[k + 1]  # inside double quotes only \" and \\ are escapes (shlex's rule)
                parts.append(escaped if escaped in '"\\' else "\\" + escaped)
                j = k + 2
            word = parts
        elif c == "\\":
            if i + 1 >= n:
                raise ValueError("No escaped character")
            if word is None:
                word = []
            word.append(text[i + 1])
            i += 2
        else:
            match = plain.match(text, i)
            assert match is not None  # `c` is none of the characters the pattern excludes
            if word is None:
                word = []
            word.append(match.group())
            i = match.end()
    if word is not None:
        words.append("".join(word))
    return words


def _simple_commands(command: str) -> list[list[str]]:
    try:
        tokens = shell_words(command)
    except ValueError:  # unbalanced quotes: judge the words we can see
        tokens = command.split()
    commands: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        if token in SEPARATORS or token[:1] in SEPARATOR_CHARS and set(token) <= SEPARATOR_CHARS:
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


# The wrappers' options that take their value as the next word (`env -u NAME`,
# `timeout -s KILL 5`): that word is not the command.
VALUE_OPTIONS = {
    "env": {"-u", "--unset", "-C", "--chdir"},
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "nice": {"-n", "--adjustment"},
    "time": {"-f", "--format", "-o", "--output"},
    "sudo": {"-u", "--user", "-g", "--group", "-C", "--close-from", "-D", "--chdir", "-h", "--host", "-p",
             "--prompt", "-r", "--role", "-t", "--type", "-U", "--other-user", "-T", "--command-timeout"},
    "xargs": {"-a", "--arg-file", "-d", "--delimiter", "-E", "-I", "-L", "-n", "--max-args", "-P", "--max-procs",
              "-s", "--max-chars"},
}


def _strip_prefixes(words: list[str]) -> list[str]:
    """Drop env assignments, wrappers (env, nohup, timeout 5 ...) with their options, and
    the interpreter."""
    i, wrapper = 0, ""
    while i < len(words):
        word = words[i]
        base = os.path.basename(word)
        if wrapper and word.startswith("-"):
            if wrapper == "env" and word in ("-S", "--split-string") and i + 1 < len(words):
                words = [*words[:i], *_split(words[i + 1]), *words[i + 2:]]  # env -S "envoy parallel spawn ..."
            else:
                i += 2 if word in VALUE_OPTIONS.get(wrapper, ()) else 1
        elif "=" in word and not word.startswith("-") and word.split("=", 1)[0].isidentifier():
            i += 1
        elif base in SHELLS and shell_script(words[i + 1:]) is None:
            i += 1  # sh bin/envoy ...
        elif base in WRAPPERS:
            wrapper = base
            i += 1
        elif word.startswith("-") and i > 0:
            i += 1
        elif base.startswith(("python", "uv", "pipx")) and not _is_envoy(word):
            wrapper = ""
            i += 1  # python3 [-I -S] .claude/envoy.pyz ..., uv run envoy ...
        elif word == "run" and i > 0:
            i += 1
        elif word.replace(".", "").isdigit():
            i += 1  # timeout 30 envoy ...
        else:
            break
    return words[i:]


def _split(text: str) -> list[str]:
    try:
        return shell_words(text, punctuation=False)
    except ValueError:  # unbalanced quotes: judge the words we can see
        return text.split()


def shell_script(args: list[str]) -> str | None:
    """The command text a shell given `args` runs with -c (None: a script file or stdin).
    -c may come among other options (`bash -x -c ...`, `sh -ec ...`): the text is then the
    first argument that is not an option."""
    runs_text, i = False, 0
    while i < len(args):
        word = args[i]
        if word in ("-o", "+o", "-O", "+O"):  # set -o NAME: the name is no command
            i += 2
        elif word == "--":
            i += 1
            break
        elif len(word) > 1 and word[0] in "-+":
            runs_text = runs_text or (word[0] == "-" and not word.startswith("--") and "c" in word[1:])
            i += 1
        else:
            break
    return args[i] if runs_text and i < len(args) else None


def spawn_invocations(command: str, depth: int = 0) -> list[list[str]]:
    """The argument lists of every `envoy parallel spawn` the command would run."""
    found = []
    for words in _simple_commands(command):
        words = _strip_prefixes(words)
        if not words:
            continue
        if os.path.basename(words[0]) in SHELLS and depth < 3:
            script = shell_script(words[1:])
            if script is not None:
                found += spawn_invocations(script, depth + 1)
                continue
        if not _is_envoy(words[0]):
            continue
        rest = [w for w in words[1:] if w not in ("--json", "--text")]
        if rest[:2] == ["parallel", "spawn"]:
            found.append(rest[2:])
    return found


def refusal(spawns: list[list[str]], cwd: str, environ: Mapping[str, str]) -> str | None:
    """Why these spawns must not run, or None to let them (and envoy's own checks) go ahead."""
    worker = worker_here(cwd, environ)  # spawn's own rule: by the environment, or by where it runs
    if worker:
        return (f"envoy: this session is the envoy worker {worker}, and workers "
                "do not start workers. Do the work yourself in this worktree, or say in your final answer "
                "what should run in parallel so the orchestrator can spawn it.")
    if all("--queue" in args for args in spawns):
        return None  # queued spawns wait for a slot instead of exceeding the cap
    from envoy.gitdir import find_common_dir

    common = find_common_dir(cwd)
    if common is None or not (common / "envoy" / "workers").is_dir():
        return None  # no workers recorded here, so none running
    from envoy.config import Config
    from envoy.gitdir import toplevel_of
    from envoy.worker import locks
    from envoy.worker.record import ACTIVE
    from envoy.worker.store import State

    state = State(common)
    cap = Config(toplevel_of(cwd) or common.parent, dict(environ)).get("PARALLEL_MAX_WORKERS")
    held = len(locks.held_slots(state))  # the rule spawn itself applies: one held slot per running worker
    if held + len(spawns) - 1 < cap:
        return None
    names = ", ".join(f"{r['name']} ({r.get('branch')})" for r in state.all() if r.get("state") in ACTIVE)
    return (f"envoy: {held} of {cap} workers are already running (PARALLEL_MAX_WORKERS={cap}): {names}. "
            "Wait for one to finish (`envoy parallel wait` or `envoy parallel status`), add --queue to start this "
            "one when a slot frees, or stop one with `envoy parallel cleanup --worker NAME --force`.")
