"""Loading and download progress on stderr: a redrawn line on a terminal, else plain lines.

On a terminal every `LoadProgress` redraws one line (a bar while a download runs); when
stderr is a pipe or a file only downloads are reported, one line every few seconds, so logs
of `serve` or `generate 2>log` show that a big download is moving.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from mlxchat.text import sanitize

_LINE_EVERY = 2.0  # seconds between plain lines
_BAR = 20


class ProgressPrinter:
    """Writes `LoadProgress` events to a stream; call `clear()` when done."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.quiet = quiet
        self._drawn = False
        self._last_line = 0.0
        self._last_text = ""

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        download = getattr(event, "phase", "") == "download"
        pct = f"{event.fraction:4.0%}" if event.fraction is not None else ""
        if download and event.fraction is not None:
            filled = round(event.fraction * _BAR)
            pct = f"[{'#' * filled}{'.' * (_BAR - filled)}] {pct}"
        text = sanitize(f"{event.model}: {pct} {event.message}".replace("  ", " "), one_line=True)
        if self.tty:
            self.stream.write(f"\r\x1b[2K{text}"[:200])
            self.stream.flush()
            self._drawn = True
            return
        now = time.monotonic()
        finished = event.fraction is not None and event.fraction >= 1.0
        due = now - self._last_line >= _LINE_EVERY or finished or not self._last_text
        if download and due and text != self._last_text:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last_line, self._last_text = now, text

    def clear(self) -> None:
        """Erase the redrawn line (terminal only)."""
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False
