"""What `land` reports: each worker that landed (in order, with its commit), each
that did not and why, and what the repairs cost."""
from __future__ import annotations

import time
from typing import Any

from envoy import usage
from envoy.landing.lane import Entry


class Report:
    def __init__(self, command: str | None, how: str, skipped: list[dict[str, Any]] | None = None) -> None:
        self.command, self.how, self.started = command, how, time.monotonic()
        self.skipped = skipped or []  # succeeded workers a plain `land` did not take, and why
        self.done: list[dict[str, Any]] = []
        self.fails: list[dict[str, Any]] = []
        self.repairs: list[dict[str, Any]] = []

    def landed(self, entry: Entry, into: str, how: str) -> None:
        self.done.append({"order": len(self.done) + 1, "name": entry.name, "branch": entry.record["branch"],
                          "into": into, "how": how, "sha": entry.commit, "repairs": entry.repairs})

    def failed(self, entry: Entry, into: str, error: str | None = None) -> None:
        item: dict[str, Any] = {"name": entry.name, "branch": entry.record["branch"], "into": into,
                                "reason": entry.verdict, "repairs": entry.repairs}
        if entry.files:
            item["files"] = entry.files
        if entry.output:
            item["output"] = entry.output
        if error:
            item["error"] = error
        self.fails.append(item)

    def data(self) -> dict[str, Any]:
        return {"check": self.command, "order": self.how, "landed": self.done, "failed": self.fails,
                "skipped": self.skipped,
                "repairs": self.repairs, "repair_cost_usd": usage.total_cost(self.repairs),
                "duration_s": round(time.monotonic() - self.started, 1)}
