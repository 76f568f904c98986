"""A one-line progress bar on stderr for ``verbose`` fits: trees done, total, elapsed."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """Counts finished units of work and redraws one line; safe to advance from any thread.

    Parameters
    ----------
    total : int
        Units of work expected.
    label : str
        What is being done, e.g. ``"RandomForestClassifier: trees"``.
    stream : file, optional
        Where to draw; ``sys.stderr`` at construction time by default.
    min_interval : float
        Seconds between redraws (the final state is always drawn).
    """

    def __init__(self, total: int, label: str, stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._start = time.monotonic()
        self._last_draw = -float("inf")
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._closed = False
        self._drawn: tuple[int, float] | None = None
        self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done = min(self.done + n, self.total)
            self._draw(force=self.done == self.total)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._drawn is None or self._drawn[0] != self.done:
                self._draw(force=True)
            self._write("\n")

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and (self._closed or now - self._last_draw < self._min_interval):
            return
        self._last_draw = now
        self._drawn = (self.done, now)
        width = 30
        filled = width * self.done // self.total if self.total else width
        bar = "#" * filled + "." * (width - filled)
        self._write(f"\r{self.label} {self.done}/{self.total} [{bar}] {now - self._start:.1f}s")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not fail a fit
            pass
