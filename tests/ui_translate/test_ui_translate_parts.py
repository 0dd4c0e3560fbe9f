"""The translate screen's parts on their own: typing, the plot, averages, the runner."""

from __future__ import annotations

import asyncio
import math

from mlxchat.translate.events import SegmentDone, SourceRead, TargetWord
from mlxchat.translate.metrics import latency_metrics
from mlxchat.translate.policy import wait_k_delays
from mlxchat.translate.runner import EndSentence, Runner, SourceWord
from mlxchat.translate.settings import WaitKSettings
from mlxchat.ui.translate.delay_plot import DOT, LINE, plot_lines
from mlxchat.ui.translate.latency_panel import format_metric
from mlxchat.ui.translate.session import SentenceRecord, count_finished, session_averages
from mlxchat.ui.translate.source_pane import split_typed

from .fake_translation import FakeFactory


def test_split_typed_sends_words_followed_by_whitespace() -> None:
    assert split_typed("") == ([], "")
    assert split_typed("Hel") == ([], "Hel")
    assert split_typed("Hello ") == (["Hello"], "")
    assert split_typed("Hello wor") == (["Hello"], "wor")
    assert split_typed("  a  b\tc") == (["a", "b"], "c")
    assert split_typed(" ") == ([], "")


def test_plot_puts_delays_on_the_ideal_line() -> None:
    delays = wait_k_delays(3, 6, 7)  # [3, 4, 5, 6, 6, 6, 6]
    lines = [line.plain for line in plot_lines(delays, 3, 6, 40, 10)]
    grid = lines[:-2]
    assert len(grid) == 6  # one row per source word count, 6 at the top
    assert grid[0].startswith("6┤") and grid[-1].startswith("1┤")
    columns = {t: 2 + 2 * (t - 1) for t in range(1, 9)}
    for t, d in enumerate(delays, 1):
        assert grid[6 - d][columns[t]] == DOT
    assert grid[0][columns[8]] == LINE  # the next word's place on g(t)
    assert lines[-2].lstrip().startswith("└") and lines[-1].split()[0] == "1"


def test_plot_scrolls_and_scales_when_small() -> None:
    delays = wait_k_delays(2, 40, 44)
    lines = plot_lines(delays, 2, 40, 20, 6)
    assert len(lines) == 6
    assert all(line.cell_length <= 20 for line in lines)
    assert lines[-1].plain.split()[-1] == "45"  # the latest target words are shown


def test_session_averages_skip_cancelled_and_undefined() -> None:
    a = SentenceRecord(0, metrics=latency_metrics([2, 3], 3), finish_reason="stop")
    b = SentenceRecord(1, metrics=latency_metrics([1, 2, 3], 3), finish_reason="length")
    c = SentenceRecord(2, metrics=latency_metrics([9], 9), finish_reason="cancelled")
    d = SentenceRecord(3, metrics=latency_metrics([], 3), finish_reason="stop")  # all nan
    e = SentenceRecord(4, metrics={"AL": 7.0})  # still running
    averages = session_averages([a, b, c, d, e])
    for name in ("AL", "LAAL", "AP", "DAL"):
        assert math.isclose(averages[name], (a.metrics[name] + b.metrics[name]) / 2)
    assert count_finished([a, b, c, d, e]) == 3
    assert all(math.isnan(v) for v in session_averages([]).values())
    assert format_metric(math.nan) == "—" and format_metric(2.0) == "2.000"


def test_record_alignment_names_the_last_source_word_read() -> None:
    record = SentenceRecord(
        0, words=["a", "b", "c"], read=3, target_words=["x", "y"], delays=[2, 3]
    )
    assert record.alignment == [("x", 2, "b"), ("y", 3, "c")]
    assert record.written == 2 and record.lag == 1


async def test_runner_feeds_in_order_and_changes_k_between_sentences() -> None:
    factory = FakeFactory()
    seen: list[tuple[int, str, int]] = []

    def on_event(item, event) -> None:
        seen.append((item.sentence, type(event).__name__, event.source_words_read))

    runner = Runner(factory, WaitKSettings(wait_k=2), on_event)
    task = asyncio.create_task(runner.run())
    for i, word in enumerate(["a", "b", "c"]):
        runner.put(SourceWord(0, i, word))
    assert runner.queued == 3 and not runner.ready
    runner.settings = WaitKSettings(wait_k=1)  # before the model is ready: used at once
    runner.set_ready()
    await asyncio.sleep(0.05)
    assert not runner.busy
    runner.settings = WaitKSettings(wait_k=3)  # mid-sentence: from the next one
    runner.put(SourceWord(0, 3, "d"))
    runner.put(EndSentence(0))
    runner.put(SourceWord(1, 0, "e", last=True))
    await asyncio.sleep(0.05)
    task.cancel()
    assert [t.settings.wait_k for t in factory.made] == [1, 3]
    assert factory.made[0].calls == [
        ("prepare", None),
        ("feed", "a"),
        ("feed", "b"),
        ("feed", "c"),
        ("feed", "d"),
        ("finish", None),
    ]
    assert factory.made[1].calls == [("feed", "e")]
    reads = [s for s in seen if s[1] == SourceRead.__name__]
    assert [r[2] for r in reads] == [1, 2, 3, 4, 1]
    assert [s[0] for s in seen if s[1] == SegmentDone.__name__] == [0, 1]
    assert sum(s[1] == TargetWord.__name__ for s in seen) == 5


