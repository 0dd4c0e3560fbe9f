"""The transcript: one widget drawing every message through Textual's line API.

What reaches the screen while an answer streams (and where the view stays), the strip
cache, resizes, and a 10,000-message chat. The keys (selection, cursor, find) are in
test_transcript_keys.py.
"""

from __future__ import annotations

import asyncio
import time

from pilot_helpers import screen_rows
from textual.app import App, ComposeResult

from mlxchat.ui.widgets.message import Message, MessageRecord
from mlxchat.ui.widgets.streaming import PARSE_INTERVAL, StreamingMessage
from mlxchat.ui.widgets.transcript import GUTTER, Transcript

from .helpers import MARKDOWN_PIECES, CountsLayouts

WIDTH, HEIGHT = 60, 12


class OneTranscript(App[None]):
    def compose(self) -> ComposeResult:
        yield Transcript("Say something.")


class CountedTranscript(Transcript, CountsLayouts):
    """Counts the layouts it asks for."""


class CountedApp(App[None]):
    def compose(self) -> ComposeResult:
        yield CountedTranscript()


def view_text(app: App[None]) -> list[str]:
    """The text the transcript shows, row by row (its gutter and scrollbar left out)."""
    return [row[3 : WIDTH - 2].rstrip() for row in screen_rows(app)[:HEIGHT]]


def document_in_view(transcript: Transcript) -> list[str]:
    """The document's lines that belong in the view now."""
    top = round(transcript.scroll_y)
    return [transcript.line_text(y).rstrip() for y in range(top, top + HEIGHT)]


def records(count: int) -> list[MessageRecord]:
    return [
        MessageRecord("user", f"question {n}")
        if n % 2 == 0
        else MessageRecord("assistant", f"answer {n}\n\nwith a second paragraph", label="model")
        for n in range(count)
    ]


async def test_streaming_appends_reach_the_screen_and_follow_the_bottom() -> None:
    app = OneTranscript()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        transcript = app.query_one(Transcript)
        answer = StreamingMessage("model")
        transcript.add(Message("user", "Hi"), answer)
        pieces = [*MARKDOWN_PIECES, *(f"\n\nline {n}" for n in range(12))]
        for number, piece in enumerate(pieces):
            answer.append(piece)
            await asyncio.sleep(PARSE_INTERVAL)
            await pilot.pause()
            assert view_text(app) == document_in_view(transcript), piece
            if transcript.line_count > HEIGHT:  # taller than the view: it follows the end
                assert transcript.scroll_y == transcript.max_scroll_y > 0, number
        assert view_text(app)[-2] == "line 11"  # the newest line, above the blank one
        assert answer.text == "".join(pieces)


async def test_a_view_scrolled_up_stays_put_while_an_answer_streams() -> None:
    app = OneTranscript()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        transcript = app.query_one(Transcript)
        transcript.load(records(20))
        answer = StreamingMessage("model")
        transcript.add(answer)
        await pilot.pause()
        transcript.scroll_to(y=10, animate=False)
        await pilot.pause()
        reading = view_text(app)
        assert "question" in "\n".join(reading) or "answer" in "\n".join(reading)
        for n in range(30):
            answer.append(f"\n\nnew line {n}")
            await asyncio.sleep(PARSE_INTERVAL)
        await pilot.pause()
        assert transcript.scroll_y == 10 and view_text(app) == reading  # not yanked down
        transcript.follow()  # back at the end, it follows again
        answer.append("\n\nthe very end")
        await asyncio.sleep(PARSE_INTERVAL)
        await pilot.pause()
        assert transcript.scroll_y == transcript.max_scroll_y
        assert "the very end" in view_text(app)


async def test_a_new_line_asks_for_no_layout_of_the_screen() -> None:
    """Growing taller changes the virtual size without laying the screen out (only a new
    scrollbar or width would need that)."""
    app = CountedApp()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        transcript = app.query_one(CountedTranscript)
        transcript.load(records(10))
        answer = StreamingMessage("model")
        transcript.add(answer)
        await pilot.pause()
        transcript.layouts = 0
        for n in range(5):
            answer.append(f"\n\nline {n}")
            answer.flush()
            await pilot.pause()
        assert transcript.layouts == 0
        assert view_text(app)[-2] == "line 4"


async def test_the_header_repaints_without_a_layout() -> None:
    app = CountedApp()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        transcript = app.query_one(CountedTranscript)
        answer = StreamingMessage("model")
        transcript.add(answer)
        answer.append("Some text.")
        answer.status = "thinking…"
        await pilot.pause()
        layouts = transcript.layouts
        answer.status = "writing…"
        await pilot.pause()
        assert "model  writing…" in view_text(app)
        answer.set_footer("42 tok · 11.0 tok/s")
        await pilot.pause()
        assert "model  42 tok · 11.0 tok/s" in view_text(app)
        assert transcript.layouts == layouts


async def test_a_resize_wraps_the_text_again() -> None:
    app = OneTranscript()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        transcript = app.query_one(Transcript)
        words = " ".join(f"word{n}" for n in range(30))
        transcript.add(Message("assistant", words, label="model"))
        await pilot.pause()
        wide = transcript.line_count
        await pilot.resize_terminal(30, 20)
        await pilot.pause()
        assert transcript.text_width == 30 - GUTTER
        assert transcript.line_count > wide
        rows = screen_rows(app)
        shown = " ".join(row[3:28].strip() for row in rows if "word" in row)
        assert shown.split()[-1] == "word29" and len(shown.split()) == 30


