"""The answer being written: a message whose text is appended token by token.

Tokens go straight into the message (`append`, cheap, never waits); the transcript showing
it parses the unfinished end at most twice a frame (`PARSE_INTERVAL`) and repaints the lines
that changed. When the answer ends, the chat screen replaces it by a `Message` holding the
whole text, rendered once more in full (so an unclosed code fence mid-stream cannot leave
it wrong).

    answer = StreamingMessage(label="demo")
    transcript.add(answer)
    answer.append("Hello")           # per token, never waits
    answer.flush()                   # show what is pending now (at the end)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mlxchat.ui.widgets.message import Message

PARSE_INTERVAL = 1 / 120
"""Seconds between two parses of a streaming text (text that comes in between waits for the
next): half of Textual's frame (it paints at most 60 times a second), so what a paint shows
was parsed at most half a frame before it."""


class StreamingMessage(Message):
    """An answer being written (the handle the chat screen streams into).

    Attributes:
        on_flush: Called after appended text was parsed and its lines repainted (e.g. to
            repaint a status bar in the same frame).
    """

    def __init__(self, label: str = "assistant") -> None:
        """Create an empty answer.

        Args:
            label: The header text (the model's name).
        """
        super().__init__("assistant", "", label=label)
        self.on_flush: Callable[[], None] | None = None
        self._flush_at: asyncio.Handle | None = None
        self._flushed = 0.0

    def append(self, text: str) -> None:
        """Add text at the end (cheap: call it per token).

        The unfinished end is parsed again and repainted now, or, when that was done less
        than `PARSE_INTERVAL` ago, once that much time has passed (for all the text that came
        meanwhile).
        """
        if not text:
            return
        self.body.append(text)
        if self._flush_at is not None or self.owner is None:
            return  # not shown yet: laid out when it is
        wait = self._flushed + PARSE_INTERVAL - time.monotonic()
        if wait <= 0:
            self.flush()
        else:
            self._flush_at = asyncio.get_running_loop().call_later(wait, self._flush_soon)

    def flush(self) -> None:
        """Parse and repaint the appended text now (what `append` does every `PARSE_INTERVAL`)."""
        self.cancel_flush()
        self._flushed = time.monotonic()
        if not self.body.stale or self.owner is None:
            return
        self.owner.message_changed(self)
        if self.on_flush is not None:
            self.on_flush()

    def cancel_flush(self) -> None:
        """Drop a pending flush (the message left the transcript)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None

    def _flush_soon(self) -> None:
        """Flush once what is ready to run now has run: text handed over while the loop was
        busy (a layout) is appended by then, and goes out in this flush, not the next one."""
        self._flush_at = asyncio.get_running_loop().call_soon(self.flush)


__all__ = ["PARSE_INTERVAL", "StreamingMessage"]
