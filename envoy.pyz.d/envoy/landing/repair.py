"""`envoy parallel land --repair`: a worker that conflicts or fails the check is
resumed in its own session and worktree (resume's machinery: same session id,
same cap) with a task naming the new target tip and what went wrong; when that
run succeeds with new commits, it re-enters the landing queue."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from envoy import executors, output
from envoy.errors import EnvoyError
from envoy.landing.lane import Entry
from envoy.worker import lookup
from envoy.worker.record import FINISHED
from envoy.worker.workspace import Workspace

if TYPE_CHECKING:
    from envoy.landing.report import Report
    from envoy.worker.record import Options

POLL = 0.25


class Repairs:
    """Workers resumed to repair what kept them from landing, and their re-entry."""

    def __init__(self, ws: Workspace, attempts: int, command: str | None, report: Report) -> None:
        self.ws, self.attempts, self.command, self.report = ws, attempts, command, report
        self.running: dict[str, tuple[Entry, str, float]] = {}  # name -> (entry, into, cost before)
        self.waiting: list[tuple[Entry, str]] = []  # (entry, into) waiting for a slot
        self.told: set[str] = set()
        self.looked = 0.0
        # The task asks for a merge and a run of the check, which a worker may not run otherwise.
        self.rules = ["Bash(git merge:*)"] + ([f"Bash({command})"] if command and "(" not in command
                                              and ")" not in command else [])

    def start(self, entry: Entry, into: str) -> bool:
        """Resume the worker on a repair task, as soon as the cap allows; False if it has no
        attempt left (the caller reports it)."""
        if entry.repairs >= self.attempts:
            return False
        self.waiting.append((entry, into))
        self._launch_waiting()
        return True

    def _launch_waiting(self) -> None:
        """Start the repairs waiting for a slot, first come first served."""
        for entry, into in list(self.waiting):
            tip = str(self.ws.git.resolve_commit(f"refs/heads/{into}"))  # the newest, to name in the task
            record = self.ws.state.read(entry.name) or entry.record
            options: Options = {**record.get("options", {})}
            allowed = list(options.get("allowed_tools") or [])
            options["allowed_tools"] = allowed + [r for r in self.rules if r not in allowed]
            try:
                # Where the worker runs: `into` at `tip` goes with the task, for a node to merge.
                executors.of(record).relaunch(self.ws, record, repair_task(entry, into, tip, self.command), options,
                                              branches={into: tip})
            except EnvoyError as exc:
                if exc.kind == "limit_exceeded":  # repairs run under the cap: wait for a slot
                    if entry.name not in self.told:
                        self.told.add(entry.name)
                        output.progress(f"{entry.name}: its repair waits for a free slot")
                    return
                self.waiting.remove((entry, into))
                self.report.failed(entry, into, error=f"could not start its repair: {exc.message}")
                continue
            self.waiting.remove((entry, into))
            entry.repairs += 1
            output.progress(f"{entry.name}: repairing (attempt {entry.repairs} of {self.attempts})")
            self.running[entry.name] = (entry, into, float(record.get("cost_usd") or 0))

    def busy(self, into: str) -> bool:
        return any(i == into for _, i, _ in self.running.values()) or any(i == into for _, i in self.waiting)

    def collect(self, into: str) -> list[Entry]:
        """Repaired workers of this target, back in the queue with their new tip."""
        if not (self.running or self.waiting) or time.monotonic() - self.looked < POLL:
            return []
        self.looked = time.monotonic()
        self._launch_waiting()
        back = []
        for name, (entry, target, cost) in list(self.running.items()):
            record = lookup.refresh(self.ws.state, self.ws.state.read(name) or entry.record)
            if target != into or record["state"] not in FINISHED:
                continue
            del self.running[name]
            spent = float(record.get("cost_usd") or 0) - cost
            tip = self.ws.git.resolve_commit(f"refs/heads/{record['branch']}")
            self.report.repairs.append({"name": name, "attempt": entry.repairs, "state": record["state"],
                                        "cost_usd": round(spent, 6)})
            if tip is not None and tip != entry.tip and not self.ws.git.is_ancestor(entry.tip, tip):
                # It rewrote its branch (reset, rebase): what it was asked to land is no longer
                # in it. Kept under a trash ref before anything moves, and not landed.
                kept = self.ws.git.keep_in_trash(name, entry.tip)
                why = (f"its repair rewrote branch {record['branch']} (its old tip {entry.tip[:12]} is not in the "
                       f"new one); not landed, the old tip is kept at {kept}")
                output.progress(f"{name}: {why}")
                self.report.failed(entry, into, error=why)
                continue
            if record["state"] != "succeeded" or tip is None or tip == entry.tip:
                why = (f"its repair run ended {record['state']}" if record["state"] != "succeeded"
                       else "its repair run committed nothing")
                output.progress(f"{name}: {why}")
                self.report.failed(entry, into, error=why)
                continue
            output.progress(f"{name}: repaired, back in the queue")
            back.append(Entry(record, tip, repairs=entry.repairs))
        return back


def repair_task(entry: Entry, into: str, tip: str, command: str | None) -> str:
    branch = entry.record["branch"]
    if entry.verdict == "conflict":
        problem = (f"Your branch {branch} conflicts with {into} (now at {tip}) in these files:\n"
                   + "".join(f"- {f}\n" for f in entry.files))
    elif entry.verdict == "check_failed":
        problem = (f"The merge of your branch {branch} into {into} (now at {tip}) fails the check `{command}`. "
                   f"The end of its output:\n```\n{entry.output}\n```\n")
    else:
        problem = f"Your branch {branch} could not land on {into} (now at {tip}): {entry.output}\n"
    steps = (f"Bring {into} into your branch (git merge {into}), resolve the conflicts and fix what fails"
             + (f", run the check `{command}` until it passes" if command else "")
             + ", and commit the result on your branch. Do not push, switch branches or rewrite history.")
    return f"envoy land could not land your work.\n\n{problem}\n{steps}\n"