async def test_text_handed_over_while_the_loop_was_busy_goes_out_in_the_next_flush() -> None:
    """A timed flush comes after the tokens that arrived while the loop was busy (a long
    layout): they are in it, not in the next one."""
    app = OneTranscript()
    async with app.run_test(size=(WIDTH, HEIGHT)):
        transcript = app.query_one(Transcript)
        answer = StreamingMessage("model")
        transcript.add(answer)
        tokens: asyncio.Queue[str] = asyncio.Queue()

        async def consume() -> None:  # what the chat screen does with an engine's stream
            while True:
                answer.append(await tokens.get())

        consumer = asyncio.create_task(consume())
        flushed: list[str] = []
        answer.on_flush = lambda: flushed.append(answer.text)
        loop = asyncio.get_running_loop()

        def busy() -> None:
            time.sleep(2 * PARSE_INTERVAL)  # the next flush falls due meanwhile
            loop.call_soon(tokens.put_nowait, "three ")  # an engine thread's hand-over

        await asyncio.sleep(2 * PARSE_INTERVAL)
        answer.append("one ")  # goes out now
        answer.append("two ")  # waits for the next flush
        loop.call_soon(busy)
        await asyncio.sleep(4 * PARSE_INTERVAL)
        consumer.cancel()
        assert flushed[:2] == ["one ", "one two three "]


LONG_ANSWER = (
    "A paragraph with **bold** and `code` that wraps over a few lines of the view, "
    "written the way a model answers. "
    * 3
    + "\n\n```python\ndef f(x):\n    return x * 2\n```\n\n- one\n- two\n\nanswer {n}"
)


async def test_a_10000_message_chat_opens_at_the_bottom_quickly() -> None:
    """Only what is in view is laid out at once; the rest comes in the background, and
    the view keeps its place meanwhile."""
    app = OneTranscript()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        transcript = app.query_one(Transcript)
        saved = [
            MessageRecord("user", f"question {n}")
            if n % 2 == 0
            else MessageRecord("assistant", LONG_ANSWER.format(n=n), label="model")
            for n in range(10_000)
        ]
        start = time.perf_counter()
        transcript.load(saved)
        rows = view_text(app)  # the first paint
        opened = time.perf_counter() - start
        assert opened < 1.0, f"{opened:.2f} s to open"
        assert rows[-2] == "answer 9999" and rows == document_in_view(transcript)
        assert not transcript.laid_out  # the rest is still to come
        start = time.perf_counter()
        transcript.scroll_page_up(animate=False)
        rows = view_text(app)
        paged = time.perf_counter() - start
        assert paged < 0.2, f"{paged:.2f} s for a page"
        assert rows == document_in_view(transcript) and "answer 9999" not in rows
        await pilot.pause()
        watch_until = time.monotonic() + 3  # the background pass goes on; nothing moves
        while not transcript.laid_out and time.monotonic() < watch_until:
            shown = view_text(app)
            await pilot.pause(0.05)
            assert view_text(app) == shown
        assert len(transcript.messages) == 10_000


async def test_text_waiting_for_its_flush_when_the_width_changes_reaches_the_screen() -> None:
    """Text appended too soon after a flush waits for the next one; a resize meanwhile lays
    it out with the rest, and the screen shows it whole."""
    app = OneTranscript()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        transcript = app.query_one(Transcript)
        answer = StreamingMessage("model")
        transcript.add(answer)
        for number, piece in enumerate(MARKDOWN_PIECES):
            half = len(piece) // 2
            answer.append(piece[:half])  # painted now
            answer.append(piece[half:])  # too soon: waits for the next flush
            await pilot.resize_terminal(WIDTH - number % 2 * 7, HEIGHT)  # meanwhile
            await asyncio.sleep(2 * PARSE_INTERVAL)
            await pilot.pause()
            width = app.size.width
            rows = [row[3 : width - 2].rstrip() for row in screen_rows(app)[:HEIGHT]]
            assert rows == document_in_view(transcript), piece
        assert answer.body.source == "".join(MARKDOWN_PIECES)


class TranscriptAbovePanel(App[None]):
    """A transcript with a panel below it that grows, as the prompt does with new lines."""

    CSS = "Transcript { height: 1fr; } #panel { height: 1; }"

    def compose(self) -> ComposeResult:
        from textual.widgets import Static

        yield Transcript()
        yield Static("panel", id="panel")


async def test_a_view_at_the_end_stays_at_the_end_when_the_view_gets_shorter() -> None:
    app = TranscriptAbovePanel()
    async with app.run_test(size=(WIDTH, 20)) as pilot:
        transcript = app.query_one(Transcript)
        transcript.load(records(9))
        await pilot.pause()
        assert transcript.max_scroll_y > 0 and transcript.scroll_y == transcript.max_scroll_y
        panel = app.query_one("#panel")
        for height in (3, 5, 7):  # the prompt grows a line at a time (Ctrl+J)
            panel.styles.height = height
            await pilot.pause()
            assert transcript.scroll_y == transcript.max_scroll_y, height
            assert "question 8" in "\n".join(screen_rows(app)[: 20 - height])
        await pilot.resize_terminal(WIDTH, 14)  # the window shrinks
        await pilot.pause()
        assert transcript.scroll_y == transcript.max_scroll_y
        assert "question 8" in "\n".join(screen_rows(app)[: 14 - 7])
        transcript.scroll_to(y=0, animate=False, immediate=True)  # scrolled up: stays put
        await pilot.pause()
        panel.styles.height = 2
        await pilot.pause()
        assert transcript.scroll_y == 0
