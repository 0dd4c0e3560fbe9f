"""The conversation as one widget: every message a run of lines in one document.

`Transcript` is a `ScrollView` drawn through Textual's public line API, the way Textual's
own `Log` draws huge content: `render_line(y)` returns the document's line at `scroll_y + y`
as a cached `Strip`, `virtual_size` is the document's height, and a change repaints only
the lines it changed (`refresh_lines`). A message is its header line(s) (label and
numbers), its text laid out by `markdown_render` (see `MarkdownBody`), and a blank line.
However long the chat, a token costs the same: the answer being written parses only its
unfinished end and repaints only the lines that changed.

- The document starts at the view's top. Following the bottom is read from the scroll
  offset: a view at its end when lines arrive stays at the end; a view the user scrolled
  up stays where it is. Growing taller asks for no layout of the screen (only a new
  scrollbar does), and the scrollbar is drawn again only when its thumb moves.
- PageUp/PageDown jump a page at once (an animated scroll would draw the whole view for
  each of its frames).
- Lines are laid out again when the width changes. Messages far from the view (a resumed
  chat of thousands of messages) start with an estimated height and are laid out in the
  background, a few milliseconds at a time, nearest first; the view keeps its place
  meanwhile (what is in view is always laid out first).
- Text can be selected with the mouse across messages (`get_selection`); the selection is
  drawn highlighted, and Ctrl+C copies it (the screen's `copy_text`).
- A message cursor (Up/Down or k/j while the transcript has focus) highlights one message;
  keys act on it (`Transcript.Act`, handled by the chat screen).
- `find` highlights every hit of a text and moves between them (`find_next`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message as TextualMessage
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.selection import Selection
from textual.strip import Strip
from textual.style import Style
from textual.widget import Widget
from textual.widgets import Static

from mlxchat.text import sanitize
from mlxchat.ui.key_order import run_binding
from mlxchat.ui.widgets.markdown_body import MIN_WIDTH
from mlxchat.ui.widgets.message import BAR_STYLES, Message, MessageRecord
from mlxchat.ui.widgets.thinking import THINKING_KEYS

TOP = 1
"""Blank lines above the first message."""

GUTTER = 5
"""Columns of a message line that are not text: a margin, the bar and a space before
the text, a space and a margin after it."""

STRIP_CACHE = 2000
"""Most lines kept as strips (several screens)."""

LAYOUT_SLICE = 0.008
"""Seconds of background layout at a time; as long again is left to the app between two."""

LAYOUT_QUIET = 0.5
"""Seconds after an answer's text last changed before background layout goes on."""

SYNC_LAYOUT = 0.05
"""Seconds spent laying out the messages in view at once when a chat is loaded or the width
changes (the rest is laid out in the background)."""

ACTION_KEYS = "↑↓ move · c copy · y code · e edit · r regenerate · d delete · Esc back"
"""What the keys do while the transcript has focus (shown under it)."""


@dataclass
class _Frame:
    """What the rows drawn in one go share."""

    width: int
    top: int
    """The document line at the view's top row."""
    style: Style
    selection: Selection | None


@dataclass
class Hit:
    """A place where the text looked for is shown: a message's line and its columns."""

    message: Message
    line: int
    start: int
    end: int


class TranscriptBar(Static):
    """The line under the transcript: its keys while it has focus, the find count."""

    DEFAULT_CSS = """
    TranscriptBar {
        height: 1;
        width: 1fr;
        padding: 0 2;
        color: $text-muted;
        background: $background;
        display: none;
    }
    """


