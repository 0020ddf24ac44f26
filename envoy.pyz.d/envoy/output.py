"""Text for people, JSON for programs.

Piped output (Claude Code's Bash tool, CI) is one JSON document in the
envelope `{"status": "success", "data": ...}` or `{"status": "error",
"error": {...}}`; a terminal gets readable text. `--json` / `--text` force
either. JSON is compact: the calling agent pays for every byte it reads.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

_json_mode: bool | None = None


def set_mode(force_json: bool, force_text: bool) -> None:
    global _json_mode
    if force_json:
        _json_mode = True
    elif force_text:
        _json_mode = False
    else:
        _json_mode = not sys.stdout.isatty()


def json_mode() -> bool:
    if _json_mode is None:
        return not sys.stdout.isatty()
    return _json_mode


def dumps(value: Any) -> str:
    """Compact JSON that any parser reads: a NaN or infinity (agent output is untrusted,
    and Python's json writes them as bare NaN/Infinity) becomes null."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(finite(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def finite(value: Any) -> Any:
    """`value` with every NaN and infinity (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if value - value == 0 else None  # inf - inf and nan - nan are nan
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def success(data: Any, render: Callable[[Any], str]) -> None:
    """Print a verb's result: the envelope as JSON, or `render(data)` as text."""
    if json_mode():
        print(dumps({"status": "success", "data": data}))
    else:
        text = render(data)
        if text:
            print(text)


def error(error: dict[str, Any], data: Any = None) -> None:
    """Print a refusal: JSON on stdout when piped (the caller parses it), else text on stderr."""
    if json_mode():
        envelope: dict[str, Any] = {"status": "error", "error": error}
        if data is not None:
            envelope["data"] = data
        print(dumps(envelope))
        return
    print(f"{paint('envoy: error:', 'red', 'bold', stream=sys.stderr)} {error['message']}", file=sys.stderr)
    if error.get("suggestion"):
        print(f"  try: {error['suggestion']}", file=sys.stderr)


def failure(error_dict: dict[str, Any], data: Any, render: Callable[[Any], str]) -> None:
    """A failure that still carries its data (a worker that did not succeed, a wait
    that timed out): JSON error with `data`, or the rendered data then the error."""
    if json_mode():
        error(error_dict, data=data)
    else:
        print(render(data))
        error(error_dict)


_STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}


def colour(stream: Any = None) -> bool:
    """Colour only for a person at a terminal: never in JSON, into a pipe or file, with
    NO_COLOR set (no-color.org: any non-empty value) or on a dumb terminal."""
    stream = sys.stdout if stream is None else stream
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    if stream is sys.stdout and json_mode():
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed, or not a real stream
        return False


def paint(text: str, *styles: str, stream: Any = None) -> str:
    """`text` in the given styles (bold, dim, red, green, yellow, blue, cyan) when
    `colour(stream)`; else unchanged."""
    codes = ";".join(_STYLES[s] for s in styles if s in _STYLES)
    if not codes or not text or not colour(stream):
        return text
    return f"\033[{codes}m{text}\033[0m"


def progress(message: str) -> None:
    """Progress goes to stderr so stdout stays one parseable document."""
    print(f"[envoy] {message}", file=sys.stderr, flush=True)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def one_line(text: str | None, limit: int) -> str:
    """First line-ish of a long text, for tables and summaries."""
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
