"""Exact wait-k translation with an incrementally edited KV cache.

The model always sees ``[head][source words so far][tail][committed target]``
(see `prompt.py`). The cache holds a prefix of that sequence; whenever logits are needed
the cache is cut back to the longest common prefix with the wanted sequence
(``trim_prompt_cache``) and only the rest is run. So a READ keeps everything up to the end
of the source, appends the new word's tokens (at once), and the next WRITE re-appends the
tail and the committed target; a WRITE feeds one committed token at a time. The
look-ahead token that ends a word is sampled but never fed: its logits are kept and the
next WRITE samples from them again, which is exactly "trim it and regenerate".

Caches that cannot be trimmed (`can_trim_prompt_cache` false) are rebuilt from scratch
whenever they would need trimming; a `Notice` says so once and `SegmentDone.recompute`
is set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import mlx.core as mx

from mlxchat.engine.types import FinishReason
from mlxchat.translate.decoding import StatsClock, TextStream, TokenChooser, starts_new_word
from mlxchat.translate.events import (
    Notice,
    SegmentDone,
    SourceRead,
    TargetWord,
    TranslationChunk,
    TranslationEvent,
)
from mlxchat.translate.kvcache import CachedModel, Cancelled
from mlxchat.translate.policy import Action, next_action
from mlxchat.translate.prompt import PromptLayout, translation_layout
from mlxchat.translate.segment import arrivals, ends_sentence, split_sentences, split_words
from mlxchat.translate.segment_log import SegmentLog
from mlxchat.translate.settings import WaitKSettings

RECOMPUTE_NOTICE = "this model's cache cannot be trimmed: recomputing the prompt at each step"


class SimultaneousTranslator:
    """Wait-k simultaneous translation of a source that arrives word by word.

    Call `feed` for each source word as it arrives and `finish` when the speaker is done;
    both return iterators of events that must be consumed (the work happens while
    iterating). Sentences are separate segments: the cache keeps only the shared prompt
    head between them. Everything runs on the calling thread, which must own MLX.

    Args:
        model: An mlx-lm model.
        tokenizer: Its mlx-lm tokenizer wrapper (with a chat template).
        settings: Policy, caps, languages and sampling.
        should_stop: Polled before every model call; True cancels (the segment ends with
            finish_reason "cancelled" and later calls yield nothing).
        auto_segment: End the segment after a word that ends a sentence (`ends_sentence`).
        messages: Custom prompt messages (see `prompt.build_layout`).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        settings: WaitKSettings,
        *,
        should_stop: Callable[[], bool] | None = None,
        auto_segment: bool = True,
        messages: list[dict[str, str]] | None = None,
    ) -> None:
        self.settings = settings
        self.tokenizer = tokenizer
        self.layout: PromptLayout = translation_layout(tokenizer, settings, messages)
        self.chooser = TokenChooser(self.settings, tokenizer)
        self.cached = CachedModel(model, should_stop)
        self.clock = StatsClock()
        self.auto_segment = auto_segment
        self.cancelled = False
        self.segment = -1
        self._noticed = False
        self._new_segment()

    # -- public API -------------------------------------------------------------------

    @property
    def tokens_computed(self) -> int:
        """Tokens run through the model since this translator was created."""
        return self.cached.tokens_computed

    def prepare(self) -> None:
        """Prefill the prompt head now, so the first source word is answered sooner."""
        if self.cancelled:
            return
        try:
            self.cached.sync(list(self.layout.head), need_logits=False)
        except Cancelled:
            self.cancelled = True

    def feed(
        self,
        word: str,
        *,
        last: bool = False,
        received_at: float | None = None,
        more_waiting: bool = False,
    ) -> Iterator[TranslationEvent]:
        """Read one source word (several if `word` has spaces) and write what wait-k allows.

        Args:
            word: The next source word.
            last: The source segment ends with this word (as `finish` right after it).
            received_at: `time.perf_counter()` when the word arrived (default: now).
            more_waiting: The next word is already here (a known source): do not run the
                source through the model between words; the next WRITE takes it in the same
                call. Tokens and output are the same; there are fewer, larger model calls.
        """
        words = split_words(word)
        if last and not words:
            yield from self.finish()
        for i, w in enumerate(words):
            is_last = last and i == len(words) - 1
            waiting = more_waiting or i < len(words) - 1
            yield from self._guarded(self._feed_one(w, is_last, received_at, waiting))

    def finish(self) -> Iterator[TranslationEvent]:
        """The source is complete: write the rest of the translation and end the segment."""
        if self._log.words:
            yield from self._guarded(self._finish_segment())

    # -- segment state ----------------------------------------------------------------

    def _new_segment(self) -> None:
        self.segment += 1
        self._log = SegmentLog(self.segment)
        self._source_ids: list[list[int]] = []
        self._target: list[int] = []
        self._word_ids: list[int] = []
        self._text = TextStream(self.tokenizer)
        self._done: FinishReason | None = None

    def _sequence(self) -> list[int]:
        return self.layout.ids(self._source_ids, self._target)

    def _source_end(self) -> int:
        return len(self.layout.head) + sum(len(ids) for ids in self._source_ids)

    def _finished(self) -> bool:
        log = self._log
        return log.source_length is not None and len(log.words) >= log.source_length

    def _cap_reached(self) -> bool:
        cap = self.settings.word_cap(self._log.source_length)
        return cap is not None and len(self._log.delays) >= cap

    def _event(self, cls: type[TranslationEvent], **fields: Any) -> Any:
        return self._log.event(
            cls,
            tokens_computed=self.cached.tokens_computed,
            stats=self.clock.snapshot(len(self.cached.ids)),
            **fields,
        )

    # -- the loop ---------------------------------------------------------------------

    def _guarded(self, events: Iterator[TranslationEvent]) -> Iterator[TranslationEvent]:
        if self.cancelled:
            return
        try:
            for event in events:
                if self.cached.recompute and not self._noticed:
                    self._noticed = True
                    yield self._event(Notice, message=RECOMPUTE_NOTICE)
                yield event
        except Cancelled:
            self.cancelled = True
            yield self._segment_done("cancelled")

    def _feed_one(
        self, word: str, last: bool, received_at: float | None, more_waiting: bool
    ) -> Iterator[TranslationEvent]:
        self._log.read(word, received_at)
        self._source_ids.append(self.layout.encode_word(word))
        yield self._event(SourceRead, word=word)
        if last or (self.auto_segment and ends_sentence(word)):
            yield from self._finish_segment()
            return
        yield from self._write_allowed()
        if not more_waiting:
            self._prefill_source()

    def _prefill_source(self) -> None:
        """While waiting for the next word, run the source read so far through the model.

        A WRITE right after a READ feeds ``[new words][tail][target]`` in one call instead.
        """
        if self._done is None and not self._cap_reached():
            start = time.perf_counter()
            before = self.cached.tokens_computed
            self.cached.sync(self._sequence()[: self._source_end()], need_logits=False)
            self.clock.add_prompt(self.cached.tokens_computed - before, time.perf_counter() - start)

    def _finish_segment(self) -> Iterator[TranslationEvent]:
        self._log.complete()
        yield from self._write_allowed()
        if self._done is None:
            self._done = "length"
        yield self._segment_done(self._done)
        self._new_segment()

    def _write_allowed(self) -> Iterator[TranslationEvent]:
        k, log = self.settings.wait_k, self._log
        while self._done is None:
            if self._cap_reached():
                self._done = "length"
                return
            if next_action(k, len(log.words), len(log.delays), log.source_length) is (Action.READ):
                return
            self.clock.may_write()
            yield from self._write_word()

    def _logits(self) -> mx.array:
        start = time.perf_counter()
        before = self.cached.tokens_computed
        decode_step = self.cached.ids == self._sequence()[:-1] and bool(self._word_ids)
        logits = self.cached.sync(self._sequence())
        elapsed = time.perf_counter() - start
        if decode_step:
            self.clock.add_decode(elapsed)
        else:
            self.clock.add_prompt(self.cached.tokens_computed - before, elapsed)
        assert logits is not None
        return logits

    def _write_word(self) -> Iterator[TranslationEvent]:
        """Generate one target word (or end the answer); yields chunks then `TargetWord`."""
        cap = self.settings.max_tokens_per_word
        while True:
            logits = self._logits()
            start = time.perf_counter()
            finished = self._finished()
            has_text = bool(self._text.shown.strip())
            token = self.chooser.choose(logits, self._sequence(), finished, has_text)
            self.clock.add_decode(time.perf_counter() - start)
            if self.chooser.ends(token, finished):
                self._done = "stop"
                break
            if starts_new_word(self.tokenizer, self._word_ids, token):
                break
            self._word_ids.append(token)
            self._target.append(token)
            self.clock.add_generated(len(self.cached.ids))
            yield self._event(TranslationChunk, text=self._text.add(token), token=token)
            if len(self._word_ids) >= cap:
                if self.settings.cut_ends_segment:  # runaway output: the segment ends here
                    self._done = "length"
                yield from self._complete_word(cut=True)
                return
        yield from self._complete_word()

    def _complete_word(self, cut: bool = False) -> Iterator[TranslationEvent]:
        word = self.tokenizer.decode(self._word_ids).strip() if self._word_ids else ""
        at_end = self._done is not None
        self._word_ids = []
        if at_end and not word:
            return  # the answer ended between words (or after trailing whitespace)
        yield self._event(
            TargetWord, text=self._text.flush() if at_end else "", cut=cut, **self._log.wrote(word)
        )

    def _segment_done(self, reason: FinishReason) -> SegmentDone:
        rest = self._text.flush()
        return self._event(
            SegmentDone,
            text=rest,
            translation=self._text.shown,
            target_tokens=tuple(self._target),
            recompute=self.cached.recompute,
            **self._log.summary(reason),
        )


def stream_translate(
    model: Any,
    tokenizer: Any,
    source: str,
    settings: WaitKSettings,
    *,
    should_stop: Callable[[], bool] | None = None,
    messages: list[dict[str, str]] | None = None,
) -> Iterator[TranslationEvent]:
    """Simulate simultaneous translation of a known `source`, sentence by sentence.

    Each sentence (`split_sentences`) is read word by word under wait-k and translated as
    its own segment; the events are those of `SimultaneousTranslator`.
    """
    translator = SimultaneousTranslator(
        model, tokenizer, settings, should_stop=should_stop, auto_segment=False, messages=messages
    )
    for word in arrivals(split_sentences(source)):
        yield from translator.feed(word.word, last=word.last, more_waiting=not word.last)
        if translator.cancelled:
            return
