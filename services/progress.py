"""Progress of the admin command line's long operations (`load-demo`, `rebuild`), on stderr: on a
terminal a bar redrawn in place with the rate and the time left; otherwise (a log, a pipe) a plain
line every `every` seconds, which logs keep readably."""

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR = 20  # characters
REDRAW = 0.1  # seconds between a terminal's redraws at most


class Progress:
    def __init__(self, total: int | None, unit: str, out: TextIO = sys.stderr, every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.unit, self.out, self.every, self.clock = total, unit, out, every, clock
        self.terminal = out.isatty()
        self.count = 0
        self.started = self.shown = clock()

    def advance(self, n: int) -> None:
        self.count += n
        now = self.clock()
        if now - self.shown >= (REDRAW if self.terminal else self.every):
            self._show(now)

    def finish(self) -> None:
        """The last state; on a terminal, the line is ended. Elsewhere the command's own summary follows."""
        if self.terminal:
            self._show(self.clock())
            self.out.write("\n")
            self.out.flush()

    def _show(self, now: float) -> None:
        self.shown = now
        elapsed = now - self.started
        rate = self.count / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.count}/{self.total} {self.unit}" if self.total else f"{self.count} {self.unit}",
                 f"{rate:,.0f} {self.unit}/s"]
        share = min(100, 100 * self.count // self.total) if self.total else None
        if self.total:
            parts.append(f"ETA {_duration(max(0, self.total - self.count) / rate) if rate else '?'}")
        if not self.terminal:
            if share is not None:
                parts[0] += f" ({share}%)"
            print(", ".join(parts), file=self.out, flush=True)
            return
        bar = "" if share is None else f"[{'#' * (share * BAR // 100)}{'-' * (BAR - share * BAR // 100)}] {share:3d}% "
        self.out.write(f"\r{bar}{', '.join(parts)}\x1b[K")  # from the line's start, clearing what the last one left
        self.out.flush()


def _duration(seconds: float) -> str:
    """1:30, 6:00:06"""
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"
