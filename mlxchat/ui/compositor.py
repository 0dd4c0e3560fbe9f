"""A compositor that repaints only the rows that changed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from textual._compositor import Compositor
from textual.geometry import Region
from textual.strip import Strip


class DirtyRowsCompositor(Compositor):
    """Textual's compositor, asking each widget only for its rows that are repainted.

    For a partial update Textual 8's compositor renders every visible widget whose *clip*
    meets the box around all changed regions, and all of that widget's visible lines: a
    one-line change in a chat re-renders the footer, the status bar, the prompt and every
    message on screen. This one asks each widget only for the rows between its first and
    last changed row, and skips widgets with none: the same screen for a fraction of the work.
    """

    _rendered_line: Callable[[int], bool] | None = None

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
        if crop is None or rendered_line is None:
            yield from super()._get_renders(crop)
            return
        for widget, (region, clip) in self.visible_widgets.items():
            left = max(region.x, clip.x)
            right = min(region.right, clip.right)
            if right <= max(left, crop.x) or min(right, crop.right) <= left:
                continue
            rows = range(
                max(region.y, clip.y, crop.y), min(region.bottom, clip.bottom, crop.bottom)
            )
            top = next((y for y in rows if rendered_line(y)), None)
            if top is None:
                continue
            bottom = next(y for y in reversed(rows) if rendered_line(y)) + 1
            visible = Region(left - region.x, top - region.y, right - left, bottom - top)
            yield (
                Region(region.x, top, region.width, bottom - top),
                clip,
                widget.render_lines(visible),
            )
