"""A small stderr progress bar (steps done, rate, ETA) for long CLI work."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from mtl_core.text.terminal import one_line, raw_stream
from mtl_core.text.units import step_rate


class ProgressBar:
    """Redraws one stderr line at most ``fps`` times a second; silent when not a terminal
    except for a final line, so logs stay short."""

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, fps: float = 8):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.min_dt = 1.0 / fps
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, done: int, extra: str = "") -> None:
        now = time.perf_counter()
        if done < self.total and now - self.last < self.min_dt:
            return
        self.last = now
        if not self.tty and done < self.total:
            return
        elapsed = now - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        width = 28
        filled = int(width * done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        eta_s = f"{eta:5.1f}s" if eta == eta else "  ?  "
        line = f"{self.label} [{bar}] {done}/{self.total} {step_rate(rate):>11} ETA {eta_s} {extra}"
        end = "\n" if done >= self.total else ""
        out = raw_stream(self.stream)  # the carriage return is ours; the text is escaped
        out.write(("\r" if self.tty else "") + one_line(line[:160]) + end)
        out.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
