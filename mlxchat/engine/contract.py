"""The engine contract: what the UI, the CLI and the server may call on an engine.

Two engines implement it — the local MLX `Engine` (engine.py) and the OpenAI-compatible
client `RemoteEngine` (remote.py) — and the test fakes implement the parts their screens
use. Nothing here imports MLX or Textual. `mypy` checks every implementation against these
protocols (`.ci/run`, see tests/contract_check.py), and tests/test_contract.py compares the
signatures at run time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from mlxchat.engine.types import Event, LoadProgress, Message, ModelInfo, SamplingParams

if TYPE_CHECKING:
    from mlxchat.translate.events import TranslationEvent
    from mlxchat.translate.settings import WaitKSettings

Prompt = str | Sequence[Message]
"""A user prompt, or the whole conversation."""
OnLoadProgress = Callable[[LoadProgress], None]


class EventStream(Protocol):
    """One request's `Chunk`s and `Progress` events; `cancel()` stops it within a token."""

    def __aiter__(self) -> EventStream:
        """The stream itself."""
        ...

    async def __anext__(self) -> Event:
        """The next event."""
        ...

    def cancel(self) -> None:
        """Stop the request (its last chunk says `cancelled`, or the stream just ends)."""
        ...


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


class TranslateEngine(Protocol):
    """What the translate screen needs: a model and translations on it."""

    @property
    def model_info(self) -> ModelInfo | None:
        """The loaded model, or None."""
        ...

    async def load(self, name: str, on_progress: OnLoadProgress | None = None) -> ModelInfo:
        """Load `name`; raises `ModelLoadError` with one line (the old model stays)."""
        ...

    def translation(self, settings: WaitKSettings, auto_segment: bool = True) -> Translation:
        """A new live translation with `settings` on the loaded model."""
        ...


class ChatEngine(TranslateEngine, Protocol):
    """What the chat screen needs (it opens the translate screen on the same engine)."""

    def stream(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        *,
        session: str | None = None,
        chat_template: bool = True,
        max_context: int | None = None,
        progress: bool = True,
    ) -> EventStream:
        """Stream the answer to `prompt`: one `Chunk` per token, throttled `Progress`."""
        ...

    def cancel(self) -> None:
        """Stop the request running now."""
        ...

    async def reset_session(self, session: str) -> None:
        """Forget what the engine keeps for a conversation (e.g. its KV cache)."""
        ...

    async def count_tokens(self, prompt: Prompt, chat_template: bool = True) -> int:
        """How many tokens `prompt` takes for the loaded model."""
        ...

    def prompt_cache_report(self) -> dict[str, int] | None:
        """The engine's prompt cache (`entries`, `bytes`, `budget`), or None without one."""
        ...


class Engine(ChatEngine, Protocol):
    """The whole contract: the chat's, plus the blocking calls of the CLI."""

    def load_sync(self, name: str, on_progress: OnLoadProgress | None = None) -> ModelInfo:
        """Blocking `load`."""
        ...

    def iterate(
        self, prompt: Prompt, params: SamplingParams | None = None, **kw: Any
    ) -> Generator[Event, None, Any]:
        """Blocking `stream` for scripts; closing the generator cancels the request."""
        ...

    def translation(
        self, settings: WaitKSettings, auto_segment: bool = True
    ) -> BlockingTranslation:
        """A new live translation, drivable from async code and from scripts."""
        ...

    def close(self) -> None:
        """Cancel what runs and let go of the model (and connections)."""
        ...