async def test_runner_cancel_drops_the_queue_and_ignores_late_events() -> None:
    factory = FakeFactory()
    factory.hold_after(1)
    seen: list[str] = []
    runner = Runner(factory, WaitKSettings(wait_k=1), lambda i, e: seen.append(type(e).__name__))
    task = asyncio.create_task(runner.run())
    runner.set_ready()
    for i, word in enumerate(["a", "b", "c"]):
        runner.put(SourceWord(0, i, word))
    await asyncio.sleep(0.02)
    assert runner.current is not None and runner.queued == 2
    dropped = runner.cancel()
    assert [d.word for d in dropped] == ["b", "c"]  # type: ignore[union-attr]
    await asyncio.sleep(0.02)
    assert seen == ["SourceRead"] and not runner.busy
    runner.put(SourceWord(1, 0, "z", last=True))
    await asyncio.sleep(0.02)
    task.cancel()
    assert len(factory.made) == 2 and factory.made[0].cancelled  # then a fresh one
    assert factory.made[1].calls == [("feed", "z")]
    assert seen[-1] == "SegmentDone"


async def test_runner_reports_engine_errors_and_goes_on() -> None:
    class Broken(FakeFactory):
        def __call__(self, settings):  # type: ignore[override]
            translation = super().__call__(settings)

            async def fail(word: str, **kw):
                raise RuntimeError("no model is loaded")
                yield

            if len(self.made) == 2:
                translation.feed = fail  # type: ignore[method-assign]
            return translation

    errors: list[tuple[object, str]] = []
    runner = Runner(
        Broken(),
        WaitKSettings(),
        lambda i, e: None,
        lambda item, error: errors.append((item, str(error))),
    )
    task = asyncio.create_task(runner.run())
    runner.set_ready()
    await asyncio.sleep(0.01)
    runner.live = None  # make the next sentence use a fresh (broken) translation
    runner.put(SourceWord(0, 0, "a"))
    runner.put(SourceWord(1, 0, "b", last=True))
    await asyncio.sleep(0.02)
    task.cancel()
    assert [(getattr(item, "word", None), text) for item, text in errors] == [
        ("a", "no model is loaded")
    ]
    assert runner.live is not None and runner.live.calls == [("feed", "b")]  # type: ignore[attr-defined]


async def test_runner_survives_a_translation_that_fails_to_start_or_feed() -> None:
    class Failing(FakeFactory):
        def __call__(self, settings):  # type: ignore[override]
            if len(self.made) == 1 and not getattr(self, "refused", False):
                self.refused = True
                raise RuntimeError("the engine was closed")  # the second one cannot be made
            translation = super().__call__(settings)
            if len(self.made) == 2:

                def refuse(word: str, **kw):  # fails when called, not when iterated
                    raise ValueError("bad word")

                translation.feed = refuse  # type: ignore[method-assign]
            return translation

    errors: list[tuple[object, str]] = []
    runner = Runner(
        Failing(),
        WaitKSettings(),
        lambda i, e: None,
        lambda item, error: errors.append((getattr(item, "word", None), str(error))),
    )
    task = asyncio.create_task(runner.run())
    runner.set_ready()
    await asyncio.sleep(0.01)
    runner.live = None  # each sentence below needs a new translation
    runner.put(SourceWord(0, 0, "a", last=True))
    await asyncio.sleep(0.02)
    runner.put(SourceWord(1, 0, "b", last=True))
    await asyncio.sleep(0.02)
    runner.put(SourceWord(2, 0, "c", last=True))
    await asyncio.sleep(0.02)
    assert not task.done(), task  # the loop lives on
    assert errors == [("a", "the engine was closed"), ("b", "bad word")]
    assert not runner.busy  # nothing stuck in the queue: the screen says idle
    assert runner.live is not None and runner.live.calls == [("feed", "c")]  # type: ignore[attr-defined]
    task.cancel()
