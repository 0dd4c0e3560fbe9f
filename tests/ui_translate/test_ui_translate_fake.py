"""The translate screen with scripted translations: queueing, loading, errors, keys."""

from __future__ import annotations

from typing import Any

from pilot_helpers import screen_rows, screenshot_text
from textual.app import App
from textual.widgets import Input, Static
from ui.fake_engine import FakeEngine

from mlxchat.translate.metrics import latency_metrics
from mlxchat.translate.settings import WaitKSettings
from mlxchat.ui.translate.app import TranslateApp
from mlxchat.ui.translate.screen import TranslateScreen

from .fake_translation import FakeFactory
from .translate_helpers import SIZE, idle, loaded_engine, screen_of, type_words, until

SOURCE = "The cat sat on the mat. It was very happy."


def app_for(engine: Any, factory: FakeFactory, k: int = 3, **kw: Any) -> TranslateApp:
    kw.setdefault("model", None)
    kw.setdefault("theme", "mlxchat-dark")
    return TranslateApp(engine, WaitKSettings(wait_k=k), factory=factory, **kw)


async def test_words_typed_before_the_model_is_ready_wait_in_the_queue(factory) -> None:
    engine = FakeEngine()
    engine.hold_loads()
    app = app_for(engine, factory, k=2, model="fake-model")
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        assert screen.status.state == "loading"
        await type_words(pilot, "The cat sat ")
        assert not screen.runner.ready
        assert screen.panel.queued == 3 and screen.sentences[0].read == 0
        assert screen.source_pane.line(0).states == ["queued"] * 3
        assert "queued  3" in screen.panel.render().plain
        engine.release_loads()
        await until(pilot, lambda: screen.runner.ready)
        await idle(pilot, screen)
        assert engine.loads == ["fake-model"]
        record = screen.sentences[0]
        assert record.read == 3 and record.delays == [2, 3]
        assert screen.panel.queued == 0
        assert screen.source_pane.line(0).states == ["read"] * 3
        assert screen.status.state == "idle"
        assert [call[1] for call in factory.made[0].calls] == [None, "The", "cat", "sat"]


async def test_a_failed_load_is_shown_and_the_screen_goes_on(factory) -> None:
    engine = FakeEngine(load_error="cannot find model 'nope'; try `mlxchat models`")
    app = app_for(engine, factory, model="nope")
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await until(pilot, lambda: screen.failed is not None)
        error = screen.query_one("#error", Static)
        assert error.display and "cannot find model 'nope'" in str(error.render())
        assert screen.status.state == "error"
        await type_words(pilot, "Hello there ")
        assert screen.panel.queued == 2 and app.is_running
        await pilot.press("escape")  # drops the queued words
        assert screen.panel.queued == 0
        assert screen.source_pane.line(0).states == ["dropped", "dropped"]
        await pilot.press("escape", "q")
    assert app.return_code == 0


async def test_without_a_model_it_waits_for_one_loaded_elsewhere(factory) -> None:
    engine = FakeEngine()
    app = app_for(engine, factory, k=1)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await type_words(pilot, "Hello world. ")
        assert screen.panel.queued == 2 and screen.failed is None
        assert "waiting for one" in str(screen.query_one("#error", Static).render())
        await engine.load("fake-model")  # as the chat would
        await until(pilot, lambda: bool(screen.sentences) and screen.sentences[0].done)
        assert not screen.query_one("#error", Static).display
        assert screen.status.model == "fake-model"
        assert screen.sentences[0].delays == [1, 2]


async def test_words_arriving_faster_than_the_translator_queue_up(factory) -> None:
    factory.hold_after(2)
    app = app_for(loaded_engine(), factory, k=1, source=SOURCE, wpm=60_000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await until(pilot, lambda: not screen.playing and factory.reads == 2)
        await pilot.pause()
        assert screen.panel.queued == 8  # 10 words arrived, 2 read
        assert screen.panel.read == 2 and screen.panel.written == 1 and screen.panel.lag == 1
        assert screen.source_pane.line(0).states == ["read"] * 2 + ["queued"] * 4
        assert screen.source_pane.line(0).current == 1
        factory.release()
        await idle(pilot, screen)
        assert [r.delays for r in screen.sentences] == [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4]]
        assert screen.panel.queued == 0


