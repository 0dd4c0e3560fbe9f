"""The translate screen with the real engine on a tiny random model (Pilot tests)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlxchat.engine.engine import Engine
from mlxchat.translate.events import SegmentDone, SourceRead, TargetWord, TranslationEvent
from mlxchat.translate.metrics import latency_metrics
from mlxchat.translate.settings import WaitKSettings
from mlxchat.ui.translate.app import TranslateApp
from mlxchat.ui.translate.latency_panel import format_metric
from mlxchat.ui.translate.screen import live_translation_factory
from mlxchat.ui.translate.target_pane import TargetPane

from .translate_helpers import SIZE, idle, screen_of, type_words, until

SOURCE = "The cat sat on the mat. It was very happy."


class Recorder:
    """Makes real `LiveTranslation`s and records every event they yield."""

    def __init__(self, engine: Any) -> None:
        self.inner = live_translation_factory(engine)
        self.events: list[TranslationEvent] = []

    def __call__(self, settings: WaitKSettings) -> Any:
        return Recording(self.inner(settings), self.events)


class Recording:
    """A `LiveTranslation` whose events are copied to a list."""

    def __init__(self, live: Any, events: list[TranslationEvent]) -> None:
        self.live = live
        self.events = events
        self.settings = live.settings

    async def _copy(self, stream: Any) -> AsyncIterator[TranslationEvent]:
        async for event in stream:
            self.events.append(event)
            yield event

    def feed(self, word: str, **kw: Any) -> AsyncIterator[TranslationEvent]:
        return self._copy(self.live.feed(word, **kw))

    def finish(self) -> AsyncIterator[TranslationEvent]:
        return self._copy(self.live.finish())

    def prepare(self) -> AsyncIterator[TranslationEvent]:
        return self._copy(self.live.prepare())

    def cancel(self) -> None:
        self.live.cancel()


def app_for(engine: Any, settings: WaitKSettings, **kw: Any) -> TranslateApp:
    kw.setdefault("model", None)
    kw.setdefault("theme", "mlxchat-dark")
    return TranslateApp(engine, settings, **kw)


async def test_playback_shows_translation_and_metrics(tiny_engine, quick) -> None:
    recorder = Recorder(tiny_engine)
    app = app_for(tiny_engine, quick, source=SOURCE, wpm=60_000, factory=recorder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await until(
            pilot, lambda: len(screen.sentences) == 2 and all(r.done for r in screen.sentences)
        )
        await idle(pilot, screen)
        done = [e for e in recorder.events if isinstance(e, SegmentDone)]
        assert [d.source for d in done] == ["The cat sat on the mat.", "It was very happy."]
        # the target pane shows each sentence's text, a paragraph per sentence
        assert screen.target_pane.text.strip()
        for record, event in zip(screen.sentences, done, strict=True):
            assert record.delays == list(event.delays)
            assert record.delays[0] == quick.wait_k
            assert record.text.strip()
            expected = latency_metrics(event.delays, len(event.source_words))
            assert record.metrics == expected
        # the panel shows the last sentence, and the session averages
        panel = screen.panel
        last = done[-1]
        assert (panel.read, panel.written) == (len(last.source_words), len(last.delays))
        assert panel.sentence_metrics == latency_metrics(last.delays, len(last.source_words))
        shown = panel.render().plain
        for name, value in panel.sentence_metrics.items():
            assert f"{name}" in shown and format_metric(value) in shown
        for name in ("AL", "LAAL", "AP", "DAL"):
            values = [latency_metrics(d.delays, len(d.source_words))[name] for d in done]
            assert math.isclose(panel.session_metrics[name], sum(values) / len(values))
        # every target word is in the alignment table with its delay
        rows = screen.alignment.rows_text
        words = [e for e in recorder.events if isinstance(e, TargetWord) and e.segment == 1]
        assert [int(r[2]) for r in rows] == [w.delay for w in words]
        reads = [e for e in recorder.events if isinstance(e, SourceRead)]
        assert [r.word for r in reads] == SOURCE.split()
        assert screen.status.stats is not None and screen.status.stats.generation_tokens > 0


async def test_typed_words_are_read_and_enter_ends_the_sentence(tiny_engine, quick) -> None:
    app = app_for(tiny_engine, quick)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await type_words(pilot, "The cat sat on", keys=True)
        await idle(pilot, screen)
        record = screen.sentences[0]
        assert record.words == ["The", "cat", "sat"]  # "on" is still being typed
        assert screen.query_one("#source-input").value == "on"
        assert record.read == 3
        assert record.delays == [2, 3]
        assert screen.panel.read == 3 and screen.panel.written == 2 and screen.panel.lag == 1
        assert not record.done
        await pilot.press("enter")
        await until(pilot, lambda: record.done)
        assert record.read == 4 and record.source_length == 4
        assert record.delays[:3] == [2, 3, 4]
        assert record.metrics == latency_metrics(record.delays, 4)
        assert screen.query_one("#source-input").value == ""
        # a new sentence starts with the next word
        await type_words(pilot, "Hello world. ")
        await until(pilot, lambda: len(screen.sentences) == 2 and screen.sentences[1].done)
        assert screen.sentences[1].words == ["Hello", "world."]


async def test_wait_k_change_applies_from_the_next_sentence(tiny_engine, quick) -> None:
    app = app_for(tiny_engine, quick)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await type_words(pilot, "The cat sat")
        await idle(pilot, screen)
        await pilot.press("ctrl+up")  # works while typing: the running sentence keeps k=2
        assert screen.settings.wait_k == 3 and screen.panel.next_wait_k == 3
        assert screen.panel.wait_k == 2
        await type_words(pilot, " on the mat. ")
        await until(pilot, lambda: screen.sentences[0].done)
        assert screen.sentences[0].delays[0] == 2
        await pilot.press("escape")  # idle: leaves the input, so + and - are keys
        assert screen.focused is None
        await pilot.press("+", "+", "-")
        assert screen.settings.wait_k == 4
        screen.query_one("#source-input").focus()
        await type_words(pilot, "It was very happy today. ")
        await until(pilot, lambda: len(screen.sentences) == 2 and screen.sentences[1].done)
        second = screen.sentences[1]
        assert second.wait_k == 4 and second.delays[0] == 4
        assert screen.panel.wait_k == 4


async def test_target_text_is_never_erased(tiny_engine, quick, monkeypatch) -> None:
    seen: list[str] = []
    append, end = TargetPane.append, TargetPane.end

    def spy_append(pane: TargetPane, sentence: int, text: str) -> None:
        append(pane, sentence, text)
        seen.append(pane.text)

    def spy_end(pane: TargetPane, sentence: int, reason: str) -> None:
        end(pane, sentence, reason)
        seen.append(pane.text)

    monkeypatch.setattr(TargetPane, "append", spy_append)
    monkeypatch.setattr(TargetPane, "end", spy_end)
    app = app_for(tiny_engine, quick, source=SOURCE + " We like tea.", wpm=6_000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_of(pilot)
        await until(
            pilot, lambda: len(screen.sentences) == 3 and all(r.done for r in screen.sentences)
        )
        pane = screen.target_pane
        assert len(seen) > 10
        for before, after in zip(seen, seen[1:], strict=False):
            assert after.startswith(before)
        assert pane.text.count("\n") == 2  # a line per sentence
        shown = [str(p.render()) for p in pane.query("Paragraph")]
        assert "\n".join(shown) == pane.text


async def test_model_loads_in_the_background_and_typed_words_wait(tiny_llama: Path, quick) -> None:
    engine = Engine()
    try:
        app = app_for(engine, quick, model=str(tiny_llama))
        async with app.run_test(size=SIZE) as pilot:
            screen = await screen_of(pilot)
            await type_words(pilot, "The cat sat on the mat. ")
            await until(pilot, lambda: bool(screen.sentences) and screen.sentences[0].done)
            assert screen.sentences[0].read == 6
            assert screen.status.model == str(tiny_llama)
            assert screen.failed is None
    finally:
        engine.close()


async def test_escape_cancels_a_running_translation(tiny_endless: Path) -> None:
    engine = Engine()
    engine.load_sync(str(tiny_endless))
    # Only Esc may end it: no line break ends the sentence, no long word cuts it (so the
    # endless model's own line breaks may show in the first sentence's text).
    settings = WaitKSettings(
        wait_k=1, max_new_words=400, max_tokens_per_word=16, stop_at_newline=False
    )
    settings = replace(settings, cut_ends_segment=False)
    try:
        app = app_for(engine, settings, source="One two. Three four.", wpm=60_000)
        async with app.run_test(size=SIZE) as pilot:
            screen = await screen_of(pilot)
            await until(pilot, lambda: screen.sentences[0].written >= 3)
            await pilot.press("escape")
            await idle(pilot, screen)
            first, second = screen.sentences
            assert first.finish_reason == "cancelled"
            assert screen.target_pane.text.endswith("stopped")
            assert second.finish_reason == "cancelled" and second.read == 0  # dropped
            assert second.text == "" and not second.target_words  # it wrote nothing
            written = first.written
            await pilot.pause(0.1)
            assert first.written == written  # nothing more arrives for it
    finally:
        engine.close()
