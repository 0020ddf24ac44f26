"""What `watch` shows, kept current incrementally: the records, each worker's last
action, its commits.

A tick costs one stat of the workers directory when nothing changed (every
record write replaces a file there, moving its mtime); then only the records
whose file changed are read again. Each running worker's transcript is read
from where it was last read (at most its last TAIL bytes), never whole. Liveness
(`lookup.refresh`: a worker whose supervisor died becomes `lost`) and commits
(one `git for-each-ref`, then a count only for branches that moved) are looked
at every few seconds, not every tick.
"""
from __future__ import annotations

import os
import time

from envoy.agent import last_action as last_action  # where it lives: the node reads it too (executors/node.py)
from envoy.errors import EnvoyError
from envoy.worker import lookup, on_end, queue
from envoy.worker.record import ACTIVE, Record
from envoy.worker.workspace import Workspace

TAIL = 64 * 1024  # bytes of a transcript read at most per look: the last action is at its end
REREAD = 5.0  # seconds: records are re-listed at least this often (a coarse mtime can hide a write)
LIVENESS = 2.0  # seconds between checks that running workers' supervisors live
COMMITS = 3.0  # seconds between looks at the workers' branch tips
ACTIONS = 0.5  # seconds between looks at running workers' transcripts (a stat each)
ENDED = ("succeeded", "failed", "lost", "stopped")  # `stopped`: issue 20's state


class Fleet:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.state = ws.state
        self.records: dict[str, Record] = {}
        self.broken: list[str] = []
        self.actions: dict[str, str] = {}
        self.commits: dict[str, int] = {}
        self._stamps: dict[str, tuple[int, int, int]] = {}  # record file: (mtime_ns, size, inode)
        self._logs: dict[str, tuple[str, int]] = {}  # name: (transcript path, bytes read)
        self._tips: dict[str, str] = {}
        self._dir_stamp: int | None = None
        self._listed = self._alive_checked = self._tips_checked = self._actions_checked = 0.0
        self.reads: dict[str, int] = {}  # how often each record was read from disk (tests and bench count them)

    # -- the records --------------------------------------------------
    def poll(self) -> set[str]:
        """Bring everything up to date; the names of workers whose row changed."""
        now = time.monotonic()
        changed = self._records(now)
        if now - self._alive_checked >= LIVENESS:
            self._alive_checked = now
            for name, record in list(self.records.items()):
                if record.get("state") in ACTIVE:
                    fresh = lookup.refresh(self.state, record)
                    if fresh.get("state") != record.get("state"):
                        self.records[name] = fresh
                        changed.add(name)
                else:
                    on_end.sweep(self.state, record)
            try:  # as `wait` does: a queue whose runner was killed still moves
                queue.dispatch_if_queued(self.ws.git, self.state, list(self.records.values()))
            except EnvoyError as exc:
                self.state.log(f"watch: starting queued workers: {exc.message}")
        if now - self._actions_checked >= ACTIONS:  # running workers' transcripts; a changed record's at once
            self._actions_checked = now
            changed |= self._actions({n for n, r in self.records.items() if r.get("state") in ACTIVE} | changed)
        elif changed:
            changed |= self._actions(changed)
        if now - self._tips_checked >= COMMITS:
            self._tips_checked = now
            changed |= self._commits()
        return changed

    def _records(self, now: float) -> set[str]:
        try:
            stamp = os.stat(self.state.workers).st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self._dir_stamp and now - self._listed < REREAD:
            return set()
        self._dir_stamp, self._listed = stamp, now
        changed: set[str] = set()
        seen: set[str] = set()
        broken: list[str] = []
        try:
            entries = list(os.scandir(self.state.workers))
        except FileNotFoundError:
            entries = []
        for entry in entries:
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            name = entry.name[:-len(".json")]
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            seen.add(name)
            if self._stamps.get(name) == key and name in self.records:
                continue
            try:
                record = self.state.read(name)
                self.reads[name] = self.reads.get(name, 0) + 1
            except EnvoyError:
                broken.append(name)
                self.records.pop(name, None)
                continue
            if record is None:
                continue
            self._stamps[name] = key
            self.records[name] = record
            changed.add(name)
        for name in list(self.records):
            if name not in seen:
                del self.records[name]
                self._stamps.pop(name, None)
                changed.add(name)
        self.broken = sorted(broken)  # never cached: a broken record is read again every scan
        return changed

    def ordered(self) -> list[Record]:
        return sorted(self.records.values(), key=lambda r: (r.get("created_at") or "", r.get("seq") or 0, r["name"]))

    # -- last actions -------------------------------------------------
    def _actions(self, names: set[str]) -> set[str]:
        changed = set()
        for name in names:
            record = self.records.get(name)
            if record is None:
                continue
            run = int(record.get("run") or 0)
            if not run:
                continue
            path = str(self.state.run_file(name, run, "jsonl"))
            known_path, done = self._logs.get(name, ("", 0))
            if known_path != path:
                done = 0
            try:
                size = os.stat(path).st_size
            except OSError:  # a remote worker's transcript comes back at its end: till then, its job log's
                remote = record.get("last_action") if record.get("executor") and record.get("state") in ACTIVE else None
                if isinstance(remote, str) and remote != self.actions.get(name):
                    self.actions[name] = remote
                    changed.add(name)
                continue
            if size == done and known_path == path:
                continue
            action = self._read_actions(path, max(done, size - TAIL), size)
            self._logs[name] = (path, size)
            if action is not None and action != self.actions.get(name):
                self.actions[name] = action
                changed.add(name)
        return changed

    @staticmethod
    def _read_actions(path: str, start: int, end: int) -> str | None:
        """The last action in bytes start..end of a transcript (whole lines only)."""
        try:
            with open(path, "rb") as f:
                f.seek(start)
                chunk = f.read(end - start)
        except OSError:
            return None
        for line in reversed(chunk.split(b"\n")):
            found = last_action(line) if line.strip() else None
            if found:
                return found
        return None

    # -- commits ------------------------------------------------------
    def _commits(self) -> set[str]:
        changed = set()
        left: dict[str, int] = {}
        for name, record in self.records.items():  # issue 16's record of what a finished worker left
            counts = record.get("left")
            counted = counts.get("commits") if isinstance(counts, dict) else None
            if isinstance(counted, int) and not isinstance(counted, bool):
                left[name] = counted
                if self.commits.get(name) != left[name]:
                    self.commits[name] = left[name]
                    changed.add(name)
        wanted = {n: r for n, r in self.records.items() if r.get("base_sha") and n not in left}
        if not wanted:
            return changed
        try:
            tips = self.ws.git.branch_tips()
            for name, record in wanted.items():
                tip = tips.get(record["branch"])
                if tip is None or self._tips.get(name) == tip:
                    continue
                self._tips[name] = tip
                count = self.ws.git.commit_count(str(record["base_sha"]), tip)
                if self.commits.get(name) != count:
                    self.commits[name] = count
                    changed.add(name)
        except EnvoyError:
            pass  # a branch removed meanwhile: counted again next time
        return changed


def attention(record: Record) -> list[str]:
    found = record.get("attention") or []  # issue 16's field; absent before it
    return [str(a) for a in found] if isinstance(found, list) else []


def elapsed(record: Record) -> float | None:
    return lookup.duration(record)
