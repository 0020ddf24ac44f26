"""The discovery report: each stream's findings read from its result message,
the places where streams may disagree, and the Markdown a person reads.

Findings come from the result's `structured_output` (the --json-schema
answer); failing that, from the final text parsed as JSON; failing that,
the raw text becomes one finding, so an answer is never lost.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from envoy import files, output, usage

LINE_SUFFIX = re.compile(r"(:\d+(-\d+)?(:\d+)?|#L\d+(-L?\d+)?)$")


def report(task: str, endings: list[dict[str, Any]], top: Path) -> dict[str, Any]:
    streams = []
    for ending in endings:
        result = ending["result"] or {}
        found, questions = parse(result) if ending["error"] is None else ([], [])
        streams.append({"role": ending["role"].name, "source": ending["role"].source, "findings": found,
                        "open_questions": questions, "duration_s": ending["duration_s"],
                        "cost_usd": result.get("total_cost_usd"), "session_id": ending["session_id"],
                        "reason": ending["reason"], "error": ending["error"]})
    total = usage.total_cost(streams)
    return {"task": task, "streams": streams, "conflicts": conflicts(streams, top), "total_cost_usd": total}


def parse(result: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """(findings, open questions) of one stream's result message."""
    data = result.get("structured_output")
    raw = result.get("result")
    text = raw if isinstance(raw, str) else ""
    if not isinstance(data, dict):
        data = _json_object(text)
    if isinstance(data, dict) and isinstance(data.get("findings"), list):
        questions = data.get("open_questions")
        return ([_finding(f) for f in data["findings"]],
                [str(q) for q in questions] if isinstance(questions, list) else [])
    text = text.strip()
    return ([{"title": "answer (not structured)", "detail": text, "files": []}] if text else []), []


def _json_object(text: str) -> Any:
    """The text as JSON, also inside a ```json fence; None when it is prose."""
    fenced = re.search(r"```(?:json)?\s*\n(.*?)\n\s*```", text, re.S)
    for candidate in (text, fenced.group(1) if fenced else None):
        if candidate:
            try:
                return files.parse_json(candidate)
            except ValueError:
                pass
    return None


def _finding(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {"title": str(raw), "detail": "", "files": []}
    files = raw.get("files")
    return {"title": str(raw.get("title") or ""), "detail": str(raw.get("detail") or ""),
            "files": [str(f) for f in files] if isinstance(files, list) else []}


def file_key(cited: str, top: Path) -> str:
    """The file a citation names, comparable across streams: no line numbers, no ./, relative to the checkout."""
    key = LINE_SUFFIX.sub("", cited.strip().strip("`"))
    if key.startswith(str(top) + "/"):
        key = key[len(str(top)) + 1:]
    return key[2:] if key.startswith("./") else key


def conflicts(streams: list[dict[str, Any]], top: Path) -> list[dict[str, Any]]:
    """Files that two or more streams make different claims about.

    envoy compares citations, not meaning: such a file is where streams may
    disagree, and worth a look; identical claims are not listed."""
    claims: dict[str, list[dict[str, str]]] = {}
    for stream in streams:
        for finding in stream["findings"]:
            for key in dict.fromkeys(file_key(f, top) for f in finding["files"] if f.strip()):
                claims.setdefault(key, []).append(
                    {"role": stream["role"], "title": finding["title"], "detail": finding["detail"]})
    found = []
    for key, said in sorted(claims.items()):
        distinct = {" ".join((c["detail"] or c["title"]).lower().split()) for c in said}  # the claim itself
        if len({c["role"] for c in said}) > 1 and len(distinct) > 1:
            found.append({"file": key, "roles": sorted({c["role"] for c in said}), "claims": said})
    return found


def render(data: dict[str, Any]) -> str:
    lines = [f"# Discovery: {output.one_line(data['task'], 200)}", ""]
    for stream in data["streams"]:
        cost = f", ${stream['cost_usd']:.4f}" if stream["cost_usd"] is not None else ""
        lines.append(f"## {stream['role']} ({output.duration(stream['duration_s'])}{cost})")
        if stream["error"]:
            lines.append(f"- {stream['role']}: failed: {stream['error']}")
        elif not stream["findings"]:
            lines.append(f"- {stream['role']}: no findings")
        for finding in stream["findings"]:
            files = f" ({', '.join(finding['files'])})" if finding["files"] else ""
            detail = f": {finding['detail']}" if finding["detail"] else ""
            lines.append(f"- {stream['role']}: **{finding['title']}**{detail}{files}")
        for question in stream["open_questions"]:
            lines.append(f"- {stream['role']} asks: {question}")
        lines.append("")
    lines.append("## Conflicts")
    if data["conflicts"]:
        lines.append("Files that several streams make different claims about (envoy compares citations, "
                     "not meaning: check whether they disagree):")
        for conflict in data["conflicts"]:
            lines.append(f"- `{conflict['file']}`")
            lines += [f"  - {c['role']}: {output.one_line(': '.join(filter(None, (c['title'], c['detail']))), 200)}"
                      for c in conflict["claims"]]
    else:
        lines.append("None found: no file is cited by two streams with different claims.")
    failed = [s for s in data["streams"] if s["error"]]
    lines += ["", "## Errors"]
    lines += [f"- {s['role']}: {s['error']}" for s in failed] or ["None: every stream finished."]
    lines += ["", f"Total cost: ${data['total_cost_usd']:.4f}"]
    return "\n".join(lines)
