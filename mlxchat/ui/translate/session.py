"""What the translate screen knows about each sentence, and the session averages (no Textual).

A `SentenceRecord` is filled from the translator's events: the source words read, the
target words with their delays, the live metrics (from `TargetWord.metrics`, |X| = words
read so far) and, once the sentence is done, its final metrics (from `SegmentDone.metrics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mlxchat.translate.metrics import METRICS


@dataclass
class SentenceRecord:
    """One source sentence and its translation so far.

    Attributes:
        index: The sentence number, from 0.
        words: The source words known so far (played back or typed, read or not).
        source_length: |X| when known (played back, or once the sentence ended).
        wait_k: The k it is translated with (set when its first word is read).
        read: Source words read by the translator.
        target_words: Target words completed, in order.
        delays: Source words read when each target word was written.
        text: The target text shown (sanitized).
        metrics: AL/LAAL/AP/DAL: live while running, final once done.
        finish_reason: None while running; "stop", "length", "cancelled" or "error".
    """

    index: int
    words: list[str] = field(default_factory=list)
    source_length: int | None = None
    wait_k: int | None = None
    read: int = 0
    target_words: list[str] = field(default_factory=list)
    delays: list[int] = field(default_factory=list)
    text: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    finish_reason: str | None = None

    @property
    def done(self) -> bool:
        """Whether the sentence is finished (translated, cut, cancelled or failed)."""
        return self.finish_reason is not None

    @property
    def written(self) -> int:
        """Target words written."""
        return len(self.delays)

    @property
    def source_read(self) -> bool:
        """Whether every word of the sentence's (known, ended) source is read."""
        return self.source_length is not None and self.read >= self.source_length

    @property
    def lag(self) -> int:
        """Source words read minus target words written."""
        return self.read - self.written

    @property
    def alignment(self) -> list[tuple[str, int, str]]:
        """(target word, source words read, the last source word read) per target word."""
        return [
            (word, delay, self.words[delay - 1] if 0 < delay <= len(self.words) else "")
            for word, delay in zip(self.target_words, self.delays, strict=False)
        ]


def session_averages(sentences: list[SentenceRecord]) -> dict[str, float]:
    """Each metric averaged over the finished sentences (cancelled ones and nan skipped)."""
    finished = [s for s in sentences if s.done and s.finish_reason not in ("cancelled", "error")]
    averages: dict[str, float] = {}
    for name in METRICS:
        values = [v for s in finished if not math.isnan(v := s.metrics.get(name, math.nan))]
        averages[name] = sum(values) / len(values) if values else math.nan
    return averages


def count_finished(sentences: list[SentenceRecord]) -> int:
    """How many sentences count in the averages."""
    return sum(1 for s in sentences if s.done and s.finish_reason not in ("cancelled", "error"))
