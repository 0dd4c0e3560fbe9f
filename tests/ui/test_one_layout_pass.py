"""A view that only grew taller asks for one layout of the screen, not two."""

from __future__ import annotations

from textual.app import App, ComposeResult

from mlxchat.ui.widgets.markdown_view import MarkdownView

from .helpers import CountsLayouts


class Counted(MarkdownView, CountsLayouts):
    """Counts the layouts it asks for."""


class OneView(App[None]):
    def compose(self) -> ComposeResult:
        yield Counted("First paragraph.")


async def test_growing_taller_asks_for_one_layout() -> None:
    app = OneView()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(Counted)
        await pilot.pause()
        view.layouts = 0
        view.append("\n\nA second paragraph.")
        await pilot.pause()
        await pilot.pause()
        assert view.size.height == 3
        assert view.layouts == 1
