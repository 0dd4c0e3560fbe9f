"""A message's text and its lines at a width: parsed once, the streaming end parsed again.

Not a widget: the transcript (`widgets.transcript.Transcript`) holds one per message and
draws their lines itself. What it does, per message:

- the text is parsed with the same parser (markdown-it "gfm-like") and drawn by
  `markdown_render` (headings, inline styles, lists, quotes, tables, highlighted code);
- `append` only adds the text; `update` parses the unfinished end again: blocks that later
  text cannot change are laid out once and kept, so a long answer costs the same per token
  as a short one (a paragraph that only grew by words is wrapped again from its last line);
- `update` says from which line on the lines may differ, so the transcript repaints only
  those (a growing paragraph: its last line or two).

The text is kept as given (`text`); what is shown (`source`) has control characters escaped
(`mlxchat.text.sanitize`). A plain body shows its text as typed, without Markdown (a user's
message), and a very long one cut.

    body = MarkdownBody()
    body.append("Hello **wor")          # per token: cheap
    first = body.update(width=60)       # parse the end, lay out; lines from `first` changed
    body.line_count, body.line(0)
"""

from __future__ import annotations

import asyncio

from textual.content import Content

from mlxchat.text import sanitize
from mlxchat.ui.display import clip_for_display
from mlxchat.ui.markdown_render import (
    LONG_FENCE,
    Block,
    extend_paragraph,
    layout_blocks,
    line_end,
    open_fence,
    parse_markdown,
    plain_document,
    rewrap_grown,
    split_complete,
)

MIN_WIDTH = 8
"""The narrowest width text is laid out at."""


