"""What the translate screen says about progress: the status while the instructions are
prefilled; the lag (words behind the speaker, never negative, "done" at the end)."""

from __future__ import annotations

import re

from textual.app import App, ComposeResult

from mlxchat.translate.decoding import WaitKSettings
from mlxchat.ui.translate.app import TranslateApp
from mlxchat.ui.translate.latency_panel import LatencyPanel

from .fake_translation import FakeFactory
from .translate_helpers import SIZE, idle, loaded_engine, screen_of, type_words, until


def lag_shown(panel: LatencyPanel) -> str:
    """What the panel's lag line says."""
    line = next(x for x in panel.render().plain.splitlines() if x.startswith("lag"))
    return re.match(r"lag\s+(\S+)", line).group(1)


class PanelApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LatencyPanel()


async def test_more_target_words_than_source_words_is_no_negative_lag() -> None:
    async with PanelApp().run_test() as pilot:
        panel = pilot.app.query_one(LatencyPanel)
        panel.read, panel.written = 5, 2
        assert lag_shown(panel) == "3"
        panel.read, panel.written = 5, 8  # the translation took more words than the source
        assert lag_shown(panel) == "0"
        panel.source_done = True
        assert lag_shown(panel) == "done"


async def test_lag_while_typing_then_done_when_the_sentence_ends(factory: FakeFactory) -> None:
    app = TranslateApp(loaded_engine(), WaitKSettings(wait_k=3), factory=factory, model=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await type_words(pilot, "The cat sat on ")
        await idle(pilot, screen)
        assert lag_shown(screen.panel) == "2"  # wait-3: 4 read, 2 written
        await type_words(pilot, "the mat. ")
        await until(pilot, lambda: screen.sentences[0].done)
        await pilot.pause()
        assert lag_shown(screen.panel) == "done"


async def test_status_says_prefill_while_the_instructions_are_read(factory: FakeFactory) -> None:
    factory.hold_after(0)  # the prefill of the instructions waits
    app = TranslateApp(loaded_engine(), WaitKSettings(wait_k=2), factory=factory, model=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await type_words(pilot, "Hello ")
        status = str(screen.status.render())
        assert "prefill instructions" in status and "idle" not in status
        assert screen.panel.state == "reading the instructions"
        factory.release()
        await idle(pilot, screen)
        assert "prefill" not in str(screen.status.render())
