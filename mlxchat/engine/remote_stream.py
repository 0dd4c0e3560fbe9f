"""What a remote engine's streams are made of: a blocking request run on a thread and read
as an async iterator (`ThreadedStream`), the text of a streamed choice (`delta_text`), and
what the client measures of it (`Meter`). Shared by the remote chat and translation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mlxchat.engine import remote_http as rh
from mlxchat.engine.types import Stats

T = TypeVar("T")
Cancelled = rh.Cancel


class ThreadedStream(Generic[T]):
    """Async iteration over a blocking generator that runs on its own thread.

    `make(cancelled)` builds the generator; it must poll `cancelled()` and stop soon after
    it turns True (`cancel()`, or the consuming task being cancelled).
    """

    def __init__(self, make: Callable[[Cancelled], Iterator[T]]) -> None:
        self._stop = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._done = False
        thread = threading.Thread(target=self._run, args=(make,), daemon=True)
        thread.start()

    def _put(self, kind: str, value: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody listens any more
            self._stop.set()

    def _run(self, make: Callable[[Cancelled], Iterator[T]]) -> None:
        try:
            for item in make(self._stop.is_set):  # it ends itself soon after a cancel
                self._put("item", item)
        except BaseException as error:  # handed to the consumer
            self._put("error", error)
        else:
            self._put("end", None)

    def __aiter__(self) -> ThreadedStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        try:
            kind, value = await self._queue.get()
        except asyncio.CancelledError:
            self.cancel()
            raise
        if kind == "item":
            return value
        self._done = True
        if kind == "error":
            raise value
        raise StopAsyncIteration

    def cancel(self) -> None:
        """Ask the generator to stop."""
        self._stop.set()

    def __del__(self) -> None:  # dropped before its end (e.g. `break`): stop the request
        self._stop.set()


def delta_text(choice: dict[str, Any]) -> str:
    """The new text of a streamed choice (chat delta or completion text)."""
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
    return text if isinstance(text, str) else ""


def delta_reasoning(choice: dict[str, Any]) -> str:
    """The new reasoning of a streamed chat choice: `reasoning_content` (DeepSeek, vLLM,
    mlxchat serve) or `reasoning` (mlx_lm.server, Ollama, LM Studio)."""
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return ""
    text = delta.get("reasoning_content") or delta.get("reasoning")
    return text if isinstance(text, str) else ""


class Meter:
    """What the client measures: time to first token, streamed deltas, the server's usage."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None
        self.tokens = 0
        self.prompt_tokens = 0
        self.completion_tokens: int | None = None

    def token(self) -> Stats:
        """Count one streamed delta (about one token) and return the stats now."""
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.tokens += 1
        return self.stats(now)

    def usage(self, usage: Any) -> None:
        """Take the server's token counts (the last chunk of a stream with usage)."""
        if isinstance(usage, dict):
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage.get("completion_tokens") or 0)

    def stats(self, now: float | None = None) -> Stats:
        """The stats so far (the server's counts once it reported them)."""
        now = time.perf_counter() if now is None else now
        ttft = (self.first or now) - self.start
        tokens = self.completion_tokens if self.completion_tokens is not None else self.tokens
        decode = now - self.first if self.first is not None else 0.0
        return Stats(
            prompt_tokens=self.prompt_tokens,
            prompt_tps=self.prompt_tokens / ttft if self.prompt_tokens and ttft > 0 else 0.0,
            generation_tokens=tokens,
            generation_tps=(self.tokens - 1) / decode if self.tokens > 1 and decode > 0 else 0.0,
            ttft=ttft,
            context_tokens=self.prompt_tokens + tokens if self.prompt_tokens else 0,
        )
