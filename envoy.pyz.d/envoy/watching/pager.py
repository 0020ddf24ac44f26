"""The pager inside `watch`: a worker's results, diff, log tail or a verb's answer,
scrolled in place; `q` or Esc goes back to the list."""
from __future__ import annotations

import curses
from typing import Callable

HELP = "↑/↓ PgUp/PgDn g/G scroll  q/Esc back"
ESC = 27


class Pager:
    def __init__(self, title: str, lines: list[str], height: int, at_end: bool = False) -> None:
        self.title = title
        self.lines = [line.expandtabs(4) for line in lines]
        self.top = max(0, len(self.lines) - (height - 2)) if at_end else 0

    def draw(self, put: Callable[..., None], height: int) -> None:
        """Onto the screen through `put(y, text, attr)`: title, the visible lines, help."""
        space = max(1, height - 2)
        self.top = max(0, min(self.top, max(0, len(self.lines) - space)))
        shown = self.lines[self.top:self.top + space]
        put(0, f"{self.title}  [{self.top + 1}-{self.top + len(shown)}/{len(self.lines)}]", curses.A_BOLD)
        for y, line in enumerate(shown, start=1):
            put(y, "".join(c if c.isprintable() else "?" for c in line))
        put(height - 1, HELP, curses.A_DIM)

    def key(self, key: int, height: int) -> bool:
        """Act on `key`; False when the pager is closed."""
        step = {curses.KEY_DOWN: 1, ord("j"): 1, curses.KEY_UP: -1, ord("k"): -1, curses.KEY_NPAGE: height - 3,
                ord(" "): height - 3, curses.KEY_PPAGE: -(height - 3)}
        if key in (ord("q"), ESC):
            return False
        if key in step:
            self.top += step[key]
        elif key == ord("g"):
            self.top = 0
        elif key == ord("G"):
            self.top = len(self.lines)
        return True
