"""The naive wait-k translator: re-encode the whole prompt for every target word.

This is what most published LLM wait-k code does, and it serves as the test oracle and
the benchmark baseline for `incremental.py`. It uses the same prompt layout, policy,
token choice and word rule, but no cache reuse: each WRITE builds a fresh cache from
``[head][source read so far][tail][target so far]`` and decodes one word with it.
``tokens_computed`` counts every token run through the model, as the incremental one does
(the look-ahead token that ends a word is sampled but never run, in both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import mlx.core as mx
from mlx_lm.models.cache import make_prompt_cache

from mlxchat.engine.types import FinishReason
from mlxchat.translate.decoding import TextStream, TokenChooser, starts_new_word
from mlxchat.translate.events import SegmentDone, TargetWord, TranslationChunk, TranslationEvent
from mlxchat.translate.kvcache import cpu_padding, run_model
from mlxchat.translate.metrics import latency_metrics
from mlxchat.translate.policy import wait_k_schedule
from mlxchat.translate.prompt import translation_layout
from mlxchat.translate.segment import split_sentences
from mlxchat.translate.settings import WaitKSettings


class _Stop(Exception):
    """`should_stop` returned True."""


class NaiveTranslator:
    """Re-encodes ``[head][source read][tail][target]`` from scratch for every target word.

    Attributes:
        tokens_computed: Tokens run through the model so far.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        settings: WaitKSettings,
        *,
        should_stop: Callable[[], bool] | None = None,
        messages: list[dict[str, str]] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.should_stop = should_stop
        self.layout = translation_layout(tokenizer, settings, messages)
        self.chooser = TokenChooser(settings, tokenizer)
        self.tokens_computed = 0
        self.pad = cpu_padding()

    def _forward(self, tokens: list[int], cache: list[Any]) -> mx.array:
        if self.should_stop is not None and self.should_stop():
            raise _Stop
        logits, computed = run_model(self.model, tokens, cache, pad=self.pad)  # as incremental
        self.tokens_computed += computed
        return logits

    def translate_sentence(self, words: list[str], segment: int = 0) -> Iterator[TranslationEvent]:
        """Translate one sentence; yields chunks, target words and a final `SegmentDone`."""
        n = len(words)
        k = self.settings.wait_k
        source_ids = [self.layout.encode_word(w) for w in words]
        target: list[int] = []
        delays: list[int] = []
        target_words: list[str] = []
        text = TextStream(self.tokenizer)
        reason: FinishReason = "length"
        cap = self.settings.word_cap(n)
        assert cap is not None

        def state(read: int) -> dict[str, Any]:
            return {
                "segment": segment,
                "source_words_read": read,
                "target_words_generated": len(delays),
                "delays": tuple(delays),
                "tokens_computed": self.tokens_computed,
            }

        try:
            while len(delays) < cap:
                read = wait_k_schedule(len(delays) + 1, k, n)
                cache = make_prompt_cache(self.model)
                logits = self._forward(self.layout.ids(source_ids[:read], target), cache)
                word: list[int] = []
                ended = cut = False
                while True:
                    context = self.layout.ids(source_ids[:read], target)
                    finished = read == n
                    has_text = bool(text.shown.strip())
                    token = self.chooser.choose(logits, context, finished, has_text)
                    if self.chooser.ends(token, finished):
                        ended = True
                        break
                    if starts_new_word(self.tokenizer, word, token):
                        break
                    word.append(token)
                    target.append(token)
                    yield TranslationChunk(text=text.add(token), token=token, **state(read))
                    if len(word) >= self.settings.max_tokens_per_word:
                        cut = True
                        break
                    logits = self._forward([token], cache)
                word_text = self.tokenizer.decode(word).strip() if word else ""
                stop = cut and self.settings.cut_ends_segment  # runaway output ends it
                if ended:
                    reason = "stop"
                    if not word_text:
                        break
                delays.append(read)
                target_words.append(word_text)
                yield TargetWord(
                    text=text.flush() if ended or stop else "",
                    word=word_text,
                    delay=read,
                    metrics=latency_metrics(delays, read),
                    cut=cut,
                    **state(read),
                )
                if ended or stop:
                    break
        except _Stop:
            reason = "cancelled"

        yield SegmentDone(
            text=text.flush(),
            source=" ".join(words),
            translation=text.shown,
            source_words=tuple(words),
            target_words=tuple(target_words),
            target_tokens=tuple(target),
            alignment=tuple(zip(target_words, delays, strict=True)),
            metrics=latency_metrics(delays, n),
            finish_reason=reason,
            **state(n),
        )


def naive_translate(
    model: Any,
    tokenizer: Any,
    source: str,
    settings: WaitKSettings,
    *,
    should_stop: Callable[[], bool] | None = None,
    messages: list[dict[str, str]] | None = None,
) -> Iterator[TranslationEvent]:
    """Wait-k translation of a known `source` by full re-encoding, sentence by sentence.

    Same arguments and events as `stream_translate`, except that no `SourceRead` is
    yielded and `stats` are left empty.
    """
    translator = NaiveTranslator(
        model, tokenizer, settings, should_stop=should_stop, messages=messages
    )
    for segment, words in enumerate(split_sentences(source)):
        for event in translator.translate_sentence(words, segment):
            yield event
            if isinstance(event, SegmentDone) and event.finish_reason == "cancelled":
                return
