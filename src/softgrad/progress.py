"""A one-line progress bar for long commands (``softgrad bench``, ``softgrad grade``)."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """A one-line progress bar on a stream (stderr), redrawn in place; silent when ``stream`` is None."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 28) -> None:
        self.total, self.done, self.stream, self.width = max(1, total), 0, stream, width
        self.start = time.perf_counter()

    def step(self, label: str) -> None:
        """Count one finished step, described by ``label``."""
        self.done = min(self.total, self.done + 1)
        if self.stream is None:
            return
        filled = round(self.width * self.done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}] {self.done}/{self.total} {time.perf_counter() - self.start:5.1f}s {label}"
        end = "\n" if self.done == self.total else ""
        if self.stream.isatty():
            self.stream.write("\r\x1b[2K" + line[:110] + end)
        else:  # a log file: one line per step, no control characters
            self.stream.write(line + "\n")
        self.stream.flush()
