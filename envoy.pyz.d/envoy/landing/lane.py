"""The speculative landing queue behind `envoy parallel land`, for one target branch.

Zuul's gating on one machine: candidate i is merged (`git merge-tree`, no
checkout) on top of candidates 1..i-1 and its check runs in a scratch worktree
holding that merge, up to `width` checks at once. The target moves only when
the head of the queue passed, by compare-and-swap to exactly the commit whose
tree was checked (bors' rule). A failure drops out and only the candidates
after it are rebuilt; a target that moved under us gets everything rebuilt on
its new tip, never overwritten.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from envoy import files, output
from envoy.errors import EnvoyError
from envoy.landing import merging
from envoy.landing.scratch import Check, Scratch
from envoy.worker import locks
from envoy.worker.record import Record
from envoy.worker.workspace import Workspace

POLL = 0.02
TAIL_LINES = 30  # of a failed check's output, in the report and the repair task
TAIL_CHARS = 3000


@dataclass(eq=False)  # an entry is itself, whatever it holds
class Entry:
    """One candidate in a queue, and what is known about it on its current base."""
    record: Record
    tip: str  # the worker's branch tip being landed
    repairs: int = 0
    base: str | None = None  # the commit it was merged onto: the target tip or the entry ahead's result
    commit: str | None = None  # the merge result, the commit the target would move to
    verdict: str | None = None  # None while unknown; "passed", "conflict" or "check_failed"
    files: list[str] = field(default_factory=list)  # conflicting files
    output: str = ""  # the end of a failed check's output
    check: Check | None = None
    predicted: list[str] | None = None  # --dry-run: files it would conflict in with the target
    clashes: list[str] = field(default_factory=list)  # --dry-run: the other candidates it conflicts with

    @property
    def name(self) -> str:
        return str(self.record["name"])


Landed = Callable[[Entry, str], None]  # (entry, how: merge | fast-forward | already)
Failed = Callable[[Entry], None]


class Lane:
    """The queue of candidates for one target branch."""

    def __init__(self, ws: Workspace, into: str, check: str | None, width: int, scratch: Scratch,
                 landed: Landed, failed: Failed) -> None:
        self.ws, self.into, self.command, self.width, self.scratch = ws, into, check, max(1, width), scratch
        self.on_landed, self.on_failed = landed, failed
        self.queue: list[Entry] = []
        self.tip = self._target()

    def _target(self) -> str:
        tip = self.ws.git.resolve_commit(f"refs/heads/{self.into}")
        if tip is None:
            raise EnvoyError("not_found", f"branch {self.into} was deleted while landing", "re-create it and retry")
        return tip

    def step(self) -> bool:
        """Build, collect verdicts, settle the head; False once the queue is empty."""
        self._build()
        finished = self._collect()
        changed = self._settle()
        for check in finished:  # after the target moved: landing first, tidying after
            self.scratch.remove(check)
        if not changed and not finished:
            time.sleep(POLL)
        return bool(self.queue)

    def abort(self, reason: str, message: str) -> None:
        """The target refuses to move: everything still queued fails with that reason."""
        for entry in self.queue:
            self._reset(entry)
            entry.verdict, entry.output = reason, message
            self.on_failed(entry)
        self.queue = []

    # Each entry must sit on the chain base: the target tip, then the result of
    # each passing (or not yet failed) entry ahead of it.
    def _build(self) -> None:
        base = self.tip
        running = sum(1 for e in self.queue if e.check is not None)
        for entry in self.queue:
            if entry.base != base:
                running -= entry.check is not None
                self._reset(entry)
            if entry.base is None:
                if self.command and running >= self.width:
                    return
                self._merge(entry, base)
                if entry.verdict is None:
                    if self.command:
                        output.progress(f"{entry.name}: checking on {self.into} + {self._ahead(entry)}")
                        entry.check = self.scratch.start(str(entry.commit), self.command)
                        running += 1
                    else:
                        entry.verdict = "passed"
            if entry.verdict in ("conflict", "check_failed"):
                continue  # out of the chain: the ones after it build on `base`
            base = str(entry.commit)

    def _ahead(self, entry: Entry) -> str:
        names = []
        for e in self.queue:
            if e is entry:
                break
            if e.verdict not in ("conflict", "check_failed"):
                names.append(e.name)
        return " + ".join([*names, entry.name])

    def _merge(self, entry: Entry, base: str) -> None:
        git = self.ws.git
        entry.base = base
        if git.is_ancestor(entry.tip, base):
            entry.commit, entry.verdict = base, "passed"  # already in: nothing to check
            return
        try:
            entry.commit = merging.integrate(self.ws, entry.record, "merge", self.into, base, entry.tip)
        except EnvoyError as exc:
            if exc.kind != "merge_conflict":
                raise
            entry.verdict, entry.files = "conflict", list(exc.extra.get("files") or [])

    def _reset(self, entry: Entry) -> None:
        if entry.check is not None:
            self.scratch.stop(entry.check)
        entry.check, entry.base, entry.commit, entry.verdict, entry.files, entry.output = None, None, None, None, [], ""

    def _collect(self) -> list[Check]:
        """Record the verdicts of finished checks; their checks, to remove."""
        finished = []
        for entry in self.queue:
            check = entry.check
            code = None if check is None else check.poll()
            if check is None or code is None:
                continue
            entry.verdict = "passed" if code == 0 and not check.timed_out else "check_failed"
            if entry.verdict == "check_failed":
                entry.output = "\n".join(files.tail(check.log).rstrip().splitlines()[-TAIL_LINES:])[-TAIL_CHARS:]
                if check.timed_out:  # said last: the end of the output is what a reader (or a repair) sees
                    entry.output = (entry.output + f"\n[envoy: the check timed out after {check.timeout:g} s; "
                                    "it and every process it started were ended]").lstrip("\n")
            entry.check = None
            finished.append(check)
        return finished

    def _settle(self) -> bool:
        """Land or drop the head while its verdict is known; True if the queue changed."""
        changed = False
        while self.queue and self.queue[0].verdict is not None and self.queue[0].base == self.tip:
            if self.queue[0].verdict != "passed":
                self.on_failed(self.queue.pop(0))
            elif not self._move(self._passed_run()):
                return True
            changed = True
        return changed

    def _passed_run(self) -> list[Entry]:
        """The heads that passed, each on top of the one before: they land in one move."""
        run, base = [], self.tip
        for entry in self.queue:
            if entry.verdict != "passed" or entry.base != base:
                break
            run.append(entry)
            base = str(entry.commit)
        return run

    def _move(self, run: list[Entry]) -> bool:
        """Move the target to the last checked commit of `run` (each commit on the way
        passed too); False if the target moved meanwhile."""
        new = str(run[-1].commit)
        try:
            with locks.launch_mutex(self.ws.state, locks.BRANCHES):  # as merge: cleanup decides "merged" under it
                merging.record_and_move(self.ws, self.into, self.tip, new,
                                        [(e.record, e.tip, str(e.commit)) for e in run])
        except EnvoyError as exc:
            if new != self.tip:
                now = self._target()
                if now != self.tip:
                    output.progress(f"{self.into} moved to {now[:12]} meanwhile: rebuilding on it")
                    self.tip = now
                    return False
            # it did not move: a real refusal (local changes where it is checked out)
            self.abort("target_refused", exc.message)
            return True
        for entry in run:
            self.queue.pop(0)
            how = "already" if entry.commit == entry.base else "fast-forward" if entry.commit == entry.tip else "merge"
            self.on_landed(entry, how)
        self.tip = new
        return True

    def close(self) -> None:
        for entry in self.queue:
            self._reset(entry)
