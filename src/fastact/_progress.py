"""The progress bar of the long-running commands (bench, tune, accuracy).

On a terminal it redraws one line in place; in a log (CI, a pipe) it writes a
line per tenth of the work, or per minute, so that logs stay readable. No
dependency.
"""

from __future__ import annotations

import sys
import time


def _fmt_time(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True, stream=None):
        self.total = max(total, 1)
        self.done = 0
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.monotonic()
        self.last_decile = -1
        self.last_line = self.t0

    def step(self, what: str = "", n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        frac = min(self.done / self.total, 1.0)
        elapsed = time.monotonic() - self.t0
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        line = (f"{self.label} [{bar}] {100 * frac:5.1f}%  {self.done}/{self.total}  "
                f"{_fmt_time(elapsed)} elapsed, {_fmt_time(eta)} left  {what}")
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160))
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            decile = int(frac * 10)
            now = time.monotonic()
            if decile == self.last_decile and now - self.last_line <= 60 and self.done < self.total:
                return
            self.last_decile, self.last_line = decile, now
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()
