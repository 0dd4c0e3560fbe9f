"""A scripted stand-in for `Engine` with exact, controllable timing (no MLX).

It speaks the same async API as the real engine: `load(name, on_progress)`,
`stream(messages, params, session=..., max_context=...)` (an async iterator of `Chunk`s and
`Progress` events with `cancel()`), `model_info`, `reset_session`, `count_tokens`, `cancel`.
Like the real engine, streams run at the same time (a batch), while a load runs alone: a
stream asked for while a model loads waits until the load is over, and a load waits until
the streams running have ended.

Answers are scripted as lists of token texts; a `ToolCall` in the list is streamed as a tool
call (`Chunk.tool_call`, no text), and an answer holding one ends with "tool_calls", as the
engine does when the model calls tools given in `RequestOptions.tools`.
`hold_after(n)` pauses every stream after n tokens until `release()`, so a test can look at
the screen mid-answer;
`let_new_streams_run()` then lets streams started later (or not yet held) run on while
those held stay held. Cancelling a held stream ends it alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlxchat.engine.types import (
    Chunk,
    LoadProgress,
    Message,
    ModelInfo,
    ModelLoadError,
    Progress,
    RequestOptions,
    SamplingParams,
    Stats,
    ToolCall,
)

if TYPE_CHECKING:
    pass

DEFAULT_ANSWER = ["Hello", "!", " How", " can", " I", " help", "?"]


def fixed_stats(tokens: int, **changes: Any) -> Stats:
    """Deterministic numbers for snapshots: the same for the same token count."""
    values: dict[str, Any] = dict(
        prompt_tokens=125,  # 0.4 s at 312.5 tok/s: a measured speed
        prompt_tps=312.5,
        generation_tokens=tokens,
        generation_tps=18.4 if tokens else 0.0,
        ttft=0.125,
        peak_memory=0.61,
        active_memory=0.52,
        context_tokens=42 + tokens,
        context_limit=2048,
        dropped_messages=0,
    )
    values.update(changes)
    return Stats(**values)


@dataclass
class Request:
    """What one `stream` call asked for."""

    messages: list[Message]
    params: SamplingParams
    session: str | None
    max_context: int | None
    options: RequestOptions | None = None


@dataclass
class FakeEngine:
    """The scripted engine.

    Attributes:
        answers: Token lists, used in turn (the last one repeats).
        token_delay: Seconds between tokens.
        load_delay: Seconds a load takes.
        missing: Model names whose load fails.
        dropped: `Stats.dropped_messages` to report.
        error: When set, every stream fails with this `EngineError` text.
        finish: The finish reason of a complete answer ("stop" or "length").
        notice: The loaded models' `ModelInfo.notice`.
        base_models: Model names loaded as base models (no chat template).
        load_error: When set, every load fails with this `ModelLoadError` text.
        loaded: A model loaded from the start (None: none until `load`).
        reasoning: Token texts every answer thinks before it answers (channel "reasoning",
            with "thinking" progress events), as a thinking model's stream has them.
    """

    answers: list[list[str | ToolCall]] = field(default_factory=lambda: [list(DEFAULT_ANSWER)])
    token_delay: float = 0.0
    load_delay: float = 0.0
    missing: set[str] = field(default_factory=set)
    dropped: int = 0
    error: str | None = None
    finish: str = "stop"
    context_length: int = 2048
    notice: str = ""
    base_models: set[str] = field(default_factory=set)
    load_error: str | None = None
    loaded: str | None = None
    requests: list[Request] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    reset_sessions: list[str] = field(default_factory=list)
    on_token: Callable[[int, str], None] | None = None
    reasoning: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._info: ModelInfo | None = None
        self._lock: asyncio.Lock | None = None
        self._hold_after: int | None = None
        self._gate: asyncio.Event | None = None
        self._answer_index = 0
        self._load_gate: asyncio.Event | None = None
        self.current: FakeStream | None = None
        self.streams: list[FakeStream] = []
        self._running = 0
        self._idle: asyncio.Event | None = None
        self.sampling_defaults: dict[str, Any] = {}
        if self.loaded is not None:
            self._info = self._model(self.loaded)

    # ----- the Engine API -------------------------------------------------------------------
    @property
    def model_info(self) -> ModelInfo | None:
        """The loaded model."""
        return self._info

    def _job_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def load(
        self, name: str, on_progress: Callable[[LoadProgress], None] | None = None
    ) -> ModelInfo:
        """Pretend to load `name` (fails for names in `missing`; the old model stays)."""
        async with self._job_lock():
            while self._running:  # a load runs alone: after the streams running now
                self._idle = asyncio.Event()
                await self._idle.wait()
            self.loads.append(name)
            if on_progress:
                on_progress(LoadProgress(name, "reading weights", 0.5))
            if self.load_delay:
                await asyncio.sleep(self.load_delay)
            if self._load_gate is not None:
                await self._load_gate.wait()
            if name in self.missing:
                raise ModelLoadError(f"no model named '{name}': not a file, folder or cached repo")
            if self.load_error is not None:
                raise ModelLoadError(self.load_error)
            self._info = self._model(name)
            if on_progress:
                on_progress(LoadProgress(name, "ready", 1.0))
            return self._info

    def _model(self, name: str) -> ModelInfo:
        return ModelInfo(
            name=name,
            path=f"/models/{name}",
            context_length=self.context_length,
            sampling_defaults=dict(self.sampling_defaults),
            notice=self.notice,
            chat_template=name not in self.base_models,
        )

    def stream(
        self,
        prompt: Sequence[Message] | str,
        params: SamplingParams | None = None,
        *,
        session: str | None = None,
        chat_template: bool = True,
        max_context: int | None = None,
        progress: bool = True,
        options: RequestOptions | None = None,
    ) -> FakeStream:
        """Start a scripted answer."""
        messages = [Message("user", prompt)] if isinstance(prompt, str) else list(prompt)
        self.requests.append(
            Request(messages, params or SamplingParams(), session, max_context, options)
        )
        answer = self.answers[min(self._answer_index, len(self.answers) - 1)]
        self._answer_index += 1
        self.current = FakeStream(self, list(answer), params or SamplingParams())
        self.streams.append(self.current)
        return self.current

    async def reset_session(self, session: str) -> None:
        """Record the session reset."""
        self.reset_sessions.append(session)

    def prompt_cache_report(self) -> dict[str, int] | None:
        """A scripted engine keeps no cache."""
        return None

    async def count_tokens(
        self, prompt: Any, chat_template: bool = True, options: Any = None
    ) -> int:
        """One token per word."""
        if isinstance(prompt, str):
            return len(prompt.split())
        return sum(len(m.content.split()) for m in prompt)

    def cancel(self) -> None:
        """Stop the streams running now."""
        for stream in self.streams:
            stream.cancel()

    @property
    def running(self) -> int:
        """How many streams are generating now."""
        return self._running

    # ----- test controls --------------------------------------------------------------------
    def hold_after(self, tokens: int) -> None:
        """Pause every stream after `tokens` tokens until `release()`."""
        self._hold_after = tokens
        self._gate = asyncio.Event()

    def hold_loads(self) -> None:
        """Make loads wait until `release_loads()`."""
        self._load_gate = asyncio.Event()

    def release_loads(self) -> None:
        """Let held loads finish."""
        if self._load_gate is not None:
            self._load_gate.set()
            self._load_gate = None

    def let_new_streams_run(self) -> None:
        """Streams that have not reached the hold yet run on; those held stay held until
        `release()` (or their own `cancel()`)."""
        self._hold_after = None

    def release(self) -> None:
        """Let held streams go on."""
        self._hold_after = None
        if self._gate is not None:
            self._gate.set()


class FakeStream:
    """The async iterator of one scripted answer."""

    def __init__(
        self, engine: FakeEngine, tokens: list[str | ToolCall], params: SamplingParams
    ) -> None:
        self.engine = engine
        tokens = list(engine.reasoning) + tokens
        self.thought = min(len(engine.reasoning), params.max_tokens)
        self.tokens = tokens[: params.max_tokens]
        self.cut = len(tokens) > params.max_tokens
        self.cancelled = False
        self.held = asyncio.Event()
        self.finished = False
        self._stopped = asyncio.Event()
        self._iterator = self._run()

    def cancel(self) -> None:
        """Stop within one token (a held stream at once: the others stay held)."""
        self.cancelled = True
        self._stopped.set()

    async def _hold(self, gate: asyncio.Event) -> None:
        """Wait for `gate`, or for this stream's cancel."""
        waits = [asyncio.ensure_future(gate.wait()), asyncio.ensure_future(self._stopped.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def __aiter__(self) -> FakeStream:
        return self

    async def __anext__(self) -> Chunk | Progress:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        self.cancel()

    async def _run(self):  # noqa: ANN202 - an async generator
        engine = self.engine
        async with engine._job_lock():  # waits while a model loads
            if self.cancelled:
                return
            if engine._info is None:
                from mlxchat.engine.types import EngineError

                raise EngineError("no model is loaded; load one first (e.g. `demo`)")
            if engine.error:
                from mlxchat.engine.types import EngineError

                raise EngineError(engine.error)
            engine._running += 1
        try:
            async for event in self._tokens():
                yield event
        finally:
            self.finished = True
            engine._running -= 1
            if not engine._running and engine._idle is not None:
                engine._idle.set()

    async def _tokens(self):  # noqa: ANN202 - an async generator
        engine = self.engine
        yield Progress("prefill", fixed_stats(0, dropped_messages=engine.dropped), 42, 42)
        count = len(self.tokens)
        for index, token in enumerate(self.tokens):
            if engine._hold_after is not None and index == engine._hold_after:
                self.held.set()
                assert engine._gate is not None
                await self._hold(engine._gate)
            if engine.token_delay:
                await asyncio.sleep(engine.token_delay)
            stats = fixed_stats(index + 1, dropped_messages=engine.dropped)
            if self.cancelled:
                yield Chunk("", None, stats, finish_reason="cancelled")
                return
            last = index == count - 1
            calls = any(isinstance(t, ToolCall) for t in self.tokens)
            finish = (
                ("length" if self.cut else "tool_calls" if calls else engine.finish)
                if last
                else None
            )
            if isinstance(token, ToolCall):
                yield Chunk("", None, stats, finish_reason=finish, tool_call=token)
                continue
            if engine.on_token:
                engine.on_token(index, token)
            thinking = index < self.thought
            channel = "reasoning" if thinking else "answer"
            yield Chunk(token, index, stats, finish_reason=finish, channel=channel)
            if index % 8 == 7:
                yield Progress("thinking" if thinking else "generating", stats)
        if not self.tokens:
            yield Chunk("", None, fixed_stats(0), finish_reason="stop")
