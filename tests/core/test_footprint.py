"""footprint: which declared globs can touch a common path (never "disjoint" wrongly)."""
from __future__ import annotations

import fnmatch

import pytest

from envoy import footprint
from envoy.errors import EnvoyError


@pytest.mark.parametrize("a, b, overlap", [
    ("src/db", "src/db/models.py", True),        # a directory covers what is under it
    ("src/db/**", "src/db/a/b/c.py", True),
    ("src/*.py", "src/a.txt", True),  # src/a.txt may be a directory holding x.py
    ("src/*.py", "README", False),
    ("src/*.py", "src/sub/a.py", True),  # as in git's pathspecs, * matches across /
    ("src/*.py", "lib/a.py", False),
    ("*.md", "docs/a.md", True),
    ("**/*.md", "docs/guide/a.md", True),
    ("a/**", "b/**", False),
    ("src/a*", "src/b*", False),
    ("src/a*", "src/*b", True),
    ("x/**/y", "x/q/r/y", True),
    ("x/**/y.py", "w/y.py", False),
    ("x/**/y.py", "x/q/z.py", True),  # x/q/z.py may be a directory holding y.py
    ("web/[ab].js", "web/b.js", True),
    ("web/[ab].js", "web/c.js", False),
    ("README", "README", True),
    ("README", "README.md", False),
])
def test_overlap(a, b, overlap):
    assert footprint.overlap([a], [b]) is overlap
    assert footprint.overlap([b], [a]) is overlap


def test_overlap_is_never_disjoint_when_a_path_matches_both():
    paths = ["src/db/models.py", "src/db/a/b.py", "docs/a.md", "web/b.js", "README", "x/q/r/y", "lib/core/z.py"]
    globs = ["src/**", "src/db", "**/*.py", "*.md", "docs/*", "web/[ab].js", "x/**/y", "lib/core/*.py", "README"]

    def matches(glob: str, path: str) -> bool:  # fnmatch's * crosses slashes, as git's pathspecs do
        parts, pats = path.split("/"), glob.split("/")
        for cut in range(len(parts) + 1):  # a glob covers its subtree
            head = "/".join(parts[:cut])
            if fnmatch.fnmatchcase(head, glob) or ("**" in pats and _doublestar(pats, parts[:cut])):
                return True
        return False

    def _doublestar(pats: list[str], parts: list[str]) -> bool:
        if not pats:
            return not parts
        if pats[0] == "**":
            return any(_doublestar(pats[1:], parts[i:]) for i in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and _doublestar(pats[1:], parts[1:])

    for a in globs:
        for b in globs:
            if any(matches(a, p) and matches(b, p) for p in paths):
                assert footprint.overlap([a], [b]), (a, b)


@pytest.mark.parametrize("glob", ["/etc/passwd", "~/x", "C:\\x", "../x", "a/../b", "", "  ", ".", "./", "a/x**",
                                  "src/[ab", "a\nb"])
def test_bad_globs_are_refused(glob):
    with pytest.raises(EnvoyError) as refused:
        footprint.check([glob])
    assert refused.value.kind == "invalid_input"


def test_globs_are_normalised():
    assert footprint.check(["./src/db/", "src/db", "docs//x"]) == ["src/db", "docs/x"]