class Transcript(ScrollView, can_focus=True):
    """The messages of the current chat, oldest first, with a welcome text when empty."""

    ALLOW_SELECT = True
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "transcript--cursor",
        "transcript--hit",
        "transcript--hit-current",
        "transcript--welcome",
    }
    DEFAULT_CSS = """
    Transcript {
        height: 1fr;
        padding: 0;
        background: $background;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    Transcript > .transcript--cursor { background: $primary 18%; }
    Transcript > .transcript--hit { background: $warning 35%; }
    Transcript > .transcript--hit-current { background: $warning; color: $background; }
    Transcript > .transcript--welcome { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("home", "cursor_to(0)", "First", show=False),
        Binding("end", "cursor_to(-1)", "Last", show=False),
        Binding("c", "act('copy')", "Copy", show=False),
        Binding("y", "act('code')", "Copy code", show=False),
        Binding("e", "act('edit')", "Edit", show=False),
        Binding("r", "act('regenerate')", "Regenerate", show=False),
        Binding("d", "act('delete')", "Delete", show=False),
        Binding("o", "act('open')", "Unfold a tool's result", show=False),
        Binding("t", "toggle_thinking", "Fold/unfold the thinking", show=False),
        Binding("left,left_square_bracket", "act('version', -1)", "Older version", show=False),
        Binding("right,right_square_bracket", "act('version', 1)", "Newer version", show=False),
        Binding("n", "find_next(1)", "Next hit", show=False),
        Binding("N", "find_next(-1)", "Previous hit", show=False),
        Binding("escape,enter", "leave", "Back to the prompt", show=False),
        *(Binding(str(n), f"act('code', {n})", show=False) for n in range(1, 10)),
    ]

    class Act(TextualMessage):
        """A key asked for `action` on the message under the cursor (see the bindings)."""

        def __init__(self, action: str, message: Message, number: int | None = None) -> None:
            super().__init__()
            self.action = action
            self.message = message
            self.number = number

    class Left(TextualMessage):
        """The user asked to go back to the prompt (Esc or Enter in the transcript)."""

    def __init__(self, welcome: str = "", *, id: str | None = None) -> None:
        """Create an empty transcript.

        Args:
            welcome: Markup shown while there are no messages.
        """
        super().__init__(id=id)
        self._welcome = Content.from_markup(welcome) if welcome else Content("")
        self._messages: list[Message] = []
        self._counts: list[int] = []
        """Lines of each message (header, text, blank line) at `_width`; estimated for a
        message not laid out at that width yet."""
        self._starts: list[int] = [TOP]
        """The first line of each message, then the document's end (valid up to
        `_starts_valid`)."""
        self._starts_valid = 0
        self._index: dict[int, int] | None = None
        """Message serial → index (None: to be built again)."""
        self._width = 0
        """The text width messages are laid out at (0: not known yet)."""
        self._strips: LRUCache[tuple[int, int], tuple[object, Strip]] = LRUCache(STRIP_CACHE)
        """(message serial, line) → (what the line was drawn with, its strip)."""
        self._inexact = 0
        """How many messages are not laid out at `_width` (a background pass lays them out)."""
        self._layout_task: asyncio.Task[None] | None = None
        self._adjusting = False
        self._following = True
        """Whether the view was at the end when it last moved: it stays there when the view
        gets shorter (the prompt grows, the window shrinks), not only when lines come."""
        self.cursor: Message | None = None
        self._leaving = False  # Esc/Enter pressed: keys already on their way are not actions
        """The message the action keys act on (shown highlighted), or None."""
        self.bar: TranscriptBar | None = None
        """Where the keys and the find count are shown (set by the screen)."""
        self.back_to: Widget | None = None
        """Where Esc and Enter put the focus (set by the screen)."""
        self._query = ""
        self._hits: list[Hit] = []
        self._hits_by_line: dict[tuple[int, int], list[tuple[int, int, bool]]] = {}
        self._hit = -1
        self._frame: _Frame | None = None
        self._gutters: dict[tuple[str, bool], tuple[RichStyle, RichStyle, RichStyle]] = {}
        self._thumb: tuple[object, list[Segment]] | None = None
        """The scrollbar as last drawn (its sizes and position, its segments)."""
        self._changed_at = 0.0
        """When a message's text last changed (the background layout waits meanwhile)."""

    # ----- reading ----------------------------------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        """The messages (and the answer being written), oldest first."""
        return list(self._messages)

    def records(self) -> Iterable[MessageRecord]:
        """Every message as a record, oldest first."""
        for message in self._messages:
            yield message.record()

    @property
    def text_width(self) -> int:
        """The width a message's text is laid out at (a guess before the first layout)."""
        return self._width or 80

    @property
    def line_count(self) -> int:
        """The document's height in lines (some of it estimated while laying out)."""
        return self._start(len(self._messages))

    @property
    def laid_out(self) -> bool:
        """Whether every message is laid out at the current width (no estimates left)."""
        return self._inexact == 0

    def index_of(self, message: Message) -> int | None:
        """Where `message` is in the transcript, or None."""
        messages = self._messages
        if messages and messages[-1] is message:
            return len(messages) - 1
        if self._index is None:
            self._index = {m.serial: i for i, m in enumerate(messages)}
        return self._index.get(message.serial)

    def message_at(self, y: int) -> tuple[int, int] | None:
        """(message index, line in it) of document line `y`, or None (above or below)."""
        if not self._messages or y < TOP or y >= self.line_count:
            return None
        index = bisect_right(self._starts, y, 0, len(self._messages)) - 1
        return index, y - self._starts[index]

    def line_text(self, y: int) -> str:
        """Document line `y` as plain text ("" for a blank or missing line)."""
        found = self.message_at(y)
        if found is None:
            return ""
        index, local = found
        line = self._message_line(self._messages[index], local)
        return line.plain if line is not None else ""

    # ----- changing ---------------------------------------------------------------------------
    def add(self, *messages: Message) -> None:
        """Append messages (the view stays at the end if it was there)."""
        if not messages:
            return
        with self._keeping_view():
            if not self._messages:
                self._strips.clear()  # the welcome lines were drawn there
            for message in messages:
                message.owner = self
                self._messages.append(message)
                self._counts.append(self._lay_out(message))
            self._index = None
            self._invalidate_from(len(self._messages) - len(messages))
        self.refresh()

    def replace(self, old: Message, new: Message) -> None:
        """Put `new` where `old` is (the answer being written by the finished one)."""
        index = self.index_of(old)
        if index is None:
            self.add(new)
            return
        self._let_go(old)
        with self._keeping_view():
            new.owner = self
            self._messages[index] = new
            self._counts[index] = self._lay_out(new)
            self._index = None
            self._invalidate_from(index)
        if self.cursor is old:
            self.cursor = new
        self.refresh()

    def remove_messages(self, *messages: Message) -> None:
        """Take messages out."""
        gone = {m.serial for m in messages if self.index_of(m) is not None}
        if not gone:
            return
        first = min(i for i, m in enumerate(self._messages) if m.serial in gone)
        with self._keeping_view():
            kept = [(m, c) for m, c in zip(self._messages, self._counts, strict=True)]
            kept = [(m, c) for m, c in kept if m.serial not in gone]
            for message in messages:
                self._let_go(message)
            self._messages = [m for m, _ in kept]
            self._counts = [c for _, c in kept]
            self._index = None
            self._invalidate_from(first)
        if self.cursor is not None and self.cursor.serial in gone:
            self.cursor = None
        self._drop_gone_hits()
        self.refresh()

    def load(self, records: Sequence[MessageRecord]) -> None:
        """Replace everything by `records` (the newest laid out now, the rest meanwhile)."""
        self.clear()
        if not records:
            return
        with _no_collection():  # thousands of new objects: no full scans of a large heap
            messages = [Message.from_record(r) for r in records]
        for message in messages:
            message.owner = self
        self._messages = messages
        width = self._width
        self._counts = [_estimate(m, width or 80) for m in messages]
        self._inexact = len(messages)
        self._index = None
        self._invalidate_from(0)
        self._set_virtual_size()
        if width:
            self._lay_out_near_view(at_end=True)
        self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def clear(self) -> None:
        """Remove every message and show the welcome text again."""
        if self._layout_task is not None:
            self._layout_task.cancel()
            self._layout_task = None
        for message in self._messages:
            self._let_go(message)
        self._messages, self._counts = [], []
        self._index = None
        self._inexact = 0
        self._strips.clear()
        self.cursor = None
        self.clear_find()
        self._invalidate_from(0)
        self._set_virtual_size()
        self.scroll_to(0, 0, animate=False, immediate=True)
        self.refresh()

    def follow(self) -> None:
        """Jump to the end (and so follow the bottom again)."""
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def message_changed(self, message: Message, *, header: bool = False) -> None:
        """`message` changed: its header, or text appended to it (repaint what changed)."""
        index = self.index_of(message)
        if index is None or not self._width:
            return
        width = self._width
        body = message.body
        laid_out = body.width == width
        old = self._counts[index]
        self._changed_at = time.monotonic()
        if header:
            first = 0
            if laid_out and self._count(message) == old:  # same height: the header only
                heads = len(message.header_lines(width))
                self._forget_lines(message, 0, heads)
                self._refresh_document(self._start(index), heads)
                return
        else:
            first = len(message.header_lines(width)) + body.update(width) if laid_out else 0
        if not laid_out:
            body.update(width)
            self._inexact -= 1
        new = self._count(message)
        self._forget_lines(message, first, max(old, new))
        start = self._start(index)
        if new == old:  # (its last line, the blank one, stays as it was)
            self._refresh_document(start + first, new - 1 - first)
            return
        with self._keeping_view(changed=start + first):
            self._counts[index] = new
            self._invalidate_from(index)
        if index == len(self._messages) - 1:
            self._refresh_document(start + first, max(old, new) - first)
        else:
            self.refresh()

    def _let_go(self, message: Message) -> None:
        cancel = getattr(message, "cancel_flush", None)
        if cancel is not None:
            cancel()
        if message.owner is self:
            message.owner = None

    # ----- the cursor -------------------------------------------------------------------------
    def move_cursor(self, step: int) -> Message | None:
        """Move the message cursor `step` messages (from the last one when there is none)."""
        if not self._messages:
            return None
        index = self.index_of(self.cursor) if self.cursor is not None else None
        if index is None:  # none yet: the newest message in view
            bottom = round(self.scroll_y) + self._view_size().height - 1
            found = self.message_at(min(bottom, self.line_count - 1))
            index = found[0] if found is not None else len(self._messages) - 1
        else:
            index = max(0, min(len(self._messages) - 1, index + step))
        return self.set_cursor(self._messages[index])

    def set_cursor(self, message: Message | None, *, scroll: bool = True) -> Message | None:
        """Put the message cursor on `message` (None: take it away) and bring it in view."""
        if message is not self.cursor:
            self.cursor = message
            self.refresh()
            self._update_bar()  # (the keys of a message that thought say `t`)
        if message is not None and scroll:
            self.scroll_to_message(message)
        return message

    def scroll_to_message(self, message: Message, line: int | None = None) -> None:
        """Scroll, as little as needed, to show `message`'s line `line`, or (None) the whole
        message when it fits in the view, else some of it (its start when none was)."""
        index = self.index_of(message)
        if index is None:
            return
        self._lay_out_range(max(0, index - 2), index + 3)
        start, count = self._start(index), self._counts[index]
        height = max(1, self._view_size().height)
        top = round(self.scroll_y)
        if line is not None:
            target = start + line
            if not top <= target < top + height:
                top = max(0, target - height // 3)
        elif count <= height:
            top = min(top, start)
            top = max(top, start + count - height)
        elif start + count <= top or start >= top + height:
            top = start
        if top != round(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True)

    # ----- find -------------------------------------------------------------------------------
    @property
    def find_query(self) -> str:
        """The text looked for ("" when none)."""
        return self._query

    @property
    def hits(self) -> list[Hit]:
        """Every place the text looked for is shown, in document order."""
        return list(self._hits)

    @property
    def current_hit(self) -> int:
        """The index of the hit moved to (-1: none)."""
        return self._hit

    def find(self, query: str) -> int:
        """Highlight every place `query` is shown (case-insensitive) and move to the newest.

        Returns:
            How many hits there are.
        """
        self.clear_find()
        self._query = query
        needle = query.lower()
        hits: list[Hit] = []
        if needle:
            # only messages whose text could show it are laid out (not yet done: a chat
            # just opened), then their lines, as drawn, are searched
            bare = _bare(needle)
            candidates = [
                index
                for index, message in enumerate(self._messages)
                if message.body.width == self._width
                or bare in _bare(message.source.lower())
                or needle in message.header_text.lower()
            ]
            for index in candidates:
                if self._messages[index].body.width != self._width:
                    self._lay_out_range(index, index + 1)
            for index in candidates:
                message = self._messages[index]
                for line_number in range(self._count(message)):
                    line = self._message_line(message, line_number)
                    if line is None:
                        continue
                    text = line.plain.lower()
                    at = text.find(needle)
                    while at >= 0:
                        hits.append(Hit(message, line_number, at, at + len(needle)))
                        at = text.find(needle, at + len(needle))
        self._hits = hits
        self._hit = len(hits) - 1
        self._index_hits()
        if hits:
            self._show_hit()
        self._strips.clear()
        self._update_bar()
        self.refresh()
        return len(hits)

    def find_next(self, step: int = 1) -> int:
        """Move to the next hit (`step` 1) or the previous one (-1), wrapping around.

        Returns:
            The index of the hit moved to (-1 when there is none).
        """
        if not self._hits:
            return -1
        old = self._hits[self._hit] if self._hit >= 0 else None
        self._hit = (self._hit + step) % len(self._hits)
        self._index_hits()
        for hit in (old, self._hits[self._hit]):
            if hit is not None:
                self._forget_lines(hit.message, hit.line, hit.line + 1)
        self._show_hit()
        self.refresh()
        return self._hit

    def clear_find(self) -> None:
        """Stop highlighting hits."""
        if self._query or self._hits:
            self._query, self._hits, self._hit = "", [], -1
            self._hits_by_line = {}
            self._strips.clear()
            self._update_bar()
            self.refresh()

    def _show_hit(self) -> None:
        hit = self._hits[self._hit]
        self.set_cursor(hit.message, scroll=False)
        self.scroll_to_message(hit.message, hit.line)
        self._update_bar()

    def _index_hits(self) -> None:
        by_line: dict[tuple[int, int], list[tuple[int, int, bool]]] = {}
        for number, hit in enumerate(self._hits):
            key = (hit.message.serial, hit.line)
            by_line.setdefault(key, []).append((hit.start, hit.end, number == self._hit))
        self._hits_by_line = by_line

    def _drop_gone_hits(self) -> None:
        if self._hits:
            self._hits = [h for h in self._hits if self.index_of(h.message) is not None]
            self._hit = min(self._hit, len(self._hits) - 1)
            self._index_hits()

    # ----- key actions ------------------------------------------------------------------------
    def action_cursor(self, step: int) -> None:
        """Up/Down: move the message cursor."""
        self.move_cursor(step)

    def action_cursor_to(self, index: int) -> None:
        """Home/End: the first or the last message."""
        if self._messages:
            self.set_cursor(self._messages[index])

    def action_act(self, action: str, number: int | None = None) -> None:
        """A key for the message under the cursor: the chat screen does it (with no cursor
        yet, the key only shows it, on the newest message in view)."""
        if self._leaving:  # e.g. Esc then "do…" typed fast: the "d" deletes nothing
            return
        if self.cursor is None:
            self.move_cursor(0)
        elif self.index_of(self.cursor) is not None:
            self.post_message(self.Act(action, self.cursor, number))

    def action_toggle_thinking(self) -> None:
        """t: unfold or fold the reasoning of the message under the cursor."""
        if self.cursor is None:
            self.move_cursor(0)
        elif self.index_of(self.cursor) is not None:
            self.cursor.toggle_thinking()

    def action_page_up(self) -> None:
        """PageUp: a page up at once (an animated scroll draws every row of the view for
        each of its frames)."""
        self.scroll_page_up(animate=False)

    def action_page_down(self) -> None:
        """PageDown: a page down at once."""
        self.scroll_page_down(animate=False)

    def action_find_next(self, step: int) -> None:
        """n / N: the next or previous hit."""
        self.find_next(step)

    def action_leave(self) -> None:
        """Esc / Enter: back to the prompt (the hits and the selection go)."""
        self._leaving = True
        self.clear_find()
        self.screen.clear_selection()
        if self.back_to is not None:  # at once: the next key typed goes there
            self.screen.set_focus(self.back_to)
        self.post_message(self.Left())

    async def take_key(self, event: events.Key) -> bool:
        """A key in the order typed (`key_order`): the binding in force for it."""
        return await run_binding(self, event.key)

    async def take_paste(self, text: str) -> bool:
        """A paste on the transcript is not taken: Textual's usual path."""
        return False

    def on_focus(self, event: events.Focus) -> None:
        """Focused: the keys are shown under the transcript."""
        self._leaving = False
        self._update_bar()

    def on_blur(self) -> None:
        """Left: the cursor goes."""
        self.set_cursor(None)
        self._update_bar()

    @property
    def _focused(self) -> bool:
        """Whether the screen's focus is here now (the focus events may come late)."""
        return self.is_attached and self.screen.focused is self

    def _update_bar(self) -> None:
        """Show the keys (while focused) or the find count under the transcript."""
        bar = self.bar
        if bar is None:
            return
        text = ""
        if self._query:
            count = len(self._hits)
            where = f"{self._hit + 1}/{count}" if count else "no hits"
            query = sanitize(self._query, one_line=True)
            text = f"find “{query}”: {where} · n next · N previous · Esc ends"
        elif self._focused:
            thought = self.cursor is not None and self.cursor.thinking is not None
            text = THINKING_KEYS if thought else ACTION_KEYS
        bar.update(Content(text))
        bar.display = bool(text)

    def on_click(self, event: events.Click) -> None:
        """A click (not the end of a drag that selected text) puts the cursor on the message
        clicked."""
        found = self.message_at(round(self.scroll_y) + event.y - self.gutter.top)
        if found is not None and event.chain == 1 and self.text_selection is None:
            message = self._messages[found[0]]
            self.set_cursor(message, scroll=False)
            if found[1] == message.thinking_line(self._width or 80):  # its thinking line
                message.toggle_thinking()

    # ----- selection --------------------------------------------------------------------------
    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The text under `selection` (its offsets are document lines and characters)."""
        if not self._messages:
            return None
        last = self.line_count - 1
        start_y, start_x = (selection.start.y, selection.start.x) if selection.start else (0, 0)
        end_y, end_x = (selection.end.y, selection.end.x) if selection.end else (last, -1)
        end_y = min(end_y, last)
        if selection.start is None or selection.end is None:
            self._lay_out_all()
        lines: list[str] = []
        for y in range(start_y, end_y + 1):
            text = self.line_text(y)
            stop = len(text) if y != end_y or end_x < 0 else end_x
            lines.append(text[start_x if y == start_y else 0 : stop])
        return "\n".join(lines), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        """Draw the selection anew."""
        self._strips.clear()
        self.refresh()

    # ----- drawing ----------------------------------------------------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        """Draw rows of the view (what they share is looked up once, in `_frame`)."""
        self._frame = self._frame_state()
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _frame_state(self) -> _Frame:
        self._sync_width()
        selection = self.text_selection if self.is_attached else None
        return _Frame(
            self._view_size().width,
            round(self.scroll_y),
            self.visual_style,
            selection,
        )

    def render_line(self, y: int) -> Strip:
        """Document line `scroll_y + y`: from the strip cache, else drawn and kept."""
        frame = self._frame or self._frame_state()
        width = frame.width
        y += frame.top
        if not self._messages:
            return self._welcome_line(y, width)
        found = self.message_at(y)
        if found is None:
            return Strip.blank(width, frame.style.rich_style)
        index, local = found
        message = self._messages[index]
        if message.body.width != self._width:
            self.call_later(self._catch_up)  # not in view when laid out: do it now
        selection = frame.selection
        span = selection.get_span(y) if selection is not None else None
        hits = self._hits_by_line.get((message.serial, local))
        cursor = message is self.cursor
        drawn = (y, width, span, tuple(hits) if hits else None, cursor)
        cached = self._strips.get((message.serial, local))
        if cached is not None and cached[0] == drawn:
            return cached[1]
        strip = self._draw(message, local, y, width, frame.style, span, hits, cursor)
        self._strips.set((message.serial, local), (drawn, strip))
        return strip

    def _draw(
        self,
        message: Message,
        local: int,
        y: int,
        width: int,
        style: Style,
        span: tuple[int, int] | None,
        hits: list[tuple[int, int, bool]] | None,
        cursor: bool,
    ) -> Strip:
        """One line of a message: margin, bar, the text (styled, with the offsets that text
        selection reads), margin."""
        line = self._message_line(message, local)
        if line is None:  # the blank line after the message
            return Strip.blank(width, style.rich_style)
        base = self.get_visual_style("transcript--cursor") if cursor else style
        rich_base = base.rich_style
        if hits:
            hit_style = self._component_style("transcript--hit")
            current_style = self._component_style("transcript--hit-current")
            for start, end, current in hits:
                line = line.stylize(current_style if current else hit_style, start, end)
        if span is not None:
            start, end = span
            end = len(line.plain) if end == -1 else end
            line = line.stylize(self._selection_style(), start, end)
        at = _offset(0, y)  # the gutter: a click there is at the line's start
        margin, bar, space = self._gutter(message.kind, cursor, style, base)
        segments = [Segment(" ", margin + at), Segment("▌", bar + at), Segment(" ", space + at)]
        x = 0
        for segment in line.render_segments(base):
            segments.append(Segment(segment.text, _with_offset(segment.style, x, y)))
            x += len(segment.text)
        used = GUTTER - 2 + line.cell_length  # margin, bar, space, text
        if used < width - 1:  # the space after the text, up to the right margin
            segments.append(Segment(" " * (width - 1 - used), rich_base + _offset(x, y)))
            used = width - 1
        segments.append(Segment(" ", style.rich_style + _offset(x, y)))
        return Strip(segments, used + 1).crop(0, width)

    def _gutter(
        self, kind: str, cursor: bool, style: Style, base: Style
    ) -> tuple[RichStyle, RichStyle, RichStyle]:
        """The styles of a message line's margin, bar and the space after the bar."""
        key = (kind, cursor)
        found = self._gutters.get(key)
        if found is None:
            bar = Content.styled("▌", BAR_STYLES.get(kind, "$accent")).render_segments(base)
            bar_style = next((s.style for s in bar if s.style is not None), base.rich_style)
            found = (style.rich_style, bar_style, base.rich_style)
            self._gutters[key] = found
        return found

    def _welcome_line(self, y: int, width: int) -> Strip:
        rich = self.visual_style.rich_style
        lines = self._welcome_lines(width)
        index = y - TOP - 1
        if not 0 <= index < len(lines):
            return Strip.blank(width, rich)
        style = self.get_visual_style("transcript--welcome")
        line = Content("   ") + lines[index]
        return Strip(line.render_segments(style), line.cell_length).extend_cell_length(
            width, style.rich_style
        )

    def _component_style(self, name: str) -> Style:
        return Style.from_styles(self.get_component_styles(name))

    def _selection_style(self) -> Style:
        return Style.from_styles(self.screen.get_component_styles("screen--selection"))

    def notify_style_update(self) -> None:
        """Theme or styles changed: drop the cached strips."""
        self._strips.clear()
        self._gutters.clear()
        super().notify_style_update()

    def _refresh_document(self, y: int, count: int) -> None:
        """Repaint document lines `y` to `y + count` where they are in view."""
        top = round(self.scroll_y)
        height = self._view_size().height
        first, last = max(y, top), min(y + count, top + height)
        if first < last:
            self.refresh_lines(first, last - first)

    def _forget_lines(self, message: Message, start: int, end: int) -> None:
        for line in range(start, end):
            self._strips.discard((message.serial, line))

    # ----- layout -----------------------------------------------------------------------------
    def _message_line(self, message: Message, local: int) -> Content | None:
        """Line `local` of a message at the current width (None: its blank last line)."""
        width = self._width or 80
        heads = message.header_lines(width)
        if local < len(heads):
            return heads[local]
        body = message.body
        if body.width != max(width, MIN_WIDTH):
            body.update(width)
        index = local - len(heads)
        return body.line(index) if index < body.line_count else None

    def _count(self, message: Message) -> int:
        """A laid-out message's lines: header, text and a blank line."""
        width = self._width or 80
        return len(message.header_lines(width)) + message.body.line_count + 1

    def _lay_out(self, message: Message) -> int:
        """Lay `message` out at the current width; its line count (estimated when the width
        is not known yet)."""
        if not self._width:
            self._inexact += 1
            return _estimate(message, 80)
        message.body.update(self._width)
        return self._count(message)

    def _start(self, index: int) -> int:
        """The first document line of message `index` (`len(messages)`: the end)."""
        if index >= self._starts_valid:
            valid = self._starts_valid
            tail = accumulate(self._counts[valid:], initial=self._starts[valid])
            self._starts[valid:] = list(tail)
            self._starts_valid = len(self._messages)
        return self._starts[index]

    def _invalidate_from(self, index: int) -> None:
        """The line counts from message `index` on changed."""
        self._starts_valid = min(self._starts_valid, index)
        del self._starts[self._starts_valid + 1 :]
        self._set_virtual_size()

    @property
    def allow_vertical_scroll(self) -> bool:
        """Scrolling is allowed as soon as the document is taller than the view (Textual's
        check waits for the scrollbar, which comes with the next layout)."""
        return self.max_scroll_y > 0 or super().allow_vertical_scroll

    def _view_size(self) -> Size:
        """The size of the lines drawn: the widget less its padding and scrollbar."""
        width, height = self.container_size
        return Size(width - self.scrollbar_size_vertical, height - self.scrollbar_size_horizontal)

    def _set_virtual_size(self) -> None:
        """The document's height as the virtual size."""
        view = self._view_size()
        height = self.line_count if self._messages else self._welcome_height(view.width)
        size = Size(view.width, height)
        old = self.virtual_size
        if size != old:
            needs_bar = height > view.height and self.styles.overflow_y == "auto"
            if size.width == old.width and needs_bar == self.show_vertical_scrollbar:
                # only the height: no layout of the screen is needed (the scrollbar stays
                # as it is, but for its thumb, set here as Textual's layout would)
                self.set_reactive(Transcript.virtual_size, size)
                if needs_bar:
                    self._set_scrollbar(virtual=height)
            else:
                self.virtual_size = size

    def _welcome_lines(self, width: int) -> list[Content]:
        return self._welcome.wrap(max(MIN_WIDTH, width - 6)) if self._welcome else []

    def _welcome_height(self, width: int) -> int:
        """The blank line at the top, one above the welcome text, the text, one below."""
        return TOP + 1 + len(self._welcome_lines(width)) + 1

    def _at_end(self) -> bool:
        return self._following or round(self.scroll_y) >= self.max_scroll_y

    def _anchor(self) -> tuple[Message, int] | None:
        """The message at the top of the view and the line of it there."""
        found = self.message_at(round(self.scroll_y))
        if found is None:
            return None
        index, local = found
        return self._messages[index], local

    @contextlib.contextmanager
    def _keeping_view(self, changed: int | None = None) -> Iterator[None]:
        """Change line counts inside, keeping the view: at the end it stays at the end;
        scrolled up, the line at its top stays there (unless only lines from document line
        `changed` on, all below the top, changed)."""
        at_end = self._at_end() or not self.size
        top = round(self.scroll_y)
        anchor = None if at_end or (changed is not None and changed >= top) else self._anchor()
        adjusting, self._adjusting = self._adjusting, True
        try:
            yield
            self._set_virtual_size()
            if at_end:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
            elif anchor is not None:
                message, local = anchor
                index = self.index_of(message)
                if index is not None:
                    y = self._start(index) + min(local, self._counts[index] - 1)
                    if y != top:
                        self.scroll_to(y=y, animate=False, immediate=True)
        finally:
            self._adjusting = adjusting

    def _sync_width(self) -> None:
        """Lay out again when the text width changed (the view keeps its place)."""
        view = self._view_size().width
        width = max(MIN_WIDTH, view - GUTTER) if view > 0 else 0
        if not width or width == self._width:
            return
        self._width = width
        self._strips.clear()
        for message in self._messages:
            message._header = None
        if not self._messages:
            self._set_virtual_size()
            return
        self._inexact = sum(1 for m in self._messages if m.body.width != width)
        self._lay_out_near_view(at_end=self._at_end())

    def on_resize(self, event: events.Resize) -> None:
        """A new size: a new width lays the text out again; a view at the end stays there."""
        self._sync_width()
        self._set_virtual_size()
        if self._following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def watch_scroll_y(self, old: float, new: float) -> None:
        """Scrolled: the view is drawn again, what comes into view is laid out first."""
        self._following = round(new) >= self.max_scroll_y
        if self.show_vertical_scrollbar:
            self._set_scrollbar(position=new)
        if round(old) != round(new):
            self.refresh()
        if self._inexact and not self._adjusting:
            self._lay_out_near_view(at_end=False)

    def _set_scrollbar(self, *, virtual: int | None = None, position: float | None = None) -> None:
        """Give the scrollbar the document's height or the scroll position; it is drawn
        again only when its thumb looks different (scrolling a line of a long chat moves
        it by less than the eighth of a row its glyphs show)."""
        bar = self.vertical_scrollbar
        new_virtual = bar.window_virtual_size if virtual is None else virtual
        new_position = bar.position if position is None else position

        def drawn(virtual_size: float, at: float) -> tuple[object, list[Segment]]:
            key = (bar.size.height, virtual_size, bar.window_size, at)
            if self._thumb is not None and self._thumb[0] == key:
                return self._thumb
            segments = bar.renderer.render_bar(
                size=bar.size.height,
                virtual_size=virtual_size,
                window_size=bar.window_size,
                position=at,
            ).segments
            return key, list(segments)

        before = drawn(bar.window_virtual_size, bar.position)
        after = drawn(new_virtual, new_position)
        self._thumb = after
        silent = bar.size.height > 0 and after[1] == before[1]
        for name, value in (("window_virtual_size", virtual), ("position", position)):
            if value is None:
                continue
            if silent:
                bar.set_reactive(getattr(ScrollBar, name), value)
            else:
                setattr(bar, name, value)

    def _lay_out_near_view(self, *, at_end: bool) -> None:
        """Lay out the messages in and next to the view now (within `SYNC_LAYOUT` seconds
        when there are many); the background pass does the rest."""
        if not self._inexact or not self._width:
            return
        height = max(self._view_size().height, 10)
        for _ in range(3):  # the counts move as estimates become exact: settle them
            top = round(self.scroll_y) if not at_end else max(0, self.line_count - height)
            first = self.message_at(max(TOP, top - height))
            last = self.message_at(min(self.line_count - 1, top + 2 * height))
            lo = first[0] if first is not None else 0
            hi = last[0] + 1 if last is not None else len(self._messages)
            if at_end:
                hi = len(self._messages)
            if not self._lay_out_range(lo, hi, budget=SYNC_LAYOUT):
                break
        self._start_background()

    def _lay_out_range(self, lo: int, hi: int, budget: float | None = None) -> bool:
        """Lay out messages `lo` to `hi` (newest first) that are not yet; whether any was."""
        width = self._width
        if not self._inexact or not width:
            return False
        deadline = time.perf_counter() + budget if budget is not None else None
        changed: list[tuple[int, int]] = []
        for index in range(min(hi, len(self._messages)) - 1, max(lo, 0) - 1, -1):
            message = self._messages[index]
            if message.body.width == width:
                continue
            message.body.update(width)
            changed.append((index, self._count(message)))
            if deadline is not None and time.perf_counter() > deadline:
                break
        if not changed:
            return False
        with self._keeping_view():
            for index, count in changed:
                if self._counts[index] != count:
                    self._forget_lines(self._messages[index], 0, max(count, self._counts[index]))
                self._counts[index] = count
            self._inexact = max(0, self._inexact - len(changed))
            self._invalidate_from(min(index for index, _ in changed))
        self.refresh()
        return True

    def _lay_out_all(self) -> None:
        """Every message laid out now (find, select all)."""
        if self._inexact:
            self._lay_out_range(0, len(self._messages))
            self._inexact = sum(1 for m in self._messages if m.body.width != self._width)

    def _catch_up(self) -> None:
        """Lines were drawn from a message not laid out: lay out what is in view."""
        self._lay_out_near_view(at_end=self._at_end())

    def _start_background(self) -> None:
        if self._inexact and (self._layout_task is None or self._layout_task.done()):
            self._layout_task = asyncio.get_running_loop().create_task(self._background())

    async def _background(self) -> None:
        """Lay out the messages not laid out yet, a slice at a time: from the one in view
        upwards, then downwards (starting again from the view when the width changes)."""
        width = 0
        up = down = 0
        while self._inexact and self.is_attached:
            if width != self._width:
                width = self._width
                found = self.message_at(round(self.scroll_y))
                up = found[0] if found is not None else len(self._messages) - 1
                down = up + 1
            batch: list[int] = []
            while len(batch) < 200 and (up >= 0 or down < len(self._messages)):
                if up >= 0:
                    index, up = up, up - 1
                else:
                    index, down = down, down + 1
                if index < len(self._messages) and self._messages[index].body.width != width:
                    batch.append(index)
            if not batch:
                self._inexact = sum(1 for m in self._messages if m.body.width != self._width)
                width = 0  # any left (added meanwhile): once more from the view
                await asyncio.sleep(LAYOUT_SLICE)
                continue
            while time.monotonic() - self._changed_at < LAYOUT_QUIET:  # an answer streams
                await asyncio.sleep(LAYOUT_QUIET)
            self._lay_out_indices(batch)
            await asyncio.sleep(LAYOUT_SLICE)

    def _lay_out_indices(self, indices: list[int]) -> None:
        """Lay out some of `indices` (in that order) for at most `LAYOUT_SLICE` seconds."""
        width = self._width
        deadline = time.perf_counter() + LAYOUT_SLICE
        changed: list[tuple[int, int]] = []
        for index in indices:
            if index >= len(self._messages):
                continue
            message = self._messages[index]
            if message.body.width == width:
                continue
            message.body.update(width)
            changed.append((index, self._count(message)))
            if time.perf_counter() > deadline:
                break
        if not changed:
            return
        with self._keeping_view():
            for index, count in changed:
                self._counts[index] = count
            self._inexact = max(0, self._inexact - len(changed))
            self._invalidate_from(min(index for index, _ in changed))
        self.refresh()

    def on_unmount(self) -> None:
        """Stop laying out."""
        if self._layout_task is not None:
            self._layout_task.cancel()
        for message in self._messages:
            self._let_go(message)


_MARKUP = str.maketrans("", "", "*_`~\\")


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """The garbage collector paused inside (objects made in bulk hold no cycles to find):
    in an app that has run a while, each full collection scans its whole heap, and making
    10,000 messages set off enough of them to take seconds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _bare(text: str) -> str:
    """`text` without the characters Markdown may take away when it is drawn (emphasis,
    code, escapes): what a find looks for in a message not laid out yet."""
    return text.translate(_MARKUP)


def _estimate(message: Message, width: int) -> int:
    """A message's lines at `width` before it is laid out: header, text, blank line."""
    width = max(width, MIN_WIDTH)
    lines = 0
    for line in message.text.split("\n"):
        lines += max(1, -(-len(line) // width))
    return 2 + lines


def _offset(x: int, y: int) -> RichStyle:
    return RichStyle.from_meta({"offset": (x, y)})


def _with_offset(style: RichStyle | None, x: int, y: int) -> RichStyle:
    at = _offset(x, y)
    return style + at if style is not None else at


__all__ = ["ACTION_KEYS", "Hit", "Transcript", "TranscriptBar"]
