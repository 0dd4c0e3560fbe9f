"""The one place where mlxchat reaches into Textual's private internals.

Verified against Textual 8.2.8 (pyproject pins `textual>=8.2,<9`): check each reach below
before moving the pin. Ruff's TID251 rule keeps `textual._*` imports out of every other
module. What is used that is not public API:

- `LinuxDriver.run_input_thread` is replaced (its loop is the same as Textual's), to put
  `TerminalInput` between the terminal and the key parser. Textual's own loop decodes
  stdin strictly (3,000 bytes that are not UTF-8 ended the app with a traceback), lets
  the bytes after an ESC inside a bracketed paste out as keys (an embedded ^Q quit the
  app), sends a paste from a terminal without bracketed paste as one key per character
  (each newline an Enter), and spins on a stdin at end of file.
- `textual._xterm_parser.XTermParser` and `textual._parser.ParseError`: the key parser
  the replaced loop feeds, as Textual's loop does.
- `textual._compositor.Compositor._render_chops`/`_get_renders`/`_dirty_regions` and
  `render_partial_update`, installed as `Screen._compositor` (`DirtyRowsCompositor`):
  repaint only the rows that changed, and only the widgets in front where they changed.
  `CompositorUpdate` and `Compositor.render_full_update` let tests paint a whole screen.
- `Widget._size_updated`, `_size`, `_container_size` (`OneLayoutPass`): one layout pass,
  not two, when a widget only grew taller, and its drawn lines kept.
- `Widget._anchor_released` (`follows_bottom`): whether the user scrolled away from an
  anchored view's bottom (Textual has `is_anchored` but nothing public for this).
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from textual import events
from textual._compositor import ChopsUpdate, Compositor, CompositorUpdate
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.driver import Driver
from textual.geometry import Region, Size
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

from mlxchat.ui.terminal_input import Pasted, TerminalInput

__all__ = [
    "CompositorUpdate",
    "DirtyRowsCompositor",
    "OneLayoutPass",
    "RowsAlikeBelow",
    "follows_bottom",
    "full_update",
    "repaint_changed_rows_only",
    "safe_input_driver",
]

READ_SIZE = 4096
BATCH_SIZE = 1 << 20
"""Bytes already waiting that are read together (one paste event instead of hundreds)."""


def safe_input_driver(chosen: type[Driver]) -> type[Driver]:
    """The driver to run an app with: Textual's Linux/macOS one gets the safe input loop."""
    if sys.platform == "win32":
        return chosen
    from textual.drivers.linux_driver import LinuxDriver

    if chosen is not LinuxDriver:  # headless, web, or a driver asked for by name
        return chosen
    return _safe_linux_driver()


@functools.cache
def _safe_linux_driver() -> type[Driver]:
    from textual.drivers.linux_driver import LinuxDriver

    class SafeInputDriver(LinuxDriver):
        """Textual's Linux driver whose input thread reads pastes as text."""

        def run_input_thread(self) -> None:
            """Wait for input and dispatch keys and pastes (replaces Textual's loop)."""
            parser = XTermParser(self._debug)
            terminal_input = TerminalInput()
            selector = selectors.SelectSelector()
            selector.register(self.fileno, selectors.EVENT_READ)
            try:
                while not self.exit_event.is_set():
                    if selector.select(0.1):
                        data = os.read(self.fileno, READ_SIZE)
                        if not data:  # end of file: nothing more will come
                            self.exit_event.wait()
                            break
                        while (more := bool(selector.select(0))) and len(data) < BATCH_SIZE:
                            data += os.read(self.fileno, READ_SIZE)  # a paste: fewer, larger edits
                        for piece in terminal_input.feed(data, more):
                            if isinstance(piece, Pasted):
                                self.process_message(events.Paste(piece.text))
                            else:
                                for event in parser.feed(piece):
                                    self.process_message(event)
                    for event in parser.tick():
                        self.process_message(event)
            finally:
                selector.close()
                with contextlib.suppress(EOFError, ParseError):
                    for _event in parser.feed(""):
                        pass

    return SafeInputDriver


# ----- painting: only the rows that changed --------------------------------------------------
class DirtyRowsCompositor(Compositor):
    """Textual's compositor, asking each widget only for its rows that are repainted.

    For a partial update Textual 8's compositor renders every visible widget whose *clip*
    meets the box around all changed regions, and all of that widget's visible lines: a
    one-line change in a chat re-renders the footer, the status bar, the prompt and every
    message on screen. This one asks each widget only for the rows between its first and
    last changed row, skips widgets with none, and skips rows whose changed columns a widget
    in front already covers (the message under a streamed line, the screen under it), and
    draws rows a widget says look alike once (`RowsAlikeBelow`): the same screen for a
    fraction of the work.
    """

    _rendered_line: Callable[[int], bool] | None = None
    _dirty_columns: dict[int, tuple[int, int]] | None = None
    as_textual = False
    """Draw as Textual's own compositor does (every row of every widget in the crop)."""

    def render_partial_update(self) -> ChopsUpdate | None:
        self._dirty_columns = _columns_by_row(self._dirty_regions)
        try:
            return super().render_partial_update()
        finally:
            self._dirty_columns = None

    def _render_chops(
        self, crop: Region, is_rendered_line: Callable[[int], bool]
    ) -> Sequence[Mapping[int, Strip]]:
        self._rendered_line = is_rendered_line
        try:
            return super()._render_chops(crop, is_rendered_line)
        finally:
            self._rendered_line = None

    def _get_renders(
        self, crop: Region | None = None
    ) -> Iterable[tuple[Region, Region, list[Strip]]]:
        rendered_line = self._rendered_line
        if crop is None or rendered_line is None or self.as_textual:
            yield from super()._get_renders(crop)
            return
        columns = self._dirty_columns or {}
        covered: set[int] = set()
        """Rows whose changed columns a widget in front (drawn earlier) covers."""
        for widget, (region, clip) in self.visible_widgets.items():  # front to back
            left = max(region.x, clip.x)
            right = min(region.right, clip.right)
            if right <= max(left, crop.x) or min(right, crop.right) <= left:
                continue
            rows = range(
                max(region.y, clip.y, crop.y), min(region.bottom, clip.bottom, crop.bottom)
            )
            drawn = [y for y in rows if rendered_line(y) and y not in covered]
            if not drawn:
                continue
            top, bottom = drawn[0], drawn[-1] + 1
            visible = Region(left - region.x, top - region.y, right - left, bottom - top)
            yield (
                Region(region.x, top, region.width, bottom - top),
                clip,
                _render_lines(widget, visible),
            )
            for y in drawn:
                start, end = columns.get(y, (crop.x, crop.right))
                if left <= start and end <= right:
                    covered.add(y)


