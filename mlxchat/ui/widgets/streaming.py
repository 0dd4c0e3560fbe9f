"""The answer being written: a header and the text, appended token by token.

Tokens go straight into the view (`append`, cheap, never waits): the view holds the text
once, parses its unfinished end at most twice a frame, and repaints the lines that changed.
When the answer ends, the chat screen replaces this view by a `MessageView` holding the
whole text, rendered once more in full (so an unclosed code fence mid-stream cannot leave
it wrong).

    view = StreamingView(label="demo")
    await conversation.add(view)
    view.append("Hello")           # per token, never waits
    view.flush()                   # show what is pending now (at the end)
"""

from __future__ import annotations

import time
from collections import deque

from textual.widget import Widget

from mlxchat.ui.widgets.message import HeaderedMarkdown

LEAD = 0.25
"""Seconds of growth kept in reserve below a streaming answer."""

RATE_WINDOW = 1.0
"""Seconds over which the growth rate is measured."""

MAX_LEAD_LINES = 30
"""Most blank lines kept in reserve."""

LINES_IN_SIGHT = 3
"""Lines of the text that stay in sight above the room when it fills the view (a room
taller than the view would show only blank lines after each layout)."""

MIN_SPAN = 0.05
"""Seconds of growth needed before a rate is trusted (less may be a burst, not a stream)."""


class StreamingView(HeaderedMarkdown):
    """An answer being written.

    Its height runs ahead of the text by the lines it is expected to grow in the next
    `LEAD` seconds (at the rate of the last `RATE_WINDOW`), so a fast stream lays the screen
    out a few times a second (each time it outgrows the room left), while a slow one keeps
    no blank lines. The room is at most `MAX_LEAD_LINES`, and leaves `LINES_IN_SIGHT` lines
    of the text in the view.

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
        self._room = 0
        """The height (lines) reserved so far."""
        self._growth: deque[tuple[float, int]] = deque()
        """(time, lines) as the text grew over the last `RATE_WINDOW` seconds."""

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
        if now - since >= MIN_SPAN:
            expected = int((lines - before) / (now - since) * LEAD)
            lead = max(0, min(self._most_room(), expected))
        self._room = lines + lead
        return self._room

    def _most_room(self) -> int:
        """`MAX_LEAD_LINES`, or fewer in a view too short to keep `LINES_IN_SIGHT` lines of
        the text in sight above them."""
        parent = self.parent
        if isinstance(parent, Widget) and parent.size.height:
            return min(MAX_LEAD_LINES, parent.scrollable_content_region.height - LINES_IN_SIGHT)
        return MAX_LEAD_LINES
