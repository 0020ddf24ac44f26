"""Declared footprints (`touches`): the paths a worker says it will change, as globs
relative to the repository root. Two workers whose footprints overlap never run
at the same time: conflicts prevented beat conflicts repaired.

A glob covers what it matches and everything under it (`src/db` covers
`src/db/x.py`); as in git's pathspecs `*` may match across slashes (`*.md` is
every Markdown file), `?` and `[...]` match one character, `**` any number of
segments. Whether two globs can match a common path is decided
segment by segment, erring towards "overlap": a false overlap only serialises
two workers, a false "disjoint" would let them collide."""
from __future__ import annotations

import fnmatch
import re
from functools import lru_cache

from envoy.errors import EnvoyError

MAX_GLOBS = 100
MAX_GLOB_CHARS = 1000
_MAGIC = re.compile(r"[*?\[]")


def check(globs: list[str], where: str = "--touches") -> list[str]:
    """The globs, normalised (no ./, no trailing /), or a refusal naming the bad one."""
    if len(globs) > MAX_GLOBS:
        raise EnvoyError("invalid_input", f"{where}: over {MAX_GLOBS} globs", "name directories rather than files")
    out: list[str] = []
    for glob in globs:
        problem = _problem(glob)
        if problem:
            raise EnvoyError("invalid_input", f"{where} {glob!r} {problem}",
                             "give globs relative to the repository root, e.g. --touches 'src/db/**'")
        norm = "/".join(s for s in glob.strip("/").split("/") if s not in ("", "."))
        if norm not in out:
            out.append(norm)
    return out


def _problem(glob: object) -> str | None:
    if not isinstance(glob, str) or not glob.strip():
        return "is empty"
    if len(glob) > MAX_GLOB_CHARS:
        return f"is over {MAX_GLOB_CHARS} characters"
    if any(ord(c) < 32 or c == "\x7f" for c in glob):
        return "holds control characters"
    if glob.startswith("/") or glob.startswith("~") or re.match(r"^[A-Za-z]:[\\/]", glob):
        return "is absolute: globs are relative to the repository root"
    segments = glob.strip("/").split("/")
    if ".." in segments:
        return "leaves the repository (..)"
    if all(s in ("", ".") for s in segments):
        return "names the whole repository: leave --touches out instead"
    for segment in segments:
        if "**" in segment and segment != "**":
            return "uses ** inside a segment: ** stands alone between slashes (src/**/x.py)"
        if segment.count("[") != segment.count("]") or re.search(r"\[\]|\[!\]", segment):
            return "has an unbalanced or empty [...]"
    return None


def overlap(a: list[str], b: list[str]) -> bool:
    """Whether any glob of `a` and any of `b` can match a common path."""
    return any(_globs_overlap(x, y) for x in a for y in b)


@lru_cache(maxsize=4096)
def _globs_overlap(x: str, y: str) -> bool:
    # each covers its subtree too: src/db is src/db/**
    return _paths(tuple(x.split("/")) + ("**",), tuple(y.split("/")) + ("**",))


@lru_cache(maxsize=16384)
def _paths(p: tuple[str, ...], q: tuple[str, ...]) -> bool:
    if not p and not q:
        return True
    if p and p[0] == "**":
        return _paths(p[1:], q) or (bool(q) and _paths(p, q[1:]))
    if q and q[0] == "**":
        return _paths(p, q[1:]) or (bool(p) and _paths(p[1:], q))
    if not p or not q:
        return False
    if _segments(p[0], q[0]) and _paths(p[1:], q[1:]):
        return True
    # git's pathspecs let * match across slashes (`*.md` is every Markdown file): a *
    # segment may also stand for several, head* ... *tail
    for mine, other, flip in ((p, q, False), (q, p, True)):
        if "*" in mine[0] and not mine[0].startswith(_FIXED):
            star, last = mine[0].index("*"), mine[0].rindex("*")
            spread = (_FIXED + mine[0][:star + 1], "**", _FIXED + mine[0][last:])
            if _paths(other, spread + mine[1:]) if flip else _paths(spread + mine[1:], other):
                return True
    return False


_FIXED = "\x00"  # marks a piece of a spread * segment: not spread again (globs hold no control characters)


def _segments(s: str, t: str) -> bool:
    """Whether one path segment can match both patterns (literal parts compared, wildcards
    assumed to match anything in between: never "disjoint" wrongly)."""
    s, t = s.removeprefix(_FIXED), t.removeprefix(_FIXED)
    s_magic, t_magic = bool(_MAGIC.search(s)), bool(_MAGIC.search(t))
    if not s_magic and not t_magic:
        return s == t
    if not s_magic:
        return fnmatch.fnmatchcase(s, t)
    if not t_magic:
        return fnmatch.fnmatchcase(t, s)
    head_s, head_t = _MAGIC.split(s, 1)[0], _MAGIC.split(t, 1)[0]
    tail_s, tail_t = _tail(s), _tail(t)
    return (head_s.startswith(head_t) or head_t.startswith(head_s)) and \
        (tail_s.endswith(tail_t) or tail_t.endswith(tail_s))


def _tail(pattern: str) -> str:
    """The literal text after the last wildcard."""
    end = max(pattern.rfind("*"), pattern.rfind("?"), pattern.rfind("]"))
    return pattern[end + 1:]
