"""discovery/findings.py: a stream's answer parsed into findings, whatever its shape."""
from __future__ import annotations

from pathlib import Path

from conftest import structured
from envoy.discovery import findings


def test_a_discovery_answer_nested_too_deep_is_prose_not_a_crash():
    from envoy.discovery import findings

    deep = "[" * 100_000 + "]" * 100_000
    found, _ = findings.parse({"result": deep})
    assert found == [{"title": "answer (not structured)", "detail": deep, "files": []}]


def test_parse_fallbacks() -> None:
    fenced = "Here you go:\n```json\n" + structured(("Fenced", "d", ["a.py"]), questions=("q",)) + "\n```"
    assert findings.parse({"result": fenced}) == ([{"title": "Fenced", "detail": "d", "files": ["a.py"]}], ["q"])
    assert findings.parse({"structured_output": {"findings": ["bare string"]}, "result": "ignored"}) == (
        [{"title": "bare string", "detail": "", "files": []}], [])
    assert findings.parse({"result": "  "}) == ([], [])
    assert findings.file_key("`/top/src/a.py:10-20`", Path("/top")) == "src/a.py"
    assert findings.file_key("./b.py#L3", Path("/top")) == "b.py"
    assert findings.file_key("https://example.com:8080/doc", Path("/top")) == "https://example.com:8080/doc"
