"""SVG snapshots of the translate screen, driven by scripted translations (stable output).

Update them after a deliberate change with ``pytest tests/ui_translate --snapshot-update``
and look at the SVGs under ``__snapshots__/`` before committing.
"""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Input
from ui.fake_engine import FakeEngine

from mlxchat.translate.settings import WaitKSettings
from mlxchat.ui.translate.app import TranslateApp

from .fake_translation import FakeFactory
from .translate_helpers import SIZE, idle, loaded_engine, screen_of, until

SOURCE = "The cat sat on the mat. It was very happy. A dog runs in the park."


def make_app(factory: FakeFactory, engine: FakeEngine | None = None, **kw: object) -> TranslateApp:
    if engine is None:
        engine = loaded_engine()
    return TranslateApp(
        engine,
        WaitKSettings(wait_k=kw.pop("k", 3)),  # type: ignore[arg-type]
        model=kw.pop("model", None),  # type: ignore[arg-type]
        theme="mlxchat-dark",
        factory=factory,
        **kw,  # type: ignore[arg-type]
    )


async def settle(pilot: Pilot) -> None:
    """Let the status bar's timer repaint the latest numbers."""
    await pilot.pause(0.35)
    await pilot.pause()


def test_mid_translation(snap_compare, factory: FakeFactory) -> None:
    """Sentence 2 being read: words read, the word being read, queued words, live metrics."""
    factory.hold_after(9)
    app = make_app(factory, source=SOURCE, wpm=60_000)

    async def run_before(pilot: Pilot) -> None:
        screen = await screen_of(pilot)
        await until(pilot, lambda: not screen.playing and factory.reads == 9)
        await pilot.press("plus")  # k = 4 from the next sentence
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_finished(snap_compare, factory: FakeFactory) -> None:
    """Three sentences translated: the last one's alignment and plot, session averages."""
    app = make_app(factory, source=SOURCE, wpm=60_000, k=2)

    async def run_before(pilot: Pilot) -> None:
        screen = await screen_of(pilot)
        await until(pilot, lambda: all(r.done for r in screen.sentences))
        await idle(pilot, screen)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_model_failed_while_typing(snap_compare, factory: FakeFactory) -> None:
    """The load failed: the error is shown, typed words wait in the queue."""
    engine = FakeEngine(load_error="cannot find model 'nope'; run `mlxchat models` to list them")
    app = make_app(factory, engine, model="nope")

    async def run_before(pilot: Pilot) -> None:
        screen = await screen_of(pilot)
        field = screen.query_one("#source-input", Input)
        field.cursor_blink = False
        await until(pilot, lambda: screen.failed is not None)
        field.insert_text_at_cursor("Hello there wor")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