class RowsAlikeBelow(Widget):
    """A widget whose rows from some row down to its bottom all look the same.

    The compositor draws one of them and repeats it (a streamed answer keeps tens of blank
    rows below its text; each drawn through Textual's styles costs as much as a text row).
    """

    def rows_alike_from(self) -> int | None:
        """The first row (counted from the widget's top edge, border and padding included)
        of the rows that look the same down to the bottom, or None."""
        return None


def _render_lines(widget: Widget, crop: Region) -> list[Strip]:
    """`widget.render_lines(crop)`, drawing rows that look alike once."""
    alike = widget.rows_alike_from() if isinstance(widget, RowsAlikeBelow) else None
    if alike is None or crop.bottom - max(alike, crop.y) < 2:
        return widget.render_lines(crop)
    first = max(alike, crop.y)  # drawn: the rows above it and this one, repeated below
    lines = widget.render_lines(Region(crop.x, crop.y, crop.width, first + 1 - crop.y))
    return lines + [lines[-1]] * (crop.bottom - first - 1)


def _columns_by_row(regions: Iterable[Region]) -> dict[int, tuple[int, int]]:
    """For each row the regions meet: the columns they span (first, and one past the last)."""
    columns: dict[int, tuple[int, int]] = {}
    for region in regions:
        for y in region.line_range:
            start, end = columns.get(y, (region.x, region.right))
            columns[y] = (min(start, region.x), max(end, region.right))
    return columns


def repaint_changed_rows_only(screen: Screen[Any]) -> None:
    """Give `screen` the `DirtyRowsCompositor` (call in its `__init__`)."""
    screen._compositor = DirtyRowsCompositor()


def full_update(screen: Screen[Any]) -> CompositorUpdate:
    """The update that paints the whole of `screen`, drawn by Textual's own compositor (what
    tests compare the partial updates with)."""
    compositor = screen._compositor
    if not isinstance(compositor, DirtyRowsCompositor):
        return compositor.render_full_update()
    compositor.as_textual = True
    try:
        return compositor.render_full_update()
    finally:
        compositor.as_textual = False


# ----- layout: one pass when a widget grows ---------------------------------------------------
class OneLayoutPass(Widget):
    """Growing taller does not ask for a second layout of the screen.

    Textual stores the size a layout gave a widget in `virtual_size`, a reactive that asks
    for another layout when it changes, so every widget that grew gets the whole screen laid
    out twice. When only the height changed (same width, and a scroll container keeps its
    scrollbar), the second pass changes nothing: the anchored scroll position and the
    scrollbar are already updated. On 2 cores it costs ~15 ms a frame while an answer streams.

    With `lines_stay_when_taller`, growing taller also keeps the lines already drawn
    (Textual draws every line again after any resize): for a widget whose lines do not
    depend on its height (no bottom border or padding, no vertical alignment) that marks
    its changed rows dirty itself (`refresh(region, layout=True)`).

    List it after the Textual base class (`class View(VerticalScroll, OneLayoutPass)`):
    Textual takes default CSS from the first base only.
    """

    lines_stay_when_taller: ClassVar[bool] = False

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        only_taller = (
            size.width == self._size.width
            and virtual_size.width == self.virtual_size.width
            and container_size.width == self._container_size.width
            and self._keeps_scrollbar(virtual_size, container_size)
        )
        if only_taller and self.lines_stay_when_taller and size.height > self._size.height:
            self._size = size  # else Textual drops every drawn line (the new rows get drawn)
        return super()._size_updated(
            size, virtual_size, container_size, layout=layout and not only_taller
        )

    def _keeps_scrollbar(self, virtual_size: Size, container_size: Size) -> bool:
        """Whether the vertical scrollbar stays as it is (shown or not) at this size."""
        if not self.is_scrollable or self.styles.overflow_y in ("hidden", "scroll"):
            return True
        return self.show_vertical_scrollbar and virtual_size.height > container_size.height


# ----- scrolling -----------------------------------------------------------------------------
def follows_bottom(widget: Widget) -> bool:
    """Whether an anchored `widget` still follows its bottom (the user has not scrolled away)."""
    return widget.is_anchored and not widget._anchor_released
