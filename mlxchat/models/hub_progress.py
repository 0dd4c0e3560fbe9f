"""A Hub download's progress as `LoadProgress` events: bytes, speed, ETA and files.

`huggingface_hub` reports through tqdm bars (`tqdm_class=`); `progress_bar_class` makes a
stand-in class that feeds one `DownloadMeter` instead of drawing anything. Which bar is
which follows huggingface_hub 2.x (`_snapshot_download.py`): "Downloading bytes" counts the
bytes received, "Fetching N files" the files done; a bar of bytes made by `http_get` for one
file (`hf_hub_download`) counts that file's bytes. A cancelled download raises from
`update`, which stops every file at its next piece.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from mlxchat.engine.types import LoadProgress

DOWNLOAD_PHASE = "download"
"""`LoadProgress.phase` of download events."""

_EMIT_EVERY = 0.25  # seconds between events
_SPEED_WINDOW = 3.0  # seconds of history behind the speed


class DownloadCancelled(Exception):
    """Raised inside huggingface_hub when the user cancelled the download."""


class DownloadMeter:
    """Counts a download's bytes and files and emits throttled `LoadProgress` events."""

    def __init__(
        self,
        name: str,
        total: int,
        files: int,
        on_progress: Callable[[LoadProgress], None] | None,
        cancelled: Callable[[], bool] | None,
    ) -> None:
        self.name, self.total, self.files = name, total, files
        self.on_progress, self.cancelled = on_progress, cancelled
        self.done = 0
        self.files_done = 0
        self._ours = 0  # files fetched by hub_fetch.py
        self._theirs = 0  # files huggingface_hub has done (linking ours counts too)
        self.was_cancelled = False
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int]] = deque()
        self._last_emit = 0.0

    def start(self, already: int = 0) -> None:
        """Begin with `already` bytes in the cache (a resumed or partly cached download)."""
        self.done = already
        self._samples.append((time.monotonic(), already))
        self._emit(force=True)

    def add(self, n: float) -> None:
        """`n` more bytes arrived (negative: bytes dropped to be fetched again)."""
        self._check_cancel()
        with self._lock:
            self.done = max(0, self.done + int(n))
        self._emit()

    def file_done(self, n: float = 1) -> None:
        """huggingface_hub has `n` more files in place."""
        self._check_cancel()
        with self._lock:
            self._theirs += int(n)
            self.files_done = max(self._ours, self._theirs)
        self._emit(force=True)

    def fetched_file(self) -> None:
        """One more large file is downloaded (huggingface_hub then only links it)."""
        with self._lock:
            self._ours += 1
            self.files_done = max(self._ours, self._theirs)
        self._emit(force=True)

    def finish(self, ok: bool) -> None:
        """The last event; `ok`: every file is there."""
        if ok:
            self.done, self.files_done = self.total, self.files
        self._emit(force=True)

    @property
    def speed(self) -> float:
        """Bytes per second over the last few seconds."""
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def message(self) -> str:
        """One line: "4.5/10.0 MB · 2.1 MB/s · ETA 3 s · 1/3 files"."""
        speed = self.speed
        if self.files_done == self.files and self.done >= self.total:
            return f"downloaded {_size(self.done, self.total)} · {self.files} files"
        parts = [_size(self.done, self.total)]
        if speed > 0:
            parts.append(f"{speed / 1e6:.1f} MB/s")
            left = max(0, self.total - self.done)
            parts.append(f"ETA {duration(left / speed)}")
        parts.append(f"{self.files_done}/{self.files} files")
        return " · ".join(parts)

    def _check_cancel(self) -> None:
        if self.cancelled is not None and self.cancelled():
            self.was_cancelled = True
            raise DownloadCancelled(f"download of {self.name} cancelled")

    def _emit(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            self._samples.append((now, self.done))
            while len(self._samples) > 2 and now - self._samples[0][0] > _SPEED_WINDOW:
                self._samples.popleft()
            if not force and now - self._last_emit < _EMIT_EVERY:
                return
            self._last_emit = now
            fraction = min(1.0, self.done / self.total) if self.total else None
            event = LoadProgress(self.name, self.message(), fraction, phase=DOWNLOAD_PHASE)
        if self.on_progress is not None:
            self.on_progress(event)


def progress_bar_class(meter: DownloadMeter) -> type:
    """A tqdm stand-in class whose bars all report to `meter`."""

    class Bar:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            desc = str(kwargs.get("desc") or "")
            self.n = kwargs.get("initial") or 0
            self.total = kwargs.get("total")
            self.unit = kwargs.get("unit", "it")
            if desc.startswith("Fetching"):
                self.kind = "files"
            elif desc == "Downloading bytes":
                self.kind = "bytes"
            elif desc.startswith("Reconstructing") or self.unit != "B":
                self.kind = ""  # the same bytes again, or something not counted
            else:
                self.kind = "bytes"  # one file's bar (hf_hub_download)

        def update(self, n: float | None = 1) -> None:
            self.n += n or 0
            if self.kind == "bytes":
                meter.add(n or 0)
            elif self.kind == "files":
                meter.file_done(n or 0)

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def close(self) -> None:
            return None

        def refresh(self) -> None:
            return None

        def set_description(self, *args: Any, **kwargs: Any) -> None:
            return None

        set_description_str = set_postfix_str = set_description

        @property
        def format_dict(self) -> dict[str, Any]:
            return {"rate": meter.speed}

    return Bar


def _size(done: int, total: int) -> str:
    scale, unit = (1e9, "GB") if total >= 1e9 else (1e6, "MB")
    return f"{done / scale:.1f}/{total / scale:.1f} {unit}"


def duration(seconds: float) -> str:
    """About how long, for people: "85 s", "7 min", "1.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
