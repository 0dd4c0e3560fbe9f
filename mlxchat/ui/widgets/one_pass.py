"""A mixin for widgets that grow while an answer streams: one layout per growth, not two."""

from __future__ import annotations

from textual.geometry import Size
from textual.widget import Widget


class OneLayoutPass(Widget):
    """Growing taller does not ask for a second layout of the screen.

    Textual stores the size a layout gave a widget in `virtual_size`, a reactive that asks
    for another layout when it changes, so every widget that grew gets the whole screen laid
    out twice. When only the height changed (same width, and a scroll container keeps its
    scrollbar), the second pass changes nothing: the anchored scroll position and the
    scrollbar are already updated. On 2 cores it costs ~15 ms a frame while an answer streams.

    List it after the Textual base class (`class View(VerticalScroll, OneLayoutPass)`):
    Textual takes default CSS from the first base only.
    """

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        only_taller = (
            size.width == self._size.width
            and virtual_size.width == self.virtual_size.width
            and container_size.width == self._container_size.width
            and self._keeps_scrollbar(virtual_size, container_size)
        )
        return super()._size_updated(
            size, virtual_size, container_size, layout=layout and not only_taller
        )

    def _keeps_scrollbar(self, virtual_size: Size, container_size: Size) -> bool:
        """Whether the vertical scrollbar stays as it is (shown or not) at this size."""
        if not self.is_scrollable or self.styles.overflow_y in ("hidden", "scroll"):
            return True
        return self.show_vertical_scrollbar and virtual_size.height > container_size.height
