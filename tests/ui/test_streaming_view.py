"""The streaming answer view: what reaches the screen, and the room it keeps below the text."""

from __future__ import annotations

import asyncio
import time

import pytest
from pilot_helpers import screen_rows
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll

from mlxchat.ui.widgets import streaming
from mlxchat.ui.widgets.markdown_view import PARSE_INTERVAL
from mlxchat.ui.widgets.streaming import StreamingView

from .helpers import MARKDOWN_PIECES, CountsLayouts


class StreamApp(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield StreamingView("model")


async def test_every_append_reaches_the_screen() -> None:
    app = StreamApp()
    async with app.run_test(size=(60, 30)) as pilot:
        view = app.query_one(StreamingView)
        for piece in MARKDOWN_PIECES:
            view.append(piece)
            await pilot.pause()
            await pilot.pause()
            expected = [line.plain.rstrip() for line in view.body_lines(view.size.width)]
            shown = screen_rows(app)
            body = [line[2:].rstrip() for line in shown[1 : 1 + len(expected)]]  # border, pad
            assert body == expected, piece
        view.flush()
        assert view.source == "".join(MARKDOWN_PIECES)


async def test_text_parsed_during_a_layout_reaches_the_screen() -> None:
    """Text that arrives within a parse interval waits for its flush, even when a layout comes first
    (a layout that parsed it left the rows it did not repaint blank on screen)."""
    app = StreamApp()
    async with app.run_test(size=(60, 30)) as pilot:
        view = app.query_one(StreamingView)
        for piece in MARKDOWN_PIECES:
            half = len(piece) // 2
            view.append(piece[:half])  # painted now
            view.append(piece[half:])  # too soon: waits for the next flush
            view.parent.refresh(layout=True)  # something else lays the screen out meanwhile
            await pilot.pause()
            await asyncio.sleep(2 * PARSE_INTERVAL)
            await pilot.pause()
            await pilot.pause()
            expected = [line.plain.rstrip() for line in view.body_lines(view.size.width)]
            shown = screen_rows(app)
            body = [line[2:].rstrip() for line in shown[1 : 1 + len(expected)]]
            assert body == expected, piece


async def test_text_handed_over_while_the_loop_was_busy_goes_out_in_the_next_flush() -> None:
    """A timed flush comes after the tokens that arrived while the loop was busy (a long
    layout): they are in it, not in the next one."""
    app = StreamApp()
    async with app.run_test(size=(60, 30)):
        view = app.query_one(StreamingView)
        tokens: asyncio.Queue[str] = asyncio.Queue()

        async def consume() -> None:  # what the chat screen does with an engine's stream
            while True:
                view.append(await tokens.get())

        consumer = asyncio.create_task(consume())
        flushed: list[str] = []
        view.on_flush = lambda: flushed.append(view.text)
        loop = asyncio.get_running_loop()

        def busy() -> None:
            time.sleep(2 * PARSE_INTERVAL)  # the next flush falls due meanwhile
            loop.call_soon(tokens.put_nowait, "three ")  # an engine thread's hand-over

        await asyncio.sleep(2 * PARSE_INTERVAL)
        view.append("one ")  # goes out now
        view.append("two ")  # waits for the next flush
        loop.call_soon(busy)
        await asyncio.sleep(4 * PARSE_INTERVAL)
        consumer.cancel()
        assert flushed[:2] == ["one ", "one two three "]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(streaming.time, "monotonic", lambda: now[0])
    return now


def test_a_slow_stream_keeps_no_blank_lines(clock: list[float]) -> None:
    view = StreamingView()
    for lines in range(1, 8):
        assert view.reserve_height(lines) == lines
        clock[0] += 1.0  # a line a second


def test_a_fast_stream_keeps_room_for_a_quarter_second(clock: list[float]) -> None:
    view = StreamingView()
    height, leads = 0, []
    for lines in range(1, 101):  # 100 lines a second for 1 s
        grown = view.reserve_height(lines)
        assert grown >= lines
        if grown != height:
            leads.append(grown - lines)
            height = grown
        clock[0] += 0.01
    assert leads[0] == 0  # nothing known yet
    assert leads[-1] == pytest.approx(100 * streaming.LEAD, abs=2)
    # once the rate is known: a few layouts in the last 0.75 s instead of one per line
    assert len([lead for lead in leads if lead]) <= 4
    assert view.reserve_height(lines) == height  # within the room, the height stays put


def test_a_burst_is_not_taken_for_a_fast_stream(clock: list[float]) -> None:
    view = StreamingView()
    for lines in (1, 10, 40):  # all at once: nothing to go on yet
        assert view.reserve_height(lines) == lines


def test_the_room_is_capped(clock: list[float]) -> None:
    view = StreamingView()
    leads = []
    for lines in range(1, 2000, 20):  # 2,000 lines a second
        leads.append(view.reserve_height(lines) - lines)
        clock[0] += 0.01
    assert max(leads) == streaming.MAX_LEAD_LINES


async def test_the_room_leaves_the_text_in_sight_in_a_small_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = StreamApp()
    async with app.run_test(size=(60, 12)):
        view = app.query_one(StreamingView)
        rows = view.parent.scrollable_content_region.height
        now, leads = [streaming.time.monotonic()], []
        with monkeypatch.context() as patched:  # no awaiting while the clock is held
            patched.setattr(streaming.time, "monotonic", lambda: now[0])
            for lines in range(1, 400, 4):  # 400 lines a second
                leads.append(view.reserve_height(lines) - lines)
                now[0] += 0.01
        assert max(leads) == rows - streaming.LINES_IN_SIGHT < streaming.MAX_LEAD_LINES


class CountedStream(StreamingView, CountsLayouts):
    """Counts the layouts it asks for."""


class CountedStreamApp(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield CountedStream("model")


async def test_a_new_status_reaches_the_screen_without_a_layout() -> None:
    app = CountedStreamApp()
    async with app.run_test(size=(60, 30)) as pilot:
        view = app.query_one(CountedStream)
        view.append("Some text.")
        view.status = "thinking…"
        await pilot.pause()
        layouts = view.layouts
        view.status = "writing…"
        await pilot.pause()
        await pilot.pause()
        assert "model  writing…" in screen_rows(app)[0]
        view.set_footer("42 tok · 11.0 tok/s")
        await pilot.pause()
        await pilot.pause()
        assert "model  42 tok · 11.0 tok/s" in screen_rows(app)[0]
        assert view.layouts == layouts  # the header kept its height: no layout
