"""`watch` on a terminal: a full-screen live view drawn with curses.

Totals on top, a row per worker (state, elapsed, cost, commits, attention, last
action), the queue below. It redraws by itself when something changes (and
every second while a worker runs, for the elapsed times), on resize, and after
a key. Keys open a pager (results, diff, log tail) or act through the CLI
(stop, resume, land), each confirmed first. curses.wrapper gives the terminal
back as it found it on `q`, Ctrl-C or an error.
"""
from __future__ import annotations

import curses
import json
import os
import subprocess
import time
from typing import Any

from envoy import agent, output, usage
from envoy.watching.fleet import ENDED, Fleet, attention, elapsed
from envoy.watching.pager import ESC, Pager
from envoy.worker.queue import queue_positions
from envoy.worker.record import Record

TICK_MS = 40  # a change is on screen within ~one tick (well under 100 ms), idle costs a stat per tick
HELP = "↑/↓ select  r results  d diff  l log  s stop  R resume  L land  q quit"


class Screen:
    def __init__(self, stdscr: Any, fleet: Fleet, cli: list[str], bell: bool) -> None:
        self.scr = stdscr
        self.fleet = fleet
        self.cli = cli  # this same envoy, for the verbs the keys run
        self.bell = bell
        self.selected = 0
        self.pager: Pager | None = None
        self.top = 0
        self.message = ""
        self.seen: dict[str, str] = {}
        self.drawn_second = -1

    # -- the loop -------------------------------------------------------
    def run(self) -> int:
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        self.scr.timeout(TICK_MS)
        self.scr.keypad(True)
        dirty = True
        while True:
            if self.fleet.poll():
                dirty = True
                self._announce_ends()
            second = int(time.time())
            if dirty or (second != self.drawn_second and self._any_running()):
                self.draw()
                self.drawn_second, dirty = second, False
            key = self.scr.getch()
            if key == -1:
                continue
            dirty = True
            if key == curses.KEY_RESIZE:
                curses.update_lines_cols()
                self.scr.clear()
                continue
            if self.pager is not None:
                if not self.pager.key(key, self.scr.getmaxyx()[0]):
                    self.pager = None
            elif key in (ord("q"), ord("Q")):
                return 0
            else:
                self._list_key(key)

    def _any_running(self) -> bool:
        return any(r.get("state") in ("starting", "running") for r in self.fleet.records.values())

    def _announce_ends(self) -> None:
        """The terminal's own notification (OSC 9, then a bell) once per end seen here."""
        for name, record in self.fleet.records.items():
            state = str(record.get("state"))
            before = self.seen.get(name)
            self.seen[name] = state
            if self.bell and before is not None and before != state and state in ENDED:
                text = "".join(c for c in f"envoy: worker {name} {state}" if c.isprintable())
                try:
                    os.write(1, f"\x1b]9;{text}\x07".encode())
                    curses.beep()
                except OSError:
                    pass

    # -- the list ---------------------------------------------------------
    def rows(self) -> list[Record]:
        """Workers in display order: every worker, then the queue in its order."""
        records = self.fleet.ordered()
        positions = queue_positions(records)
        return ([r for r in records if r["name"] not in positions]
                + sorted((r for r in records if r["name"] in positions), key=lambda r: positions[r["name"]]))

    def draw(self) -> None:
        self.scr.erase()
        height, width = self.scr.getmaxyx()
        if self.pager is not None:
            self.pager.draw(self._put, height)
        else:
            self._draw_list(height, width)
        self.scr.refresh()

    def _put(self, y: int, text: str, attr: int = 0) -> None:
        height, width = self.scr.getmaxyx()
        if 0 <= y < height:
            try:
                self.scr.addnstr(y, 0, text.ljust(width), max(0, width - (1 if y == height - 1 else 0)), attr)
            except curses.error:
                pass

    def _draw_list(self, height: int, width: int) -> None:
        rows = self.rows()
        records = list(self.fleet.records.values())
        counts = {s: sum(r.get("state") == s for r in records) for s in ("starting", "running", "queued", "succeeded",
                                                                           "failed", "lost", "stopped")}
        total = usage.total_cost(records)
        head = (f"envoy watch  {counts['running'] + counts['starting']} running, {counts['queued']} queued, "
                f"{counts['succeeded']} succeeded, {counts['failed']} failed, {counts['lost']} lost"
                + (f", {counts['stopped']} stopped" if counts["stopped"] else "")
                + (f"  ${total:.4f}" if total else "") + time.strftime("  %H:%M:%S"))
        self._put(0, head, curses.A_BOLD)
        self._put(1, f"  {'WORKER':<22} {'STATE':<10} {'TIME':>7} {'COST':>8} {'COMMITS':>7} !  LAST ACTION",
                  curses.A_UNDERLINE)
        self.selected = max(0, min(self.selected, len(rows) - 1))
        lines = self._lines(rows)
        space = max(1, height - 3)
        at = next((i for i, (index, _) in enumerate(lines) if index == self.selected), 0)
        if at < self.top:
            self.top = at
        elif at >= self.top + space:
            self.top = at - space + 1
        self.top = max(0, min(self.top, max(0, len(lines) - space)))
        for y, (index, text) in enumerate(lines[self.top:self.top + space], start=2):
            self._put(y, text, curses.A_REVERSE if index == self.selected and rows else 0)
        if not rows:
            self._put(2, "  no workers (envoy parallel spawn --branch NAME --task \"...\")")
        if self.fleet.broken:
            self._put(height - 2, f"broken records: {', '.join(self.fleet.broken)} (envoy parallel status)")
        self._put(height - 1, self.message or HELP, curses.A_DIM)

    def _lines(self, rows: list[Record]) -> list[tuple[int, str]]:
        """(index into rows, or -1 for a heading; the text) of each line of the list."""
        lines: list[tuple[int, str]] = []
        positions = queue_positions(rows)
        for index, record in enumerate(rows):
            name = record["name"]
            if name in positions and positions[name] == 1:
                lines.append((-1, "  ── queue ──"))
            if name in positions:
                after = record.get("after") or []
                lines.append((index, f"  {positions[name]:>3}. {name:<22} queued" + (f"  after {', '.join(after)}"
                                                                                     if after else "")))
                continue
            cost = record.get("cost_usd")
            commits = self.fleet.commits.get(name)
            needs = attention(record)
            action = self.fleet.actions.get(name, "")
            if record.get("state") in ENDED and record.get("reason"):
                action = f"[{record['reason']}] " + (needs[0] if needs else action)
            lines.append((index, f"  {name[:22]:<22} {str(record.get('state')):<10} "
                                 f"{output.duration(elapsed(record)):>7} {'$%.4f' % cost if cost else '-':>8} "
                                 f"{'-' if commits is None else commits:>7} {'!' if needs else ' '}  {action}"))
        return lines

    def _list_key(self, key: int) -> None:
        rows = self.rows()
        self.message = ""
        if key in (curses.KEY_DOWN, ord("j")):
            self.selected = min(self.selected + 1, max(0, len(rows) - 1))
        elif key in (curses.KEY_UP, ord("k")):
            self.selected = max(self.selected - 1, 0)
        elif key == curses.KEY_NPAGE:
            self.selected = min(self.selected + 10, max(0, len(rows) - 1))
        elif key == curses.KEY_PPAGE:
            self.selected = max(self.selected - 10, 0)
        if not rows or key not in tuple(map(ord, "rdlsRL")):
            return
        name = rows[min(self.selected, len(rows) - 1)]["name"]
        if key == ord("r"):
            self._show(f"results of {name}", self._cli("results", "--worker", name, "--text"))
        elif key == ord("d"):
            self._show(f"diff of {name}", self._cli("diff", "--worker", name, "--text"))
        elif key == ord("l"):
            self._show_log(name)
        elif key == ord("s") and self.confirm(f"stop worker {name}? (y/n)"):
            self._show(f"envoy parallel stop --worker {name}", self._cli("stop", "--worker", name, "--json"))
        elif key == ord("L") and self.confirm(f"land worker {name}? (y/n)"):
            self._show(f"envoy parallel land --worker {name}", self._cli("land", "--worker", name, "--json"))
        elif key == ord("R"):
            task = self.ask(f"follow-up task for {name} (Enter: go on, Esc: cancel): ")
            if task and self.confirm(f"resume worker {name} with that task? (y/n)"):
                self._show(f"envoy parallel resume --worker {name}",
                           self._cli("resume", "--worker", name, "--task-file", "-", "--json", stdin=task))

    # -- prompts ------------------------------------------------------------
    def _prompt_line(self, text: str) -> None:
        height, _ = self.scr.getmaxyx()
        self._put(height - 1, text, curses.A_BOLD)
        self.scr.refresh()

    def confirm(self, question: str) -> bool:
        self._prompt_line(question)
        self.scr.timeout(-1)
        try:
            while True:
                key = self.scr.getch()
                if key in (ord("y"), ord("Y")):
                    return True
                if key in (ord("n"), ord("N"), ESC, ord("q")):
                    self.message = "cancelled"
                    return False
        finally:
            self.scr.timeout(TICK_MS)

    def ask(self, question: str) -> str | None:
        """A line of text typed at the bottom; None when cancelled (Esc)."""
        typed = ""
        self.scr.timeout(-1)
        try:
            while True:
                self._prompt_line(question + typed)
                key = self.scr.get_wch()
                if key in ("\n", "\r", curses.KEY_ENTER):
                    return typed.strip() or None
                if key in ("\x1b",):
                    self.message = "cancelled"
                    return None
                if key in ("\x7f", "\b", curses.KEY_BACKSPACE):
                    typed = typed[:-1]
                elif isinstance(key, str) and key.isprintable():
                    typed += key
        finally:
            self.scr.timeout(TICK_MS)

    # -- the pager -------------------------------------------------------------
    def _cli(self, verb: str, *args: str, stdin: str | None = None) -> list[str]:
        """Run `envoy parallel <verb> ...` (this same envoy) and its answer as lines;
        a JSON answer pretty-printed."""
        self._prompt_line(f"running envoy parallel {verb} ...")
        try:
            done = subprocess.run([*self.cli, "parallel", verb, *args], input=stdin, capture_output=True, text=True,
                                  timeout=600, cwd=str(self.fleet.ws.toplevel))
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [f"could not run envoy parallel {verb}: {exc}"]
        text = done.stdout
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
        return [*text.splitlines(), *done.stderr.splitlines(), f"(exit code {done.returncode})"]

    def _show(self, title: str, lines: list[str], at_end: bool = False) -> None:
        self.pager = Pager(title, lines, self.scr.getmaxyx()[0], at_end)

    def _show_log(self, name: str) -> None:
        record = self.fleet.records.get(name) or {}
        run = int(record.get("run") or 0)
        lines = agent.transcript(self.fleet.state.run_file(name, run, "jsonl")) if run else []
        self._show(f"log of {name} (run {run})", lines[-2000:] or ["(no transcript yet)"], at_end=True)


def watch(fleet: Fleet, cli: list[str], bell: bool) -> int:
    os.environ.setdefault("ESCDELAY", "25")  # Esc answers at once, not after curses' default 1 s
    for frozen in ("LINES", "COLUMNS"):  # exported, they fix curses' idea of the size: resizes go unseen
        os.environ.pop(frozen, None)
    code: int = curses.wrapper(lambda stdscr: Screen(stdscr, fleet, cli, bell).run())
    return code