async def test_escape_cancels_and_ctrl_r_restarts(factory) -> None:
    factory.hold_after(4)
    app = app_for(loaded_engine(), factory, source=SOURCE, wpm=60_000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await until(pilot, lambda: not screen.playing and factory.reads == 4)
        await pilot.press("escape")
        await idle(pilot, screen)
        first, second = screen.sentences
        assert first.finish_reason == "cancelled" and first.written == 1
        assert second.finish_reason == "cancelled" and second.read == 0
        assert screen.target_pane.text == "le  ⏹ stopped"
        assert screen.source_pane.line(0).states == ["read"] * 4 + ["dropped"] * 2
        assert screen.source_pane.line(1).states == ["dropped"] * 4
        assert screen.panel.finished == 0  # cancelled sentences are not averaged
        assert "Cancel" not in screen_rows(app)[-1]  # nothing left to cancel: not offered
        await pilot.press("ctrl+r")  # it asks first: the sentences would be lost
        await pilot.pause()
        assert screen.target_pane.text == "le  ⏹ stopped"
        assert any(
            "Press Ctrl+R again to clear 2 sentences" in n.message for n in app._notifications
        )
        await pilot.press("ctrl+r")
        await until(pilot, lambda: all(r.done for r in screen.sentences))
        assert [r.finish_reason for r in screen.sentences] == ["stop", "stop"]
        assert screen.target_pane.text == "le chat assis sur le tapis.\nil était très heureux."
        assert screen.panel.finished == 2
        assert len(factory.made) >= 2 and factory.made[-1].settings.wait_k == 3


async def test_metrics_and_alignment_follow_the_events(factory) -> None:
    app = app_for(loaded_engine(), factory, k=2, source=SOURCE, wpm=60_000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await until(pilot, lambda: all(r.done for r in screen.sentences))
        await idle(pilot, screen)
        second = screen.sentences[1]
        assert second.delays == [2, 3, 4, 4]
        assert screen.panel.sentence_metrics == latency_metrics([2, 3, 4, 4], 4)
        assert screen.alignment.rows_text == [
            ("1", "il", "2", "was"),
            ("2", "était", "3", "very"),
            ("3", "très", "4", "happy."),
            ("4", "heureux.", "4", "happy."),
        ]
        assert screen.plot.delays == (2, 3, 4, 4) and screen.plot.source_length == 4


async def test_control_characters_in_the_output_are_escaped(factory) -> None:
    factory.control = "\x1b[31m\x07"
    app = app_for(loaded_engine(), factory, source="Hello world.\x07", wpm=60_000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await until(pilot, lambda: all(r.done for r in screen.sentences))
        assert str(screen.source_pane.line(0).render()) == "Hello world.\\x07"
        text = screen.target_pane.text
        assert "\x1b" not in text and "\x07" not in text
        assert text.startswith("bonjour\\x1b[31m\\x07 WORLD.\\x07")
        assert screen.alignment.rows_text[0][1] == "bonjour\\x1b[3…"  # cut to 14 cells


async def test_empty_source_is_reported(factory) -> None:
    app = app_for(loaded_engine(), factory, source="  \n ", wpm=100)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        assert "empty" in str(screen.query_one("#error", Static).render())
        assert not screen.busy


async def test_q_closes_the_screen_pushed_from_another_app(factory) -> None:
    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(
                TranslateScreen(
                    loaded_engine(),
                    WaitKSettings(),
                    source="Hi there.",
                    wpm=60_000,
                    factory=factory,
                )
            )

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, TranslateScreen))
        screen = app.screen
        assert isinstance(screen, TranslateScreen)
        await until(pilot, lambda: bool(screen.sentences) and screen.sentences[0].done)
        await pilot.press("q")
        await until(pilot, lambda: not isinstance(app.screen, TranslateScreen))
        assert app.is_running


def test_wpm_must_be_positive() -> None:
    import pytest

    with pytest.raises(ValueError, match="wpm"):
        TranslateScreen(loaded_engine(), WaitKSettings(), source="x", wpm=0)


async def test_the_footer_keys_work_while_typing_the_source(factory) -> None:
    app = app_for(loaded_engine(), factory, k=3)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        source = screen.query_one("#source-input", Input)
        assert source.has_focus
        assert "f5 k−1  f6 k+1  f10 Close" in screenshot_text(app)  # the footer
        await pilot.press("f6", "f6", "f5")
        assert screen.settings.wait_k == 4
        assert source.value == "" and source.has_focus
        await pilot.press("f10")
        await until(pilot, lambda: not app.is_running)


async def test_the_side_panel_shrinks_on_a_small_terminal(factory) -> None:
    app = app_for(loaded_engine(), factory)
    async with app.run_test(size=(70, 20)) as pilot:
        screen = await screen_of(pilot)
        assert screen.query_one("#side").outer_size.width == 30
        assert screen.query_one("#source").outer_size.width == 40
        assert "│DAL          —           —│" in screenshot_text(app).replace(" │", "│")


async def test_after_escape_the_screen_says_how_to_type_again(factory) -> None:
    app = app_for(loaded_engine(), factory)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        box = screen.query_one("#source-input", Input)
        await until(pilot, lambda: box.has_focus)
        assert "i Type" not in screenshot_text(app)  # typing: nothing to say
        await pilot.press("escape")
        await pilot.pause()
        assert not box.has_focus
        text = screenshot_text(app)
        assert "Press i (or Tab) to type the source again" in text and "i Type" in text
        await pilot.press("i")
        await pilot.pause()
        assert box.has_focus and box.value == ""  # the i went to focus, not into the box
        await pilot.press("escape", "tab")
        await pilot.pause()
        assert box.has_focus  # one Tab is enough
        await type_words(pilot, "Hello ")
        await until(pilot, lambda: factory.reads == 1)


async def test_the_demo_model_is_said_not_to_translate(factory) -> None:
    app = app_for(FakeEngine(loaded="demo"), factory)
    async with app.run_test(size=SIZE) as pilot:
        await screen_of(pilot)
        await until(pilot, lambda: "cannot translate" in screenshot_text(app))
        assert "try -m demo-translate" in screenshot_text(app)
    other = app_for(loaded_engine(), factory)
    async with other.run_test(size=SIZE) as pilot:
        await screen_of(pilot)
        assert "cannot translate" not in screenshot_text(other)
