"""The answer being written: a header and the text, streamed in through `MarkdownStream`.

Tokens are handed over with `feed()` (cheap, never waits). A writer task joins whatever
arrived since it last ran and writes it to Textual's `MarkdownStream`
(`Markdown.get_stream(self)`), which batches further while the screen is busy; the widget
(a `MarkdownView`) re-parses only the unfinished end on each append. When the answer ends,
the chat screen replaces this view by a `MessageView` holding the whole text, rendered once
more in full (so an unclosed code fence mid-stream cannot leave it wrong).

    view = StreamingView(label="demo")
    await conversation.add(view)
    view.feed("Hello")             # per token, never waits
    await view.end_stream()        # write what is pending, stop
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from textual.await_complete import AwaitComplete
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownStream

from mlxchat.text import sanitize
from mlxchat.ui.widgets.message import HeaderedMarkdown, MessageRecord

LEAD = 0.25
"""Seconds of growth kept in reserve below a streaming answer."""

RATE_WINDOW = 1.0
"""Seconds over which the growth rate is measured."""

MAX_LEAD_LINES = 30
"""Most blank lines kept in reserve."""


class StreamingView(HeaderedMarkdown):
    """An answer being written.

    Its height runs ahead of the text by the lines it is expected to grow in the next
    `LEAD` seconds (at the rate of the last `RATE_WINDOW`), so a fast stream lays the screen
    out a few times a second (each time it outgrows the room left), while a slow one keeps
    no blank lines.

    Reactives:
        status: Shown after the label: "waiting for the model…", "thinking…", "writing…",
            "stopping…".
    """

    def __init__(self, label: str = "assistant") -> None:
        """Create an empty answer.

        Args:
            label: The header text (the model's name).
        """
        super().__init__("", classes="-assistant")
        self.kind = "assistant"
        self.label = label
        self._received: list[str] = []
        self._pending: list[str] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._ending = False
        self._room = 0
        """The height (lines) reserved so far."""
        self._growth: deque[tuple[float, int]] = deque()
        """(time, lines) as the text grew over the last `RATE_WINDOW` seconds."""
        self.on_append: Callable[[], None] | None = None
        """Called after each append reaches the widget (e.g. to repaint a status bar in the
        same frame)."""

    @property
    def text(self) -> str:
        """Everything received so far (raw)."""
        if len(self._received) > 1:
            self._received[:] = ["".join(self._received)]
        return self._received[0] if self._received else ""

    def record(self) -> MessageRecord:
        """What it takes to show this (partial) answer again."""
        return MessageRecord("assistant", self.text, self.label, self.footer)

    def reserve_height(self, lines: int) -> int:
        """`lines`, plus room for what the text is expected to grow in the next `LEAD` s."""
        if lines <= self._room:
            return self._room
        now = time.monotonic()
        growth = self._growth
        growth.append((now, lines))
        while len(growth) > 1 and now - growth[0][0] > RATE_WINDOW:
            growth.popleft()
        since, before = growth[0]
        lead = 0
        if now - since >= LEAD:  # a rate measured over less would take a burst for a stream
            lead = min(MAX_LEAD_LINES, int((lines - before) / (now - since) * LEAD))
        self._room = lines + lead
        return self._room

    def append(self, markdown: str) -> AwaitComplete:
        """Add text at the end (what `MarkdownStream` calls), then call `on_append`."""
        done = super().append(markdown)
        if self.on_append is not None:
            self.on_append()
        return done

    def feed(self, text: str) -> None:
        """Take a streamed piece (cheap: call per token; never waits).

        Pieces that arrive while the screen is busy are joined and written to the
        `MarkdownStream` together by a writer task, so a burst of tokens costs one append.
        """
        if not text:
            return
        self._received.append(text)
        self._pending.append(text)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop())
        self._wake.set()

    async def write(self, text: str) -> None:
        """Take a streamed piece and let the writer run."""
        self.feed(text)
        await asyncio.sleep(0)

    async def _write_loop(self) -> None:
        stream = Markdown.get_stream(self)
        await asyncio.sleep(0)  # let the stream's task start (see _stop_stream)
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._pending:
                    text = "".join(self._pending)
                    self._pending.clear()
                    await stream.write(sanitize(text))
                if self._ending and not self._pending:
                    break
        finally:
            await _stop_stream(stream)

    async def end_stream(self) -> None:
        """Write what is pending, then stop streaming."""
        self._ending = True
        self._wake.set()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer


async def _stop_stream(stream: MarkdownStream) -> None:
    """Stop a stream; its task's own cancellation never leaks into the caller.

    `MarkdownStream.stop()` on a stream whose task has not started yet raises
    CancelledError in the caller (Textual 8.2); the writer lets the task start first, and
    this guard keeps such a CancelledError from looking like a cancel of the caller.
    """
    try:
        await stream.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