class MarkdownBody:
    """Markdown text and its lines at one width; appended text is parsed on `update`."""

    def __init__(self, text: str = "", *, plain: bool = False) -> None:
        """Create the body.

        Args:
            text: The initial text (as written: it is escaped where unsafe when shown).
            plain: Show the text as typed: no Markdown, line breaks and spaces kept, a very
                long text cut.
        """
        self.plain = plain
        self._pieces: list[str] = [text] if text else []
        """The text, in the pieces appended since it was last joined."""
        self._complete: list[Block] = []
        """Blocks that later text cannot change."""
        self._tail: list[Block] = []
        """The blocks after them (parsed again when text is appended)."""
        self._tail_start = 0
        """Where the tail begins in the text."""
        self._tail_prefix = ""
        """A fence opening line put back before the tail after a long code block was cut."""
        self._stale = True
        """Text arrived that is not parsed yet."""
        self._parsed = 0
        """How much of the text was parsed."""
        self._width = -1
        """The width the lines are laid out at (-1: not laid out)."""
        self._complete_lines: list[Content] = []
        self._laid_out = 0
        """How many complete blocks `_complete_lines` holds."""
        self._tail_lines: list[Content] = []
        self._tail_dirty = True
        self._grown: int | None = None
        """The paragraph's former length, when the last parse only appended words to it."""

    # ----- text -------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The whole text, as written."""
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    @property
    def source(self) -> str:
        """The text as shown: control characters escaped (a plain body: a long text cut)."""
        shown = sanitize(self.text)
        return clip_for_display(shown) if self.plain else shown

    @property
    def stale(self) -> bool:
        """Whether text was appended since the last `update`."""
        return self._stale

    def append(self, text: str) -> None:
        """Add text at the end (cheap: call it per token; `update` parses it)."""
        if text:
            self._pieces.append(text)
            self._stale = True

    # ----- lines ------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        """The width the lines are laid out at (-1 before the first `update`)."""
        return self._width

    @property
    def line_count(self) -> int:
        """How many lines the text takes (as last laid out)."""
        return len(self._complete_lines) + len(self._tail_lines)

    def line(self, index: int) -> Content:
        """Line `index` (as last laid out)."""
        complete = self._complete_lines
        if index < len(complete):
            return complete[index]
        return self._tail_lines[index - len(complete)]

    def lines(self, width: int) -> list[Content]:
        """Every line of the text at `width` (laid out first when needed)."""
        self.update(width)
        return [*self._complete_lines, *self._tail_lines]

    def laid_out(self, width: int) -> bool:
        """Whether the lines are up to date for `width` (no `update` needed)."""
        return self._width == max(width, MIN_WIDTH) and not self._stale

    def update(self, width: int) -> int:
        """Parse what was appended and lay the text out for `width`.

        Returns:
            The first line that may differ from the lines as they were before (0 when laid
            out anew at another width; `line_count` when nothing changed).
        """
        width = max(width, MIN_WIDTH)
        if width != self._width:
            if self._stale:
                self._reparse_tail()
            self._lay_out(width)
            return 0
        if not self._stale:
            self._lay_out(width)
            return self.line_count
        first = len(self._complete_lines)
        before = self._tail_lines
        self._reparse_tail()
        self._lay_out(width)
        same = 0
        for old, new in zip(before, self._lines_from(first), strict=False):
            if old.plain != new.plain or old.spans != new.spans:
                break
            same += 1
        return first + same

    async def prepare(self, width: int) -> None:
        """`update(width)` in a worker thread (for a long text not shown yet: the event loop
        keeps painting meanwhile)."""
        await asyncio.to_thread(self.update, width)

    def _lines_from(self, index: int) -> list[Content]:
        return [*self._complete_lines[index:], *self._tail_lines]

    # ----- parsing ----------------------------------------------------------------------------
    def _reparse_tail(self) -> None:
        """Parse the unfinished end; move what became complete out of it."""
        self._stale = False
        self._tail_dirty = True
        self._grown = None
        parsed, self._parsed = self._parsed, len(self.text)
        if self.plain:
            self._tail = plain_document(self.source).blocks
            return
        raw_tail = self.text[self._tail_start :]
        if len(self._tail) == 1 and not self._tail_prefix and parsed > self._tail_start:
            cut = parsed - self._tail_start  # what was parsed, and what came since
            grown = extend_paragraph(
                self._tail[0], sanitize(raw_tail[:cut]), sanitize(raw_tail[cut:])
            )
            if grown is not None:
                self._grown = len(self._tail[0].content)
                self._tail = [grown]
                return
        tail = self._tail_prefix + sanitize(raw_tail)
        split = split_complete(tail)
        if split.complete:
            self._complete.extend(split.complete)
            self._advance(raw_tail, tail[: split.consumed].count("\n"))
            raw_tail = self.text[self._tail_start :]
            tail = self._tail_prefix + sanitize(raw_tail)
        fence = open_fence(tail)
        if fence is not None and fence[1] > LONG_FENCE:
            # a very long code block: its head becomes a complete (closed) block
            opener = fence[0] if fence[0].endswith("\n") else fence[0] + "\n"
            keep = fence[1] + 1 - LONG_FENCE // 4  # lines, the opening one included
            head = tail[: line_end(tail, keep)]
            self._complete.extend(parse_markdown(head + opener.lstrip()[:3] + "\n").blocks)
            self._advance(raw_tail, keep)
            self._tail_prefix = opener
            tail = self._tail_prefix + sanitize(self.text[self._tail_start :])
            split = split_complete(tail)
        self._tail = split.tail

    def _advance(self, raw_tail: str, lines: int) -> None:
        """Move the tail's start past its first `lines` lines (the fence prefix included)."""
        if self._tail_prefix:
            lines -= 1
            if lines < 0:
                return
            self._tail_prefix = ""
        self._tail_start += line_end(raw_tail, lines)

    def _lay_out(self, width: int) -> None:
        """Bring the complete lines and the tail lines up to date for `width`."""
        if width != self._width:
            self._width = width
            self._grown = None
            self._complete_lines = []
            self._laid_out = 0
            self._tail_dirty = True
        if self._laid_out < len(self._complete):
            new = layout_blocks(self._complete[self._laid_out :], width)
            if self._complete_lines and new:
                self._complete_lines.append(Content(""))
            self._complete_lines.extend(new)
            self._laid_out = len(self._complete)
            self._tail_dirty = True
        if self._tail_dirty:
            lines = None
            if self._grown is not None and self._tail_lines:  # rewrap the last line only
                lines = rewrap_grown(self._tail_lines, self._grown, self._tail[0].content, width)
            if lines is None:
                lines = layout_blocks(self._tail, width) if self._tail else []
                if lines and self._complete_lines:
                    lines = [Content(""), *lines]
            self._tail_lines = lines
            self._tail_dirty = False
            self._grown = None


__all__ = ["MIN_WIDTH", "MarkdownBody"]
