"""A `Markdown` widget that draws itself line by line and takes appends incrementally.

Textual's `Markdown` mounts a widget per block (a list item alone takes four), and Textual
lays out and styles every new widget: at 2,000 tokens a second that is hundreds of widgets
a second, far more than a terminal app can afford, and a long chat makes every update
slower. `MarkdownView` is a drop-in `Markdown` (same `update`, `append`, `source`, and it
works with `Markdown.get_stream()` / `MarkdownStream`) that stays one widget:

- the text is parsed with the same parser (markdown-it "gfm-like") and drawn by
  `markdown_render` (headings, inline styles, lists, quotes, tables, highlighted code);
- `append` re-parses only the unfinished end: blocks that later text cannot change are
  laid out once and kept, so a long answer costs the same per token as a short one;
- it uses Textual's line API (`render_line`): only the lines on screen are turned into
  strips, and those are cached;
- an append repaints only the lines that changed (a growing paragraph: its last line or
  two, not the whole paragraph); the screen is laid out again only when the height
  changes (`reserve_height` lets a subclass keep blank lines below the text, so that a
  fast stream moves everything on screen a few times a second, not every frame).

Subclasses can put header lines above the text (`header_lines`). A plain view shows its
text as typed, without Markdown (a user's message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from textual.await_complete import AwaitComplete
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.visual import Visual
from textual.widgets import Markdown

from mlxchat.ui.markdown_render import (
    LONG_FENCE,
    Block,
    layout_blocks,
    open_fence,
    parse_markdown,
    plain_document,
    split_complete,
)
from mlxchat.ui.textual_compat import OneLayoutPass

STRIP_CACHE = 400
"""Most lines kept as strips (a few screens' worth)."""


async def _done() -> None:
    """An already finished awaitable for `AwaitComplete`."""


class MarkdownView(Markdown, OneLayoutPass):
    """Markdown in one widget, drawn line by line; appends re-parse only the unfinished end."""

    DEFAULT_CSS = """
    MarkdownView {
        height: auto;
        width: 1fr;
        padding: 0;
        layout: vertical;
        overflow: hidden hidden;
    }
    """

    def __init__(
        self,
        markdown: str = "",
        *,
        plain: bool = False,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create the view.

        Args:
            markdown: The initial text (already safe to display).
            plain: Show the text as typed: no Markdown, line breaks and spaces kept.
        """
        super().__init__(markdown, id=id, classes=classes)
        self.plain = plain
        self._complete: list[Block] = []
        """Blocks that later text cannot change."""
        self._tail: list[Block] = []
        """The blocks after them (re-parsed on every append)."""
        self._tail_start = 0
        """Where the tail begins in the source."""
        self._tail_prefix = ""
        """A fence opening line put back before the tail after a long code block was cut."""
        self._unparsed = True
        """The text has not been parsed yet."""
        self._width = -1
        self._complete_lines: list[Content] = []
        self._laid_out = 0
        """How many complete blocks `_complete_lines` holds."""
        self._tail_lines: list[Content] = []
        self._tail_dirty = True
        self._strips: LRUCache[int, Strip] = LRUCache(STRIP_CACHE)
        """Strips by line number (an append drops those from its first changed line on)."""
        self._height = -1
        """The content height last given to the layout."""
        self._set_source(markdown)

    # ----- text -------------------------------------------------------------------------------
    def _set_source(self, markdown: str) -> None:
        """Take a new text; it is parsed when first needed (see `prepare`)."""
        self._source = markdown
        self._complete = []
        self._tail = []
        self._tail_start = 0
        self._tail_prefix = ""
        self._width = -1
        self._strips.clear()
        self._unparsed = True

    @property
    def source(self) -> str:
        """The whole text."""
        return self._source

    def _tail_source(self) -> str:
        return self._tail_prefix + self._source[self._tail_start :]

    def _reparse_tail(self) -> None:
        """Parse the unfinished end; move what became complete out of it."""
        self._unparsed = False
        self._tail_dirty = True
        if self.plain:
            self._tail = plain_document(self._source).blocks
            return
        tail = self._tail_source()
        split = split_complete(tail)
        if split.complete:
            self._complete.extend(split.complete)
            consumed = split.consumed - len(self._tail_prefix)
            if consumed >= 0:
                self._tail_start += consumed
                self._tail_prefix = ""
            tail = self._tail_source()
        fence = open_fence(tail)
        if fence is not None and fence[1] > LONG_FENCE:
            # a very long code block: its head becomes a complete (closed) block
            opener = fence[0] if fence[0].endswith("\n") else fence[0] + "\n"
            lines = tail.splitlines(keepends=True)
            keep = len(lines) - LONG_FENCE // 4
            head = "".join(lines[:keep])
            marker = opener.lstrip()[:3]
            self._complete.extend(parse_markdown(head + marker + "\n").blocks)
            self._tail_start += len(head) - len(self._tail_prefix)
            self._tail_prefix = opener
            tail = self._tail_source()
            split = split_complete(tail)
        self._tail = split.tail

    def update(self, markdown: str) -> AwaitComplete:
        """Replace the whole text."""
        if markdown != self._source:
            self._set_source(markdown)
            self._changed()
        return AwaitComplete(_done())

    def append(self, markdown: str) -> AwaitComplete:
        """Add text at the end (only the unfinished end is parsed again)."""
        if markdown:
            laid_out = self._width > 0 and not self._unparsed
            first = self._tail_line() if laid_out else None
            before = self._tail_lines if laid_out else []
            self._source += markdown
            self._reparse_tail()
            self._changed(first, before)
        return AwaitComplete(_done())

    async def prepare(self, width: int) -> None:
        """Lay the text out for `width` in a worker thread (before mounting a long text).

        Parsing and laying out a long answer takes a while; done here, the event loop
        keeps painting meanwhile. Only call it on a view that is not mounted yet.
        """
        await asyncio.to_thread(self._lay_out, max(width, 8))

    def _changed(self, first: int | None = None, before: Sequence[Content] = ()) -> None:
        """Repaint what changed from line `first` on, or lay out again.

        `before` holds the lines that were drawn from `first` on: lines that are still the
        same keep their strips and are not repainted. With no `first`, or when the height
        changed, the screen is laid out again.
        """
        if first is None:
            self._strips.clear()
            self.refresh(layout=True)
            return
        self._lay_out(self._width)
        after = self._lines_from(first)
        same = 0
        for old, new in zip(before, after, strict=False):
            if old.plain != new.plain or old.spans != new.spans:
                break
            same += 1
        start, end = first + same, first + max(len(before), len(after))
        for y in range(start, end):
            self._strips.discard(y)
        if not self.is_mounted or self.reserve_height(self._line_count()) != self._height:
            self.refresh(layout=True)
        elif start < end:
            self.refresh(Region(0, start, self._width, max(1, self._height - start)))

    # ----- lines ------------------------------------------------------------------------------
    def header_lines(self, width: int) -> list[Content]:
        """Lines drawn above the text (none here; subclasses add a header)."""
        return []

    def _header(self, width: int) -> list[Content]:
        return self.header_lines(width)

    def _lay_out(self, width: int) -> None:
        """Bring the complete lines and the tail lines up to date for `width`."""
        if self._unparsed:
            self._reparse_tail()
        if width != self._width:
            self._width = width
            self._complete_lines = []
            self._laid_out = 0
            self._strips.clear()
            self._tail_dirty = True
        if self._laid_out < len(self._complete):
            new = layout_blocks(self._complete[self._laid_out :], width)
            if self._complete_lines and new:
                self._complete_lines.append(Content(""))
            self._complete_lines.extend(new)
            self._laid_out = len(self._complete)
            self._tail_dirty = True
        if self._tail_dirty:
            lines = layout_blocks(self._tail, width) if self._tail else []
            if lines and self._complete_lines:
                lines = [Content(""), *lines]
            self._tail_lines = lines
            self._tail_dirty = False

    def body_lines(self, width: int) -> list[Content]:
        """Every line of the text at `width` (for tests and copying)."""
        self._lay_out(width)
        return [*self._complete_lines, *self._tail_lines]

    def rendered_text(self, width: int = 80) -> str:
        """The text as drawn (plain), header included."""
        return "\n".join(line.plain for line in [*self._header(width), *self.body_lines(width)])

    def _tail_line(self) -> int:
        """The line where the tail begins (as last laid out)."""
        return len(self._header(self._width)) + len(self._complete_lines)

    def _lines_from(self, y: int) -> list[Content]:
        """The text's lines from line `y` on (as last laid out)."""
        index = y - len(self._header(self._width))
        return [*self._complete_lines[index:], *self._tail_lines]

    def _line_count(self) -> int:
        """Header, complete and tail lines (as last laid out)."""
        return self._tail_line() + len(self._tail_lines)

    def reserve_height(self, lines: int) -> int:
        """The height for `lines` lines of text (subclasses may keep blank lines below)."""
        return lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Header, complete and tail lines at `width` (see `reserve_height`)."""
        width = max(width, 8)
        self._lay_out(width)
        self._height = self.reserve_height(self._line_count())
        return self._height

    def render_line(self, y: int) -> Strip:
        """One line: from the strip cache, else drawn and kept."""
        width = max(self.size.width, 8)
        self._lay_out(width)
        if (strip := self._strips.get(y)) is not None:
            return strip
        header = self._header(width)
        if y < len(header):
            line = header[y]
        else:
            index = y - len(header)
            complete = len(self._complete_lines)
            if index < complete:
                line = self._complete_lines[index]
            elif index - complete < len(self._tail_lines):
                line = self._tail_lines[index - complete]
            else:
                return Strip.blank(width, self.visual_style.rich_style)
        strips = Visual.to_strips(self, line, width, 1, self.visual_style)
        strip = strips[0] if strips else Strip.blank(width, self.visual_style.rich_style)
        self._strips.set(y, strip)
        return strip

    def forget_header(self) -> None:
        """The header changed: drop its cached strips and repaint."""
        self._strips.clear()
        self.refresh(layout=True)

    def notify_style_update(self) -> None:
        """Theme or styles changed: drop cached strips."""
        self._strips.clear()
        super().notify_style_update()
