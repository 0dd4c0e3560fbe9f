"""The latency panel: wait-k, words read and written, the lag, the queue and the metrics.

The sentence column holds the live AL/LAAL/AP/DAL of the sentence being translated
(`TargetWord.metrics`, |X| = source words read so far), then its final values
(`SegmentDone.metrics`); the session column averages the finished sentences.
"""

from __future__ import annotations

import math

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from mlxchat.translate.metrics import METRICS


def format_metric(value: float | None) -> str:
    """A metric with three decimals, or "—" when undefined."""
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.3f}"


class LatencyPanel(Widget):
    """Live numbers about the simultaneous translation.

    Reactives:
        wait_k: The k of the sentence being translated (or the last one).
        next_wait_k: The k the next sentence will use.
        sentence: The sentence shown, from 0 (-1 before the first).
        sentences: How many sentences the source has (0 when unknown: live typing).
        read: Source words read in that sentence.
        written: Target words written in that sentence.
        queued: Source words that arrived but are not read yet.
        source_done: Every source word of the sentence is read (the lag then says "done").
        state: A word about what happens ("loading", "waiting", "translating", "idle", …).
        sentence_metrics: The sentence's metrics (live, then final).
        session_metrics: The metrics averaged over the finished sentences.
        finished: How many sentences the averages cover.
    """

    DEFAULT_CSS = """
    LatencyPanel {
        height: auto;
        padding: 0 1;
    }
    """

    wait_k: reactive[int] = reactive(3)
    next_wait_k: reactive[int] = reactive(3)
    sentence: reactive[int] = reactive(-1)
    sentences: reactive[int] = reactive(0)
    read: reactive[int] = reactive(0)
    written: reactive[int] = reactive(0)
    queued: reactive[int] = reactive(0)
    source_done: reactive[bool] = reactive(False)
    state: reactive[str] = reactive("idle")
    sentence_metrics: reactive[dict[str, float]] = reactive(dict, always_update=True)
    session_metrics: reactive[dict[str, float]] = reactive(dict, always_update=True)
    finished: reactive[int] = reactive(0)

    @property
    def lag(self) -> int:
        """Source words read minus target words written; never negative (a target may
        have more words than its source: that is no lead on the speaker)."""
        return max(self.read - self.written, 0)

    @property
    def lag_text(self) -> str:
        """The lag as shown: a word count while the source arrives, then "done"."""
        return "done" if self.source_done else str(self.lag)

    def render(self) -> Content:
        """The panel's lines."""
        muted = "$text-muted"
        k: list[tuple[str, str] | str] = [("wait-k ", muted), (str(self.wait_k), "bold $accent")]
        if self.next_wait_k != self.wait_k:
            k += ["  → ", (str(self.next_wait_k), "bold $warning"), (" next sentence", muted)]
        number = "—" if self.sentence < 0 else str(self.sentence + 1)
        of = f" of {self.sentences}" if self.sentences else ""
        late = not self.source_done and self.lag > self.wait_k
        lag_style = "bold $warning" if late else "bold"
        queued_style = "bold $warning" if self.queued else "bold"
        lines = [
            Content.assemble(*k),
            Content.assemble(
                ("sentence ", muted), f"{number}{of}", ("  ", ""), (self.state, muted)
            ),
            Content.assemble(
                ("read    ", muted),
                (f"{self.read:<5}", "bold"),
                ("written ", muted),
                (str(self.written), "bold"),
            ),
            Content.assemble(
                ("lag     ", muted),
                (f"{self.lag_text:<5}", lag_style),
                ("queued  ", muted),
                (str(self.queued), queued_style),
            ),
            Content(""),
            Content.assemble(
                ("      ", ""),
                ("sentence", muted),
                ("   ", ""),
                (f"session ({self.finished})", muted),
            ),
        ]
        for name in METRICS:
            lines.append(
                Content.assemble(
                    (f"{name:<6}", "bold"),
                    f"{format_metric(self.sentence_metrics.get(name)):>8}",
                    f"{format_metric(self.session_metrics.get(name)):>12}",
                )
            )
        return Content("\n").join(lines)
