"""Reading a batch of tasks for `spawn --batch`: JSON Lines, one worker a line,
keys named after spawn's long options. Every line is checked here before
anything is made; a bad one refuses the whole batch, naming its line.

    {"branch": "feat/db", "task": "Add the users table", "touches": ["db/**"]}
    {"branch": "feat/api", "task": "Add /users", "after": "feat/db", "timeout": 1800}
"""
from __future__ import annotations

import json
import math
from typing import IO, Any

from envoy.config import PERMISSION_MODES
from envoy.errors import EnvoyError

MAX_TASKS = 1000  # a batch larger than this is a mistake (or a loop): refused before it is read whole
MAX_LINE_BYTES = 1024 * 1024
BOM = b"\xef\xbb\xbf"

_TEXT = "text"
_TEXTS = "text or list of texts"
_NUMBER = "number"
_INT = "whole number"
KEYS: dict[str, str] = {
    "branch": _TEXT, "task": _TEXT, "task_file": _TEXT, "from": _TEXT, "after": _TEXTS, "touches": _TEXTS,
    "timeout": _NUMBER, "setup": _TEXT, "model": _TEXT, "permission_mode": _TEXT, "allowed_tools": _TEXTS,
    "max_turns": _INT, "budget": _NUMBER, "on_end": _TEXT,
}
EXAMPLE = '{"branch": "feat/db", "task": "Add the users table", "touches": ["db/**"]}'


def refuse(line: int | None, message: str, suggestion: str) -> EnvoyError:
    where = f"batch line {line}: " if line else "batch: "
    return EnvoyError("invalid_input", where + message, suggestion, **({"line": line} if line else {}))


def read(source: IO[bytes]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, entry) of every task in `source`, each checked; blank lines skipped.
    Reads at most MAX_TASKS tasks of MAX_LINE_BYTES each: a huge input is refused
    quickly, in bounded memory."""
    entries: list[tuple[int, dict[str, Any]]] = []
    number = 0
    while True:
        raw = source.readline(MAX_LINE_BYTES + 1)
        if not raw:
            break
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise refuse(number, f"the line is over {MAX_LINE_BYTES // 1024} KiB",
                         "put a long task in a file and name it with \"task_file\"")
        if raw.startswith(BOM):  # the start of a file, or of one concatenated onto another
            raise refuse(number, "the line starts with a byte order mark (BOM)", "save it as UTF-8 without a BOM")
        if raw.endswith(b"\r\n") or b"\r" in raw.rstrip(b"\n"):
            raise refuse(number, "the line ends in CRLF (\\r\\n)", "save it with Unix line endings (\\n), "
                         "e.g. sed -i 's/\\r$//' FILE")
        if not raw.strip():
            continue
        if len(entries) >= MAX_TASKS:
            raise refuse(number, f"the batch has over {MAX_TASKS} tasks", f"split it into batches of {MAX_TASKS} or fewer")
        entries.append((number, _entry(number, raw)))
    if not entries:
        raise refuse(None, "no tasks: the batch is empty", f"give one JSON object a line, e.g. {EXAMPLE}")
    return entries


def _entry(number: int, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(number, "the line is not UTF-8 text", "save the batch as UTF-8") from None
    try:
        entry = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise refuse(number, f"not JSON ({exc})", f"one JSON object a line, e.g. {EXAMPLE}") from None
    if not isinstance(entry, dict):
        raise refuse(number, f"a JSON {type(entry).__name__}, not an object", f"one JSON object a line, e.g. {EXAMPLE}")
    for key, value in entry.items():
        kind = KEYS.get(key)
        if kind is None:
            near = key.replace("-", "_")
            hint = f"did you mean {near!r}? " if near in KEYS else ""
            raise refuse(number, f"unknown key {key!r}", f"{hint}keys are spawn's long options: {', '.join(KEYS)}")
        if not _fits(value, kind):
            raise refuse(number, f"{key!r} must be a {kind}, not {json.dumps(value)[:60]}", f"e.g. {EXAMPLE}")
    if "branch" not in entry:
        raise refuse(number, "no \"branch\"", f"every task names its new branch, e.g. {EXAMPLE}")
    if ("task" in entry) == ("task_file" in entry):
        raise refuse(number, "give the task once: \"task\" or \"task_file\"", f"e.g. {EXAMPLE}")
    if entry.get("task_file") == "-":
        raise refuse(number, "\"task_file\" cannot be - (standard input) in a batch", "name a file")
    mode = entry.get("permission_mode")
    if mode is not None and mode not in PERMISSION_MODES:
        raise refuse(number, f"\"permission_mode\" {mode!r} is not one of {', '.join(PERMISSION_MODES)}",
                     "leave it out for the default (PARALLEL_PERMISSION_MODE, else acceptEdits)")
    for key in ("after", "touches", "allowed_tools"):
        if isinstance(entry.get(key), str):
            entry[key] = [entry[key]]
    return entry


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _fits(value: Any, kind: str) -> bool:
    if kind == _TEXT:
        return isinstance(value, str) and bool(value.strip())
    if kind == _TEXTS:
        return (isinstance(value, str) and bool(value.strip())) or (
            isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value))
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle among the batch's workers (name -> names it waits for), or None.
    Iterative: a chain of a thousand `after`s is no recursion limit."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(edges, WHITE)
    for root in edges:
        if colour[root] != WHITE:
            continue
        path = [root]
        stack = [iter(edges[root])]
        colour[root] = GREY
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = BLACK
                stack.pop()
            elif colour.get(nxt) == GREY:
                return path[path.index(nxt):] + [nxt]
            elif colour.get(nxt) == WHITE:
                colour[nxt] = GREY
                path.append(nxt)
                stack.append(iter(edges.get(nxt, [])))
    return None
