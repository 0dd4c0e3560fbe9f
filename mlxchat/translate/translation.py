"""A live translation on any engine: what the translate screen, the CLI and the server open.

    live = open_translation(engine, WaitKSettings(wait_k=3))
    async for event in live.feed("Bonjour"):
        ...

The translation is a client of the engine contract. An engine that runs jobs with its
model in hand (`ModelJobs`, the local engine) gets the exact incremental translator, whose
KV cache is edited in place; any other engine that streams completions gets the naive
re-encode, one completion request per target word (`text_translation.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any, Protocol

from mlxchat.engine import contract
from mlxchat.engine.types import EngineError

if TYPE_CHECKING:
    from mlxchat.translate.events import TranslationEvent
    from mlxchat.translate.settings import WaitKSettings


class Translation(Protocol):
    """A live wait-k translation fed word by word (async; the translate screen's runner)."""

    settings: WaitKSettings

    def feed(
        self, word: str, *, last: bool = False, received_at: float | None = None
    ) -> AsyncIterator[TranslationEvent]:
        """Read one source word and write what wait-k allows."""
        ...

    def finish(self) -> AsyncIterator[TranslationEvent]:
        """End the sentence: write the rest of its translation."""
        ...

    def prepare(self) -> AsyncIterator[TranslationEvent]:
        """Get ready for the first word (e.g. prefill the prompt head)."""
        ...

    def cancel(self) -> None:
        """Stop what the translation computes; it yields nothing more."""
        ...


class BlockingTranslation(Translation, Protocol):
    """A translation that scripts can also drive without an event loop (`translate --plain`)."""

    def feed_sync(
        self,
        word: str,
        *,
        last: bool = False,
        received_at: float | None = None,
        more_waiting: bool = False,
    ) -> Generator[TranslationEvent, None, Any]:
        """Blocking `feed` (`more_waiting`: the next word is already here)."""
        ...


def open_translation(
    engine: contract.TranslateEngine, settings: WaitKSettings, auto_segment: bool = True
) -> BlockingTranslation:
    """A new live translation with `settings` on `engine`'s loaded model.

    Args:
        engine: The engine (its model loaded).
        settings: Policy, caps, sampling and languages.
        auto_segment: End a segment after a word that ends a sentence.

    Raises:
        EngineError: The engine can neither run model jobs nor stream completions.
    """
    if isinstance(engine, contract.ModelJobs):
        from mlxchat.translate.live import LiveTranslation

        return LiveTranslation(engine, settings, auto_segment=auto_segment)
    if isinstance(engine, contract.Engine):
        from mlxchat.translate.text_translation import TextTranslation

        return TextTranslation(engine, settings, auto_segment=auto_segment)
    raise EngineError("this engine cannot translate: it neither runs model jobs nor streams")
