"""A scripted stand-in for `LiveTranslation`: exact wait-k events, fixed stats, no model.

Target word t of a sentence is the dictionary translation of source word t (a word-for-word
"translation"), written as soon as the wait-k policy allows, so events, delays and metrics
are deterministic. `FakeFactory.hold_after(n)` makes every feed wait after n source words
in all (counting every translation it made) until `release()`, for a stable mid-sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ui.fake_engine import fixed_stats

from mlxchat.engine.types import Stats
from mlxchat.translate.events import (
    SegmentDone,
    SourceRead,
    TargetWord,
    TranslationChunk,
    TranslationEvent,
)
from mlxchat.translate.metrics import latency_metrics
from mlxchat.translate.policy import Action, next_action
from mlxchat.translate.settings import WaitKSettings

LEXICON = {
    "the": "le",
    "cat": "chat",
    "sat": "assis",
    "on": "sur",
    "mat.": "tapis.",
    "it": "il",
    "was": "était",
    "very": "très",
    "happy.": "heureux.",
    "a": "un",
    "dog": "chien",
    "runs": "court",
    "in": "dans",
    "park.": "parc.",
    "we": "nous",
    "like": "aimons",
    "tea.": "thé.",
    "hello": "bonjour",
    "world.": "monde.",
}


def translate_word(word: str) -> str:
    """The lexicon's word, or the word in capitals."""
    return LEXICON.get(word.lower(), word.upper())


def translation_stats(tokens: int) -> Stats:
    """`fixed_stats` with a prompt that grows with the words read."""
    return fixed_stats(tokens, prompt_tokens=90 + 3 * tokens)  # over 0.2 s at 312.5 tok/s


@dataclass
class FakeFactory:
    """Makes `FakeTranslation`s and records them.

    Attributes:
        made: Every translation made, in order.
        reads: Source words read by all of them.
        hold_at: Feeds wait once `reads` reaches this (None: never).
        control: Characters appended to the first target word (to test sanitizing).
    """

    made: list[FakeTranslation] = field(default_factory=list)
    reads: int = 0
    hold_at: int | None = None
    control: str = ""
    _release: asyncio.Event | None = None

    def __call__(self, settings: WaitKSettings) -> FakeTranslation:
        """A new translation with `settings`."""
        translation = FakeTranslation(settings, self)
        self.made.append(translation)
        return translation

    def hold_after(self, reads: int) -> None:
        """Make feeds wait once `reads` source words were read in all."""
        self.hold_at = reads
        self._release = asyncio.Event()

    def release(self) -> None:
        """Let held feeds go on."""
        self.hold_at = None
        if self._release is not None:
            self._release.set()

    async def gate(self) -> None:
        """Wait here while held."""
        if self.hold_at is not None and self.reads >= self.hold_at and self._release:
            await self._release.wait()


class FakeTranslation:
    """Wait-k with a word-for-word lexicon, one segment after another."""

    def __init__(self, settings: WaitKSettings, factory: FakeFactory) -> None:
        self.settings = settings
        self.factory = factory
        self.cancelled = False
        self.calls: list[tuple[str, Any]] = []
        self.segment = 0
        self.tokens = 0
        self._new_segment()

    def _new_segment(self) -> None:
        self.words: list[str] = []
        self.target: list[str] = []
        self.delays: list[int] = []
        self.text = ""

    def _event(self, cls: type[TranslationEvent], **fields: Any) -> Any:
        return cls(
            segment=self.segment,
            source_words_read=len(self.words),
            target_words_generated=len(self.delays),
            delays=tuple(self.delays),
            tokens_computed=self.tokens * 4,
            stats=translation_stats(self.tokens),
            **fields,
        )

    async def feed(
        self, word: str, *, last: bool = False, received_at: float | None = None
    ) -> AsyncIterator[TranslationEvent]:
        """Read `word`, write what wait-k allows (all of it when `last`)."""
        self.calls.append(("feed", word))
        if self.cancelled:
            return
        self.words.append(word)
        self.factory.reads += 1
        yield self._event(SourceRead, word=word)
        await self.factory.gate()
        if self.cancelled:
            return
        for event in self._write(len(self.words) if last else None):
            yield event
            await asyncio.sleep(0)
        if last:
            for event in self._done():
                yield event

    async def finish(self) -> AsyncIterator[TranslationEvent]:
        """End the segment."""
        self.calls.append(("finish", None))
        if self.cancelled or not self.words:
            return
        for event in [*self._write(len(self.words)), *self._done()]:
            yield event

    async def prepare(self) -> AsyncIterator[TranslationEvent]:
        """Nothing to prefill (waits while held: `hold_after(0)`)."""
        self.calls.append(("prepare", None))
        await self.factory.gate()
        return
        yield  # an async generator

    def cancel(self) -> None:
        """Stop: nothing more is yielded."""
        self.cancelled = True
        self.factory.release()

    def _write(self, source_length: int | None) -> list[TranslationEvent]:
        events: list[TranslationEvent] = []
        k = self.settings.wait_k
        while len(self.delays) < len(self.words) and (
            next_action(k, len(self.words), len(self.delays), source_length) is Action.WRITE
        ):
            t = len(self.delays)
            word = translate_word(self.words[t])
            if t == 0 and self.factory.control:
                word += self.factory.control
            text = (" " if t else "") + word
            self.tokens += 1
            self.target.append(word)
            self.text += text
            events.append(self._event(TranslationChunk, text=text, token=t))
            self.delays.append(len(self.words))
            events.append(
                self._event(
                    TargetWord,
                    word=word,
                    delay=self.delays[-1],
                    metrics=latency_metrics(self.delays, len(self.words)),
                )
            )
        return events

    def _done(self) -> list[TranslationEvent]:
        event = self._event(
            SegmentDone,
            source=" ".join(self.words),
            translation=self.text,
            source_words=tuple(self.words),
            target_words=tuple(self.target),
            alignment=tuple(zip(self.target, self.delays, strict=True)),
            metrics=latency_metrics(self.delays, len(self.words)),
            finish_reason="stop",
        )
        self.segment += 1
        self._new_segment()
        return [event]
