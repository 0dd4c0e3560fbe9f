"""Markdown in one widget, drawn line by line through Textual's line API; text can stream in.

Textual's `Markdown` mounts a widget per block (a list item alone takes four), and Textual
lays out and styles every new widget: at 2,000 tokens a second that is hundreds of widgets
a second, and a long chat makes every update slower. `MarkdownView` is one plain `Widget`
that draws its lines itself (`render_line`), and holds its text once:

- the text is parsed with the same parser (markdown-it "gfm-like") and drawn by
  `markdown_render` (headings, inline styles, lists, quotes, tables, highlighted code);
- `append` only adds the text; within `PARSE_INTERVAL` (half a screen frame) the
  unfinished end is parsed again: blocks that later text cannot change are laid out once
  and kept, so a long answer costs the same per token as a short one, and a fast stream is
  parsed at most twice a frame;
- only the lines on screen are turned into strips, and those are cached;
- an update repaints only the lines that changed (a growing paragraph: its last line or
  two), and lays the screen out again only when the height changes (`reserve_height` lets a
  subclass keep blank lines below the text, so a fast stream moves everything on screen a
  few times a second, not every frame).

The text is kept as given (`text`); what is shown (`source`) has control characters escaped
(`mlxchat.text.sanitize`). Subclasses can put header lines above the text (`header_lines`).
A plain view shows its text as typed, without Markdown (a user's message).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Region, Size
from textual.strip import Strip

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
from mlxchat.ui.textual_compat import OneLayoutPass, RowsAlikeBelow

STRIP_CACHE = 400
"""Most lines kept as strips (a few screens' worth)."""

PARSE_INTERVAL = 1 / 120
"""Seconds between two parses of a streaming text (text that comes in between waits for the
next): half of Textual's frame (it paints at most 60 times a second), so what a paint shows
was parsed at most half a frame before it."""


class MarkdownView(OneLayoutPass, RowsAlikeBelow):
    """Markdown in one widget, drawn line by line; appended text is parsed twice a frame."""

    lines_stay_when_taller = True  # no vertical padding or borders (see `OneLayoutPass`)

    DEFAULT_CSS = """
    MarkdownView {
        height: auto;
        width: 1fr;
        padding: 0;
        overflow: hidden hidden;
    }
    """

    def __init__(
        self,
        text: str = "",
        *,
        plain: bool = False,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create the view.

        Args:
            text: The initial text (as written: it is escaped where unsafe when shown).
            plain: Show the text as typed: no Markdown, line breaks and spaces kept, a very
                long text cut.
        """
        super().__init__(id=id, classes=classes)
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
        self._complete_lines: list[Content] = []
        self._laid_out = 0
        """How many complete blocks `_complete_lines` holds."""
        self._tail_lines: list[Content] = []
        self._tail_dirty = True
        self._grown: int | None = None
        """The paragraph's former length, when the last parse only appended words to it."""
        self._strips: LRUCache[int, Strip] = LRUCache(STRIP_CACHE)
        """Strips by line number (an update drops those from its first changed line on)."""
        self._height = -1
        """The content height last given to the layout."""
        self._drawn: tuple[int, int, list[Content]] | None = None
        """(width, first line, lines from it on) as last drawn: what an update compares to."""
        self._flush_at: asyncio.Handle | None = None
        self._flushed = 0.0
        self.on_flush: Callable[[], None] | None = None
        """Called after appended text was parsed and its lines repainted (e.g. to repaint a
        status bar in the same frame)."""

    # ----- text -------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The whole text, as written."""
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    @property
    def source(self) -> str:
        """The text as shown: control characters escaped (a plain view: a long text cut)."""
        shown = sanitize(self.text)
        return clip_for_display(shown) if self.plain else shown

    def append(self, text: str) -> None:
        """Add text at the end (cheap: call it per token).

        The unfinished end is parsed again and repainted now, or, when that was done less
        than `PARSE_INTERVAL` ago, once that much time has passed (for all the text that came
        meanwhile).
        """
        if not text:
            return
        self._pieces.append(text)
        self._stale = True
        if self._flush_at is not None or not self.is_mounted:
            return  # a view not on screen yet is laid out when it is
        wait = self._flushed + PARSE_INTERVAL - time.monotonic()
        if wait <= 0:
            self.flush()
        else:
            self._flush_at = asyncio.get_running_loop().call_later(wait, self._flush_soon)

    def flush(self) -> None:
        """Parse and repaint the appended text now (what `append` does every `PARSE_INTERVAL`)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        self._flushed = time.monotonic()
        if not self._stale:
            return
        drawn = self._drawn
        if drawn is None or drawn[0] != self._width:
            self._stale_all()
        else:
            self._reparse_tail()
            self._repaint_from(drawn[1], drawn[2])
        if self.on_flush is not None:
            self.on_flush()

    def _flush_soon(self) -> None:
        """Flush once what is ready to run now has run: text handed over while the loop was
        busy (a layout) is appended by then, and goes out in this flush, not the next one."""
        self._flush_at = asyncio.get_running_loop().call_soon(self.flush)

    def on_unmount(self) -> None:
        """Stop a pending flush."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None

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

    async def prepare(self, width: int) -> None:
        """Lay the text out for `width` in a worker thread (before mounting a long text).

        Parsing and laying out a long answer takes a while; done here, the event loop
        keeps painting meanwhile. Only call it on a view that is not mounted yet.
        """
        await asyncio.to_thread(self._lay_out, max(width, 8))

    # ----- repainting -------------------------------------------------------------------------
    def _stale_all(self) -> None:
        """Draw everything again (laid out again at the next refresh)."""
        self._strips.clear()
        self._drawn = None
        self.refresh(layout=True)

    def _remember_drawn(self) -> None:
        """Keep the tail's lines as drawn: the next update repaints only what differs."""
        self._drawn = (self._width, self._tail_line(), self._tail_lines)

    def _repaint_from(self, first: int, before: Sequence[Content]) -> None:
        """Repaint the lines from line `first` on that differ from `before`, or lay out again.

        With a new height the screen is laid out again; otherwise only the changed lines
        are repainted and the others keep their strips.
        """
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
        self._remember_drawn()
        height = self.reserve_height(self._line_count()) if self.is_mounted else -1
        # the lines below `end` were blank before and are blank now
        changed = Region(0, start, self._width, max(1, end - start))
        if height < self._height or not self.is_mounted:
            self.refresh(layout=True)
        elif height > self._height:  # taller: the other lines stay (`lines_stay_when_taller`)
            self.refresh(changed, layout=True)
        elif start < end:
            self.refresh(changed)

    def forget_header(self) -> None:
        """The header changed: drop the cached strips and lay out again."""
        self._stale_all()

    def repaint_lines(self, start: int, end: int) -> None:
        """Draw lines `start` to `end` (not included) again: they changed, not the height."""
        for y in range(start, end):
            self._strips.discard(y)
        self.refresh(Region(0, start, max(self._width, 1), end - start))

    def notify_style_update(self) -> None:
        """Theme or styles changed: drop cached strips."""
        self._strips.clear()
        super().notify_style_update()

    # ----- lines ------------------------------------------------------------------------------
    def header_lines(self, width: int) -> list[Content]:
        """Lines drawn above the text (none here; subclasses add a header)."""
        return []

    def _lay_out(self, width: int) -> None:
        """Bring the complete lines and the tail lines up to date for `width`.

        Text appended since the last flush is parsed here only when every line is drawn
        anew (not on screen yet, nothing drawn, or a new width): otherwise a layout or a
        paint in between would show it on some rows and leave others as they were; the
        flush parses it and repaints the lines that changed.
        """
        if self._stale and (not self.is_mounted or self._drawn is None or width != self._width):
            self._reparse_tail()
        if width != self._width:
            self._width = width
            self._grown = None
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

    def body_lines(self, width: int) -> list[Content]:
        """Every line of the text at `width` (for tests and copying)."""
        if self._stale and self.is_mounted:
            self.flush()
        self._lay_out(width)
        return [*self._complete_lines, *self._tail_lines]

    def rendered_text(self, width: int = 80) -> str:
        """The text as drawn (plain), header included."""
        lines = [*self.header_lines(width), *self.body_lines(width)]
        return "\n".join(line.plain for line in lines)

    def _tail_line(self) -> int:
        """The line where the tail begins (as last laid out)."""
        return len(self.header_lines(self._width)) + len(self._complete_lines)

    def _lines_from(self, y: int) -> list[Content]:
        """The text's lines from line `y` on (as last laid out)."""
        index = y - len(self.header_lines(self._width))
        return [*self._complete_lines[index:], *self._tail_lines]

    def _line_count(self) -> int:
        """Header, complete and tail lines (as last laid out)."""
        return self._tail_line() + len(self._tail_lines)

    def reserve_height(self, lines: int) -> int:
        """The height for `lines` lines of text (subclasses may keep blank lines below)."""
        return lines

    def rows_alike_from(self) -> int | None:
        """The blank rows below the text (kept by `reserve_height`) all look the same."""
        gutter = self.styles.gutter
        if gutter.bottom:
            return None
        self._lay_out(max(self.size.width, 8))
        return gutter.top + self._line_count()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Header, complete and tail lines at `width` (see `reserve_height`)."""
        width = max(width, 8)
        self._lay_out(width)
        self._remember_drawn()
        self._height = self.reserve_height(self._line_count())
        return self._height

    def render_line(self, y: int) -> Strip:
        """One line: from the strip cache, else drawn and kept."""
        width = max(self.size.width, 8)
        self._lay_out(width)
        if (strip := self._strips.get(y)) is not None:
            return strip
        base = self.visual_style
        header = self.header_lines(width)
        index = y - len(header)
        complete = len(self._complete_lines)
        if y < len(header):
            line = header[y]
        elif index < complete:
            line = self._complete_lines[index]
        elif index - complete < len(self._tail_lines):
            line = self._tail_lines[index - complete]
        else:
            return Strip.blank(width, base.rich_style)
        strip = Strip(line.render_segments(base), line.cell_length).extend_cell_length(
            width, base.rich_style
        )
        self._strips.set(y, strip)
        return strip
