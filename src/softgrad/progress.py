"""A one-line progress bar for long commands (``softgrad bench``, ``softgrad grade``)."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress", "duration"]


def duration(seconds: float) -> str:
    """``42 s`` under two minutes, else ``3 min 05 s``."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


class Progress:
    """A one-line progress bar on a stream (stderr), redrawn in place; silent when ``stream`` is None."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 28) -> None:
        self.total, self.done, self.stream, self.width = max(1, total), 0, stream, width
        self.start = time.perf_counter()

    def step(self, label: str, *, time_left: bool = False) -> None:
        """Count one finished step, described by ``label`` (and, with ``time_left``, the time still needed)."""
        self.done = min(self.total, self.done + 1)
        if self.stream is None:
            return
        if time_left and self.done < self.total:
            per_step = (time.perf_counter() - self.start) / self.done
            label += f"  (about {duration(per_step * (self.total - self.done))} left)"
        filled = round(self.width * self.done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}] {self.done}/{self.total} {time.perf_counter() - self.start:5.1f}s {label}"
        end = "\n" if self.done == self.total else ""
        if self.stream.isatty():
            self.stream.write("\r\x1b[2K" + line[:110] + end)
        else:  # a log file: one line per step, no control characters
            self.stream.write(line + "\n")
        self.stream.flush()
