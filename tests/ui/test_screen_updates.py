"""What reaches the terminal while an answer streams: partial repaints add up to the screen.

The transcript repaints only the lines an answer changed (and everything when it scrolls),
and the status bar rides in the text's frames. A small terminal emulator here applies every
update the app sends, as a terminal would; after each token its cells must equal a full
repaint of the screen.
"""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console
from rich.control import ControlType
from rich.segment import Segment
from rich.style import Style
from textual.app import App

from mlxchat.ui.widgets import status as status_module
from mlxchat.ui.widgets.status import StatusBar

from .fake_engine import fixed_stats
from .helpers import MARKDOWN_PIECES, SIZE, ready, send, until


class Terminal:
    """A grid of cells that takes Textual's updates the way a terminal takes their bytes."""

    def __init__(self, width: int, height: int) -> None:
        self.cells: list[list[tuple[str, Style | None]]] = [
            [(" ", None)] * width for _ in range(height)
        ]
        self.x = self.y = 0

    def apply(self, update: Any, console: Console) -> None:
        """Write an update's segments at their cursor positions."""
        for segment in update.__rich_console__(console, console.options):
            self._write(segment)

    def _write(self, segment: Segment) -> None:
        if segment.control:
            for control in segment.control:
                if control[0] == ControlType.CURSOR_MOVE_TO:
                    self.x, self.y = control[1], control[2]
            return
        for char in segment.text:
            if char == "\n":
                self.x, self.y = 0, self.y + 1
                continue
            if 0 <= self.y < len(self.cells) and 0 <= self.x < len(self.cells[0]):
                self.cells[self.y][self.x] = (char, segment.style)
            self.x += 1

    def lines(self) -> list[str]:
        return ["".join(char for char, _ in row).rstrip() for row in self.cells]


def watch_terminal(app: App[Any]) -> Terminal:
    """A terminal fed with every update the (headless) app displays from now on."""
    terminal = Terminal(*SIZE)
    display = app._display

    def show(screen: Any, renderable: Any) -> None:
        if hasattr(renderable, "__rich_console__"):  # the compositor's updates
            terminal.apply(renderable, app.console)
        display(screen, renderable)

    app._display = show  # type: ignore[method-assign]
    return terminal


def full_update(app: App[Any]) -> Any:
    """The update that paints the whole screen now (Textual's compositor: no public call)."""
    return app.screen._compositor.render_full_update()


def full_repaint(app: App[Any]) -> Terminal:
    """The screen as a full repaint draws it now."""
    terminal = Terminal(*SIZE)
    terminal.apply(full_update(app), app.console)
    return terminal


def fresh_repaint(app: App[Any]) -> Terminal:
    """The screen drawn from scratch: every widget (and scrollbar) draws every line again,
    as if nothing had been drawn before (a row or a scrollbar thumb that was not repainted
    when it changed differs from this). The status bar is left as drawn: it shows new
    numbers a few times a second, on purpose."""
    for widget in app.screen.walk_children(with_self=True):
        if isinstance(widget, StatusBar):
            continue
        widget.refresh()
        if widget.show_vertical_scrollbar:
            widget.vertical_scrollbar.refresh()
    return full_repaint(app)


@pytest.mark.parametrize(
    "earlier", [0, 12, 200], ids=["fresh chat", "a chat that scrolls", "a long chat that scrolls"]
)
async def test_partial_repaints_add_up_to_the_screen(make_app, engine, history, earlier) -> None:
    engine.answers = [MARKDOWN_PIECES]
    engine.hold_after(1)
    cid = history.new_conversation()
    for n in range(earlier):  # enough to fill the view: the answer scrolls it
        history.add_message(cid, "user", f"question {n}")
        history.add_message(cid, "assistant", f"answer {n}")
    app = make_app(resume=cid if earlier else None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await until(pilot, lambda: len(screen.conversation.messages) == 2 * earlier)
        await pilot.pause()
        terminal = watch_terminal(app)
        terminal.apply(full_update(app), app.console)
        await send(pilot, "Hi", wait=False)
        answer = screen.conversation.messages[-1]
        for count in range(1, len(MARKDOWN_PIECES)):  # one token at a time
            await until(pilot, lambda c=count: answer.source == "".join(MARKDOWN_PIECES[:c]))
            await pilot.pause()
            await pilot.pause()
            assert terminal.cells == fresh_repaint(app).cells, f"after {count} tokens"
            await pilot.pause()  # (the refresh asked for is painted: the terminal catches up)
            gate = engine._gate
            engine.hold_after(count + 1)
            gate.set()
        engine.release()
        await until(pilot, lambda: not screen.answering)
        await pilot.pause()
        assert terminal.cells == fresh_repaint(app).cells
        shown = "\n".join(terminal.lines())
        assert "The end." in shown and "return a + b" in shown


async def test_the_prompt_cursor_holds_still_while_answering(make_app, engine) -> None:
    engine.hold_after(2)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert screen.prompt.cursor_blink
        await send(pilot, "Hi", wait=False)
        await until(pilot, lambda: screen.answering)
        assert not screen.prompt.cursor_blink
        engine.release()
        await until(pilot, lambda: not screen.answering)
        assert screen.prompt.cursor_blink


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(status_module.time, "monotonic", lambda: now[0])
    return now


def test_status_numbers_go_out_with_the_text_a_few_times_a_second(clock: list[float]) -> None:
    bar = StatusBar(refresh_interval=0.25)
    repaints: list[float] = []
    bar.refresh = lambda *a, **k: repaints.append(clock[0])  # type: ignore[method-assign]
    for token in range(20):  # 10 tokens a second for 2 s, each repainting text
        bar.set_stats(fixed_stats(token + 1))
        bar.repaint_if_due()
        bar.tick()  # the timer may fire at any moment: it leaves the repaints to the text
        clock[0] += 0.1
    gaps = [b - a for a, b in zip(repaints, repaints[1:], strict=False)]
    assert 6 <= len(repaints) <= 8 and all(gap >= 0.25 - 1e-9 for gap in gaps)
    # the tokens stop (prefill of the next answer, say): the timer repaints new numbers
    repaints.clear()
    bar.set_stats(fixed_stats(21))
    clock[0] += 0.3
    bar.tick()
    assert repaints == [clock[0]]
    bar.tick()  # nothing new: no repaint
    assert len(repaints) == 1
