"""Wait-k translation as jobs on the engine's thread, for async (UI) and blocking (CLI)
consumers; opened by `open_translation` for an engine that runs model jobs.

    live = LiveTranslation(engine, WaitKSettings(wait_k=3))
    async for event in live.feed("Bonjour"):
        ...
    async for event in live.finish():
        ...

The `SimultaneousTranslator` is created on the engine thread by the first call and lives
there; each `feed`/`finish` is one engine job, run in order. Cancelling a job (or
`cancel()`) stops within one model call and ends the translation: start a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

from mlxchat.engine.contract import JobStream, ModelJobs
from mlxchat.translate.events import TranslationEvent
from mlxchat.translate.settings import WaitKSettings

if TYPE_CHECKING:
    from mlxchat.translate.incremental import SimultaneousTranslator

Emit = Callable[[Any], None]


class LiveTranslation:
    """A live source, fed word by word, translated with wait-k on the engine's model.

    Args:
        engine: An engine that runs model jobs, with a model loaded.
        settings: Policy, caps, sampling and languages.
        auto_segment: End a segment after a word that ends a sentence.
    """

    def __init__(
        self, engine: ModelJobs, settings: WaitKSettings, auto_segment: bool = True
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.auto_segment = auto_segment
        self._translator: SimultaneousTranslator | None = None
        self._cancelled: Callable[[], bool] = lambda: False
        self._streams: list[JobStream] = []

    def _job(
        self, work: Callable[[SimultaneousTranslator], Iterator[TranslationEvent]]
    ) -> Callable[[Any, Any, Emit, Callable[[], bool]], None]:
        def run(model: Any, tokenizer: Any, emit: Emit, cancelled: Callable[[], bool]) -> None:
            from mlxchat.translate.incremental import SimultaneousTranslator  # MLX: this thread

            self._cancelled = cancelled
            if self._translator is None:
                self._translator = SimultaneousTranslator(
                    model,
                    tokenizer,
                    self.settings,
                    should_stop=lambda: self._cancelled(),
                    auto_segment=self.auto_segment,
                )
            for event in work(self._translator):
                emit(event)

        return run

    def prepare(self) -> JobStream:
        """Prefill the prompt head now, so the first word is answered sooner."""

        def work(translator: SimultaneousTranslator) -> Iterator[TranslationEvent]:
            translator.prepare()
            return iter(())

        return self._track(self.engine.with_model(self._job(work)))

    def feed(self, word: str, *, last: bool = False, received_at: float | None = None) -> JobStream:
        """Read one source word (and write what wait-k then allows)."""
        work = self._job(lambda t: t.feed(word, last=last, received_at=received_at))
        return self._track(self.engine.with_model(work))

    def finish(self) -> JobStream:
        """The sentence is complete: write the rest of its translation."""
        return self._track(self.engine.with_model(self._job(lambda t: t.finish())))

    def feed_sync(
        self,
        word: str,
        *,
        last: bool = False,
        received_at: float | None = None,
        more_waiting: bool = False,
    ) -> Generator[TranslationEvent, None, Any]:
        """Blocking `feed` (`more_waiting`: the next word is already here, see
        `SimultaneousTranslator.feed`)."""
        work = self._job(
            lambda t: t.feed(word, last=last, received_at=received_at, more_waiting=more_waiting)
        )
        return self.engine.with_model_sync(work)

    def cancel(self) -> None:
        """Stop whatever this translation is computing (it then yields nothing more)."""
        for stream in self._streams:
            stream.cancel()
        self._streams.clear()

    def _track(self, stream: JobStream) -> JobStream:
        self._streams = [s for s in self._streams if not s.finished] + [stream]
        return stream
