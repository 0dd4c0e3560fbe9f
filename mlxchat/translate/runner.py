"""The interpreter loop: source words queue up and are fed, in order, to wait-k translations.

The translate screen and the WebSocket translation both run it: they put `SourceWord`s and
`EndSentence`s on the queue as they arrive (typed, played back or received) and get every
translation event back through a callback. No Textual here.
The loop waits for the model, feeds one queued item at a time (the wait-k policy applies
per `feed` call, which is the simulation's semantics when words arrive faster than the
model translates) and starts a new translation at a sentence boundary whenever the
settings changed (a new wait-k takes effect from the next sentence).

    runner = Runner(lambda s: LiveTranslation(engine, s, auto_segment=False), settings, on_event)
    task = asyncio.create_task(runner.run())
    runner.put(SourceWord(0, 0, "Hello", last=False, received_at=time.perf_counter()))
    runner.set_ready()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from mlxchat.translate.events import TranslationEvent
from mlxchat.translate.settings import WaitKSettings
from mlxchat.translate.translation import Translation

TranslationFactory = Callable[[WaitKSettings], Translation]
"""Makes a translation with the given settings (one per run of sentences)."""


@dataclass(frozen=True)
class SourceWord:
    """A source word that arrived.

    Attributes:
        sentence: The screen's sentence number (from 0).
        index: Position of the word in its sentence (from 0).
        word: The word (no whitespace).
        last: The sentence ends with this word.
        received_at: `time.perf_counter()` when it arrived.
    """

    sentence: int
    index: int
    word: str
    last: bool = False
    received_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class EndSentence:
    """The speaker ended the sentence after the words already queued (Enter)."""

    sentence: int


Item = SourceWord | EndSentence
EventCallback = Callable[[Item, TranslationEvent], None]
DoneCallback = Callable[[Item | None], None]
ErrorCallback = Callable[[Item | None, Exception], None]


class Runner:
    """Feeds queued source words to wait-k translations, one item at a time, in order.

    Args:
        factory: Makes a translation for given settings.
        settings: The settings of the first sentence.
        on_event: Called with the item being fed and each event it produced.
        on_error: Called with the item (None for the prefill) when the engine failed; the
            translation is dropped and the loop goes on.
        on_done: Called after each item was fed (its events are all out), and with None
            once the prompt's instructions are prefilled.
    """

    def __init__(
        self,
        factory: TranslationFactory,
        settings: WaitKSettings,
        on_event: EventCallback,
        on_error: ErrorCallback | None = None,
        on_done: DoneCallback | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        """Settings for the next sentence (change them any time)."""
        self.on_event = on_event
        self.on_error = on_error
        self.on_done = on_done
        self.current: Item | None = None
        """The item being fed now (None while idle)."""
        self.live: Translation | None = None
        """The translation of the sentence being fed (None before one starts)."""
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._sentence_open = False
        self._prepared = False
        self._made_with: WaitKSettings | None = None

    # ----- feeding the queue ------------------------------------------------------------
    def put(self, item: Item) -> None:
        """Queue a word (or the end of a sentence)."""
        self._queue.put_nowait(item)

    @property
    def queued(self) -> int:
        """Items waiting to be fed (not counting the one being fed)."""
        return self._queue.qsize()

    @property
    def ready(self) -> bool:
        """Whether the model is ready (queued items are then being fed)."""
        return self._ready.is_set()

    @property
    def busy(self) -> bool:
        """Whether an item is being fed or waits in the queue."""
        return self.current is not None or not self._queue.empty()

    @property
    def preparing(self) -> bool:
        """Whether the model is ready and the prompt's instructions are being prefilled."""
        return self.ready and not self._prepared

    def set_ready(self) -> None:
        """The model is loaded: start feeding."""
        self._ready.set()

    def cancel(self) -> list[Item]:
        """Stop the translation now and drop the queue; the next word starts afresh.

        Returns:
            The dropped items, oldest first (not the one being fed).
        """
        dropped: list[Item] = []
        while not self._queue.empty():
            dropped.append(self._queue.get_nowait())
        if self.live is not None:
            self.live.cancel()
        self.live = None
        self._sentence_open = False
        return dropped

    # ----- the loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Feed items forever (run it as a task; cancel the task to stop)."""
        await self._ready.wait()
        self._start()
        try:
            await self._drain(self.live.prepare() if self.live else None, None)
        finally:
            self._prepared = True
        if self.on_done is not None:
            self.on_done(None)
        while True:
            item = await self._queue.get()
            self.current = item
            try:
                await self._drain(self._stream_for(item), item)
            except Exception as error:  # a translation that cannot start: as an engine error
                self._failed(item, error)
            finally:
                self.current = None
            if self.on_done is not None:
                self.on_done(item)

    def _stream_for(self, item: Item) -> AsyncIterator[TranslationEvent]:
        """The events of feeding `item` (a new translation first at a sentence start)."""
        if not self._sentence_open and (self.live is None or self._made_with != self.settings):
            self._start()
        live = self.live
        assert live is not None
        if isinstance(item, SourceWord):
            self._sentence_open = not item.last
            return live.feed(item.word, last=item.last, received_at=item.received_at)
        self._sentence_open = False
        return live.finish()

    def _failed(self, item: Item | None, error: Exception) -> None:
        """Drop the translation and report `error`; the loop goes on with the next item
        (a dead loop left words queued forever and the screen saying it translated)."""
        self.live = None
        self._sentence_open = False
        if self.on_error is not None:
            self.on_error(item, error)

    def _start(self) -> None:
        if self.live is not None:
            self.live.cancel()
        self._made_with = self.settings  # the factory may complete them (the sampling)
        self.live = self.factory(self.settings)

    async def _drain(
        self, stream: AsyncIterator[TranslationEvent] | None, item: Item | None
    ) -> None:
        """Consume `stream`, passing its events on while its translation is still current."""
        if stream is None:
            return
        live = self.live
        try:
            async for event in stream:
                if item is not None and live is self.live:
                    self.on_event(item, event)
        except asyncio.CancelledError:
            if live is not None:
                with contextlib.suppress(Exception):
                    live.cancel()
            raise
        except Exception as error:  # an engine error: report it, start afresh next time
            if live is self.live:
                self._failed(item, error)
