"""The engine contract: what the UI, the CLI and the server may call on an engine.

Two engines implement it — the local MLX `Engine` (engine.py) and the OpenAI-compatible
client `RemoteEngine` (remote.py) — and the test fakes implement the parts their screens
use. Nothing here imports MLX or Textual. `mypy` checks every implementation against these
protocols (`.ci/run`, see tests/contract_check.py), and tests/test_contract.py compares the
signatures at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol, runtime_checkable

from mlxchat.engine.types import (
    Event,
    LoadProgress,
    Message,
    ModelInfo,
    RequestOptions,
    SamplingParams,
)

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


class JobStream(Protocol):
    """What a model job emits, as it comes; `cancel()` stops the job within a model call."""

    def __aiter__(self) -> JobStream:
        """The stream itself."""
        ...

    async def __anext__(self) -> Any:
        """The next thing the job emitted."""
        ...

    def cancel(self) -> None:
        """Stop the job."""
        ...

    @property
    def finished(self) -> bool:
        """Whether the job has ended (its last item was consumed)."""
        ...


ModelJob = Callable[[Any, Any, Callable[[Any], None], Callable[[], bool]], Any]
"""`job(model, tokenizer, emit, cancelled)`, run where the model lives."""


@runtime_checkable
class ModelJobs(Protocol):
    """An engine that runs jobs with its model in hand (the local engine): algorithms that
    drive the model themselves, such as the exact incremental wait-k translator."""

    def with_model(self, fn: ModelJob) -> JobStream:
        """Run `fn` where the model lives, between decode steps; iterate what it emits."""
        ...

    def with_model_sync(self, fn: ModelJob) -> Generator[Any, None, Any]:
        """Blocking `with_model`."""
        ...


class TranslateEngine(Protocol):
    """What the translate screen needs of an engine: a model (the translations on it are
    opened by `mlxchat.translate.open_translation`)."""

    @property
    def model_info(self) -> ModelInfo | None:
        """The loaded model, or None."""
        ...

    async def load(self, name: str, on_progress: OnLoadProgress | None = None) -> ModelInfo:
        """Load `name`; raises `ModelLoadError` with one line (the old model stays)."""
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
        options: RequestOptions | None = None,
    ) -> EventStream:
        """Stream the answer to `prompt`: one `Chunk` per token, throttled `Progress`;
        `options` asks for tools, a response format, logprobs or template variables."""
        ...

    def cancel(self) -> None:
        """Stop the request running now."""
        ...

    async def reset_session(self, session: str) -> None:
        """Forget what the engine keeps for a conversation (e.g. its KV cache)."""
        ...

    async def count_tokens(
        self, prompt: Prompt, chat_template: bool = True, options: RequestOptions | None = None
    ) -> int:
        """How many tokens `prompt` takes for the loaded model (with the tools in
        `options`, as `stream` would send them)."""
        ...

    def prompt_cache_report(self) -> dict[str, int] | None:
        """The engine's prompt cache (`entries`, `bytes`, `budget`), or None without one."""
        ...


@runtime_checkable
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

    def close(self) -> None:
        """Cancel what runs and let go of the model (and connections)."""
        ...
