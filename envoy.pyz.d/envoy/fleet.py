"""Answers that fit a fleet: many workers folded into counts, the rows that need
someone, and a note of what was left out.

An orchestrating agent pays for every byte it reads: at 200 workers a row each
is ~70 KB a look. So `status`, `wait` and `results` answer about many workers
in at most BYTES of JSON: every row when they all fit, else the rows that need
someone first (failed or lost, with `attention`, stopped, finished and not
merged, running longest), as brief rows, and a note saying how many rows of
which state were left out and how to see them (`--all`)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from envoy.output import dumps, one_line

BYTES = 4096  # the most a folded answer holds, envelope included

# Why a row needs someone, most urgent first; the number orders the rows.
_URGENCY = {"failed": 0, "lost": 0, "stopped": 2, "running": 4, "starting": 4, "queued": 5}


def attention(record: Any) -> list[str]:
    """The record's `attention` (issue 16's reasons a person must look), if any: only strings."""
    found = record.get("attention")
    return [a for a in found if isinstance(a, str)] if isinstance(found, list) else []


def urgency(record: Any) -> tuple[int, float]:
    """How much a row needs someone: (rank, tie-break), smaller first. A succeeded worker
    that was merged (or left no commits, where that is known) needs no one."""
    state = record.get("state")
    duration = record.get("duration_s")
    longest_first = -float(duration) if isinstance(duration, (int, float)) else 0.0
    if attention(record):
        return 1, longest_first
    if state == "succeeded":
        left = record.get("left")
        no_commits = isinstance(left, dict) and left.get("commits") == 0
        return (9 if record.get("merged_sha") or no_commits else 3), longest_first
    return _URGENCY.get(str(state), 6), longest_first


def brief(record: Any, view: dict[str, Any]) -> dict[str, Any]:
    """A row of a folded answer: who, where it stands, and why one should look."""
    row = {k: view[k] for k in ("name", "state", "reason", "duration_s", "cost_usd", "queue_position") if view.get(k)}
    notes = attention(record)
    if notes:
        row["attention"] = [one_line(a, 80) for a in notes[:3]] + ([f"... {len(notes) - 3} more"] if len(notes) > 3 else [])
    if view.get("error"):
        row["error"] = one_line(view["error"], 60)
    if record.get("state") == "succeeded" and not record.get("merged_sha"):
        row["merged"] = False
    return row


def fold(records: Sequence[Any], views: list[dict[str, Any]], rest: dict[str, Any], key: str = "workers",
         limit: int = BYTES, shorten: Callable[[Any, dict[str, Any]], dict[str, Any]] = brief,
         every: str = "envoy parallel status --all", whole_limit: int | None = None) -> dict[str, Any]:
    """`rest` with `key` holding every view (one per record) if the whole answer fits in
    `whole_limit` (default `limit`) bytes; else as many shortened views as fit in
    `limit`, the most urgent first, and `folded`: how many rows of which state were
    left out, and the command (`every`) that shows them all."""
    whole = {key: views, **rest}
    if len(dumps({"status": "success", "data": whole})) <= (whole_limit or limit):
        return whole
    ranked = _spread(records)
    shown: list[tuple[int, dict[str, Any]]] = []
    left: dict[str, int] = {}
    for i in ranked:
        left[str(views[i].get("state"))] = left.get(str(views[i].get("state")), 0) + 1
    note = {"rows": len(views), "by_state": left, "all": every}
    budget = limit - len(dumps({"status": "success", "data": {key: [], **rest, "folded": note}}))
    used = 0
    for i in ranked:
        if urgency(records[i])[0] >= 9:
            continue  # merged: nothing to do about it, counted in the note
        row = shorten(records[i], views[i])
        size = len(dumps(row)) + 1
        if used + size > budget - 24:  # the note's numbers shrink as rows move out of it: room for that
            break
        used += size
        shown.append((i, row))
        state = str(views[i].get("state"))
        left[state] -= 1
        if not left[state]:
            del left[state]
    note["rows"] = len(views) - len(shown)
    shown.sort(key=lambda pair: urgency(records[pair[0]]))
    return {key: [row for _, row in shown], **rest, "folded": note}


EACH = 5  # rows of each kind of trouble before any kind gets more


def _spread(records: Sequence[Any]) -> list[int]:
    """Indexes of the records in the order rows are given room: the first EACH of every
    kind (failed, attention, stopped, not merged, running longest, queued), then the
    rest by urgency. Twenty failures must not hide that others wait to be merged."""
    ranked = sorted(range(len(records)), key=lambda i: urgency(records[i]))
    first: list[int] = []
    later: list[int] = []
    taken: dict[int, int] = {}
    for i in ranked:
        kind = urgency(records[i])[0]
        taken[kind] = taken.get(kind, 0) + 1
        (first if taken[kind] <= EACH else later).append(i)
    return first + later


def screen_rows(reserved: int) -> int:
    """How many table rows fit on the terminal, below `reserved` lines of heading and notes."""
    import shutil

    return max(5, shutil.get_terminal_size((100, 24)).lines - reserved)


def fold_rows(records: Sequence[Any], views: list[dict[str, Any]],
              rows: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """For a text table: at most `rows` views, the most urgent first (in their order),
    and the count by state of those folded away."""
    heights = [height(view) for view in views]
    if sum(heights) <= rows:
        return views, {}
    keep: set[int] = set()
    used = 0
    for i in sorted(range(len(views)), key=lambda i: urgency(records[i])):
        if used + heights[i] > rows:
            break
        keep.add(i)
        used += heights[i]
    folded: dict[str, int] = {}
    for i, view in enumerate(views):
        if i not in keep:
            folded[str(view.get("state"))] = folded.get(str(view.get("state")), 0) + 1
    return [v for i, v in enumerate(views) if i in keep], folded


def height(view: dict[str, Any]) -> int:
    """Lines a row of the text table takes: its own, and one for each reason it needs
    attention (and a cluster's error) under it (commands/common.render_line)."""
    return 1 + len(view.get("attention") or []) + bool(view.get("cluster_error"))


def folded_line(folded: dict[str, int], more: str) -> str:
    total = sum(folded.values())
    parts = ", ".join(f"{n} {state}" for state, n in sorted(folded.items(), key=lambda kv: -kv[1]))
    return f"... {total} more row(s) folded ({parts}): {more}"
