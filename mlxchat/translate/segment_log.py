"""One segment's words as read and written, and the events that report them.

The local translator (`incremental.SimultaneousTranslator`) and the remote one
(`text_translation.TextTranslator`) keep one `SegmentLog` per segment (sentence)
and build their events through it: the state every event carries (`TranslationEvent`), a
written word's delay and metrics, and a finished segment's summary are worked out here once.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from mlxchat.engine.types import FinishReason, Stats
from mlxchat.translate.events import TranslationEvent
from mlxchat.translate.metrics import latency_metrics, mean_word_wait, time_to_first_word

Event = TypeVar("Event", bound=TranslationEvent)


class SegmentLog:
    """The source words read and the target words written in one segment, with their times.

    Attributes:
        index: The segment's number, from 0.
        words: The source words read.
        target_words: The target words written.
        delays: Source words read when each target word was written.
        source_length: How many source words the segment has, once its source is complete.
    """

    def __init__(self, index: int) -> None:
        self.index = index
        self.words: list[str] = []
        self.target_words: list[str] = []
        self.delays: list[int] = []
        self.source_length: int | None = None
        self._read_times: list[float] = []
        self._write_times: list[float] = []

    def read(self, word: str, received_at: float | None = None) -> None:
        """A source word arrived (at `received_at`, `time.perf_counter()`; default now)."""
        self._read_times.append(time.perf_counter() if received_at is None else received_at)
        self.words.append(word)

    def complete(self) -> None:
        """The segment's source is complete: what was read is all there is."""
        self.source_length = len(self.words)

    def wrote(self, word: str) -> dict[str, Any]:
        """A target word was written now; returns its `TargetWord` fields."""
        self.delays.append(len(self.words))
        self.target_words.append(word)
        self._write_times.append(time.perf_counter())
        return {
            "word": word,
            "delay": self.delays[-1],
            "metrics": latency_metrics(self.delays, len(self.words)),
        }

    def summary(self, reason: FinishReason) -> dict[str, Any]:
        """The `SegmentDone` fields that come from the words read and written."""
        return {
            "source": " ".join(self.words),
            "source_words": tuple(self.words),
            "target_words": tuple(self.target_words),
            "alignment": tuple(zip(self.target_words, self.delays, strict=True)),
            "metrics": latency_metrics(self.delays, len(self.words)),
            "finish_reason": reason,
            "time_to_first_word": time_to_first_word(self._read_times, self._write_times),
            "mean_word_wait": mean_word_wait(self.delays, self._read_times, self._write_times),
        }

    def event(
        self, cls: type[Event], *, tokens_computed: int, stats: Stats, **fields: Any
    ) -> Event:
        """An event of this segment, with the state every event carries."""
        return cls(
            segment=self.index,
            source_words_read=len(self.words),
            target_words_generated=len(self.delays),
            delays=tuple(self.delays),
            tokens_computed=tokens_computed,
            stats=stats,
            **fields,
        )
