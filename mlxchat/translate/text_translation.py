"""Wait-k translation on an engine that only streams completions (a remote model): the
naive re-encode, one request per target word.

Without a KV cache to edit, every WRITE sends the whole prompt again — ``[instruction]
[source read so far][target so far]`` as a plain-text completion (`chat_template=False`:
the one request every OpenAI-compatible server continues verbatim) — and reads the streamed
text until the word is complete; the server's prompt cache makes the repeated prefix cheap. The
policy, the delays and the metrics are those of the local translators; the word rule works
on text: a target word ends where whitespace follows it (that look-ahead text is dropped and
generated again by the next request), or where the answer ends. A `Notice` says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlxchat.engine.remote_stream import ThreadedStream
from mlxchat.engine.types import Chunk, FinishReason, Stats
from mlxchat.translate.events import (
    Notice,
    SegmentDone,
    SourceRead,
    TargetWord,
    TranslationChunk,
    TranslationEvent,
)
from mlxchat.translate.policy import Action, next_action
from mlxchat.translate.segment import ends_sentence, split_words
from mlxchat.translate.segment_log import SegmentLog

if TYPE_CHECKING:
    from mlxchat.engine.contract import Engine
    from mlxchat.translate.settings import WaitKSettings

Stop = Callable[[], bool]

NAIVE_NOTICE = (
    "remote model: naive re-encode, one completion request per target word "
    "(the exact incremental KV cache needs a local model)"
)
_WORD = re.compile(r"\s*\S+(?=\s)")


def prompt_text(settings: WaitKSettings, source: list[str], target: str) -> str:
    """The completion prompt: instruction, the source read so far, the target so far."""
    src, tgt = settings.source_lang, settings.target_lang
    return (
        f"Translate from {src} to {tgt}. Output only the {tgt} translation.\n\n"
        f"{src}: {' '.join(source)}\n{tgt}:{target}"
    )


class TextTranslator:
    """Blocking wait-k over completion requests; the same events as `SimultaneousTranslator`."""

    def __init__(self, engine: Engine, settings: WaitKSettings, auto_segment: bool) -> None:
        self.engine = engine
        self.settings = settings
        self.auto_segment = auto_segment
        self.cancelled = False
        self.segment = -1
        self.tokens_computed = 0
        self._stats = Stats()
        self._noticed = False
        self._new_segment()

    def _new_segment(self) -> None:
        self.segment += 1
        self._log = SegmentLog(self.segment)
        self._shown = ""
        self._stalled_at = -1  # words read when the model had nothing to write yet
        self._done: FinishReason | None = None

    def _event(self, cls: type[TranslationEvent], **fields: Any) -> Any:
        return self._log.event(
            cls, tokens_computed=self.tokens_computed, stats=self._stats, **fields
        )

    def feed(
        self, word: str, last: bool, received_at: float | None, stop: Stop
    ) -> Iterator[TranslationEvent]:
        """Read `word` (several if it has spaces) and write what wait-k allows."""
        if not self._noticed:
            self._noticed = True
            yield self._event(Notice, message=NAIVE_NOTICE)
        words = split_words(word)
        if last and not words:
            yield from self.finish(stop)
        for i, w in enumerate(words):
            self._log.read(w, received_at)
            yield self._event(SourceRead, word=w)
            if (last and i == len(words) - 1) or (self.auto_segment and ends_sentence(w)):
                yield from self.finish(stop)
            else:
                yield from self._write_allowed(stop)

    def finish(self, stop: Stop) -> Iterator[TranslationEvent]:
        """The sentence is complete: write the rest of its translation, end the segment."""
        if not self._log.words:
            return
        self._log.complete()
        yield from self._write_allowed(stop)
        yield self._segment_done(self._done or ("cancelled" if stop() else "length"))
        self._new_segment()

    def _write_allowed(self, stop: Stop) -> Iterator[TranslationEvent]:
        log = self._log
        cap = self.settings.word_cap(log.source_length)
        while self._done is None and not stop() and self._stalled_at != len(log.words):
            if cap is not None and len(log.delays) >= cap:
                self._done = "length"
                return
            read, written = len(log.words), len(log.delays)
            if next_action(self.settings.wait_k, read, written, log.source_length) is (Action.READ):
                return
            yield from self._write_word(stop)
        if stop():
            self._done = "cancelled"

    def _write_word(self, stop: Stop) -> Iterator[TranslationEvent]:
        """One request: stream text until the word ends (whitespace after it, or the end)."""
        finished = self._log.source_length is not None
        params = replace(
            self.settings.sampling,
            max_tokens=self.settings.max_tokens_per_word + 1,  # + the look-ahead
            stop=("\n",) if self.settings.stop_at_newline else (),
        )
        prompt = prompt_text(self.settings, self._log.words, self._shown)
        word, reason, complete = "", None, False
        stats = Stats()
        answer = self.engine.iterate(prompt, params, chat_template=False, progress=False)
        try:
            for event in answer:
                if stop():
                    break
                if not isinstance(event, Chunk):
                    continue
                stats, reason = event.stats, event.finish_reason or reason
                if not event.text:
                    continue
                text = word + event.text
                match = _WORD.match(text)
                commit = event.text if match is None else text[len(word) : match.end()]
                complete = match is not None
                word += commit
                self._shown += commit
                if commit:
                    yield self._event(TranslationChunk, text=commit)
                if complete:
                    break  # closing the stream drops the look-ahead, which is not committed
        finally:
            answer.close()
        self._stats = stats
        self.tokens_computed += stats.prompt_tokens + stats.generation_tokens
        if stop():
            return
        if not word.strip():  # the model has nothing to write yet: read on (or end)
            if finished:
                self._done = "stop"
            else:
                self._stalled_at = len(self._log.words)
            return
        if finished and not complete and reason == "stop":
            self._done = "stop"
        yield self._event(TargetWord, **self._log.wrote(word.strip()))

    def _segment_done(self, reason: FinishReason) -> SegmentDone:
        return self._event(
            SegmentDone, translation=self._shown, recompute=True, **self._log.summary(reason)
        )


class TextTranslation:
    """The live translation API (`LiveTranslation`'s) over a `TextTranslator`.

    Args:
        engine: An engine that streams completions (e.g. a connected `RemoteEngine`).
        settings: Policy, caps, temperature and languages.
        auto_segment: End a segment after a word that ends a sentence.
    """

    def __init__(self, engine: Engine, settings: WaitKSettings, auto_segment: bool) -> None:
        self.settings = settings
        self._translator = TextTranslator(engine, settings, auto_segment)
        self._stopped = False

    def _stop(self) -> bool:
        return self._stopped

    def _stream(self, run: Any) -> ThreadedStream[TranslationEvent]:
        return ThreadedStream(lambda cancelled: run(lambda: cancelled() or self._stopped))

    def feed(
        self, word: str, *, last: bool = False, received_at: float | None = None
    ) -> ThreadedStream[TranslationEvent]:
        """Read one source word (and write what wait-k then allows)."""
        return self._stream(lambda stop: self._translator.feed(word, last, received_at, stop))

    def finish(self) -> ThreadedStream[TranslationEvent]:
        """The sentence is complete: write the rest of its translation."""
        return self._stream(self._translator.finish)

    def prepare(self) -> ThreadedStream[TranslationEvent]:
        """Nothing to prefill on the client."""
        return self._stream(lambda stop: iter(()))

    def feed_sync(
        self,
        word: str,
        *,
        last: bool = False,
        received_at: float | None = None,
        more_waiting: bool = False,
    ) -> Generator[TranslationEvent, None, Any]:
        """Blocking `feed` (`more_waiting` changes nothing here)."""
        yield from self._translator.feed(word, last, received_at, self._stop)

    def cancel(self) -> None:
        """Stop the request running now; this translation yields nothing more."""
        self._stopped = True
