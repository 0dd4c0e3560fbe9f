"""The remote engine: the engine contract over an OpenAI-compatible server.

    engine = RemoteEngine(api_key=None)
    await engine.load("http://localhost:8080/v1#my-model")
    async for event in engine.stream("Hello"):
        ...

Requests are blocking httpx calls; the async API runs each on a thread and hands its events
to the event loop (`ThreadedStream`). Stats are what a client can measure: time to first
token, tokens and tok/s from the streamed deltas, and the server's `usage` at the end.
Cancelling stops reading and closes the response, which closes the connection.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from mlxchat.engine import remote_http as rh
from mlxchat.engine import remote_tools as rt
from mlxchat.engine.contract import OnLoadProgress, Prompt
from mlxchat.engine.remote_stream import (
    Cancelled,
    Meter,
    ThreadedStream,
    delta_reasoning,
    delta_text,
)
from mlxchat.engine.types import (
    Chunk,
    EngineError,
    Event,
    FinishReason,
    LoadProgress,
    Message,
    ModelInfo,
    ModelLoadError,
    Progress,
    RequestOptions,
    SamplingParams,
)
from mlxchat.models.remote import is_remote

T = TypeVar("T")


class RemoteEngine:
    """The engine contract on a model served over HTTP (OpenAI-compatible API).

    Args:
        api_key: Bearer token for the server (None: $MLXCHAT_API_KEY, or none).
        progress_interval: Seconds between `Progress` events in streams.
    """

    def __init__(self, *, api_key: str | None = None, progress_interval: float = 0.25) -> None:
        self.progress_interval = progress_interval
        self.client = rh.make_client(api_key)
        self.endpoint: rh.Endpoint | None = None
        self._info: ModelInfo | None = None
        self._running: list[threading.Event] = []

    # ----- models ---------------------------------------------------------------------
    @property
    def model_info(self) -> ModelInfo | None:
        """The connected server and model, named ``model @ host``."""
        return self._info

    def load_sync(self, name: str, on_progress: OnLoadProgress | None = None) -> ModelInfo:
        """Connect to ``http://host:port/v1[#model]`` (or pick another model on the server).

        Raises:
            ModelLoadError: One line: unreachable, refused key, or a model it does not have.
        """
        if is_remote(name):
            endpoint = rh.parse_endpoint(name)
        elif self.endpoint is not None:
            endpoint = self.endpoint.with_model(name)
        else:
            raise ModelLoadError(f"'{name}' is not a server URL; use e.g. http://host:8080/v1")
        if on_progress is not None:
            on_progress(LoadProgress(name, f"connecting to {endpoint.host}", None))
        models = rh.list_models(self.client, endpoint)
        if models is not None:
            if endpoint.model is None and len(models) == 1:
                endpoint = endpoint.with_model(models[0])
            elif endpoint.model is not None and endpoint.model not in models:
                offered = ", ".join(models[:5]) or "none"
                raise ModelLoadError(
                    f"{endpoint.host} has no model '{endpoint.model}' (it offers: {offered})"
                )
        self.endpoint = endpoint
        self._info = ModelInfo(name=endpoint.label, path=endpoint.base_url)
        if on_progress is not None:
            on_progress(LoadProgress(name, "ready", 1.0))
        return self._info

    async def load(self, name: str, on_progress: OnLoadProgress | None = None) -> ModelInfo:
        """`load_sync` on a thread; progress is reported on the event loop."""
        loop = asyncio.get_running_loop()
        report = None
        if on_progress is not None:
            callback = on_progress

            def report(event: LoadProgress) -> None:
                loop.call_soon_threadsafe(callback, event)

        return await asyncio.to_thread(self.load_sync, name, report)

    # ----- generation -----------------------------------------------------------------
    def _connected(self) -> rh.Endpoint:
        if self.endpoint is None:
            raise EngineError("no server is connected; give one as -m http://host:port/v1")
        return self.endpoint

    def events(
        self,
        prompt: Prompt,
        params: SamplingParams,
        chat_template: bool,
        progress: bool,
        cancelled: Cancelled,
        options: RequestOptions | None = None,
    ) -> Iterator[Event]:
        """The blocking stream of one request: `Chunk` per delta, `Progress`, a last chunk."""
        endpoint = self._connected()
        if isinstance(prompt, str) and not prompt.strip():
            raise EngineError("the prompt is empty; give some text to answer")
        messages = [Message("user", prompt)] if isinstance(prompt, str) else list(prompt)
        path, body = request_body(endpoint, messages, params, chat_template, options)
        meter = Meter()
        reason: FinishReason = "cancelled"
        last_progress = time.perf_counter()
        calls = rt.ToolCallJoiner()
        for data in rh.stream_json(self.client, endpoint, path, body, cancelled):
            meter.usage(data.get("usage"))
            for choice in data.get("choices") or ():
                thought = delta_reasoning(choice)
                if thought:
                    yield Chunk(thought, None, meter.token(), channel="reasoning")
                text = delta_text(choice)
                logprobs = rt.choice_logprobs(choice)
                if text:
                    logprob = logprobs[0] if logprobs else None
                    yield Chunk(text, None, meter.token(), logprob=logprob)
                for call in calls.add(choice.get("delta")):
                    yield Chunk("", None, meter.stats(), tool_call=call)
                if choice.get("finish_reason"):
                    for call in calls.flush():
                        yield Chunk("", None, meter.stats(), tool_call=call)
                    reason = rt.finish_reason(choice["finish_reason"])
            if progress and time.perf_counter() - last_progress >= self.progress_interval:
                last_progress = time.perf_counter()
                yield Progress("generating" if meter.tokens else "prefill", meter.stats())
        if cancelled():
            reason = "cancelled"
        else:
            for call in calls.flush():
                yield Chunk("", None, meter.stats(), tool_call=call)
        yield Chunk("", None, meter.stats(), finish_reason=reason)

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
    ) -> ThreadedStream[Event]:
        """Stream the answer (the server keeps its own prompt cache: `session` and
        `max_context` are not needed and ignored)."""
        params = params or SamplingParams()
        return ThreadedStream(
            lambda cancelled: self._tracked(
                lambda c: self.events(prompt, params, chat_template, progress, c, options),
                cancelled,
            )
        )

    def iterate(
        self, prompt: Prompt, params: SamplingParams | None = None, **kw: Any
    ) -> Generator[Event, None, Any]:
        """Blocking `stream`; closing the generator closes the connection."""
        chat_template = kw.pop("chat_template", True)
        progress = kw.pop("progress", True)
        kw.pop("session", None)
        kw.pop("max_context", None)
        options = kw.pop("options", None)
        if kw:
            raise TypeError(f"unexpected arguments: {', '.join(kw)}")
        params = params or SamplingParams()
        return self._tracked(
            lambda c: self.events(prompt, params, chat_template, progress, c, options)
        )

    def _tracked(
        self, make: Callable[[Cancelled], Iterator[T]], cancelled: Cancelled = lambda: False
    ) -> Generator[T, None, None]:
        """Run `make` so that `cancel()` stops it too (closing the generator stops it)."""
        stop = threading.Event()
        self._running.append(stop)
        try:
            yield from make(lambda: cancelled() or stop.is_set())
        finally:
            self._running.remove(stop)

    def cancel(self) -> None:
        """Stop every request running now."""
        for stop in list(self._running):
            stop.set()

    async def reset_session(self, session: str) -> None:
        """Nothing to forget: the server manages its prompt cache itself."""

    def prompt_cache_report(self) -> dict[str, int] | None:
        """None: the server's prompt cache is its own business."""
        return None

    async def count_tokens(
        self, prompt: Prompt, chat_template: bool = True, options: RequestOptions | None = None
    ) -> int:
        """The server's own count: `usage.prompt_tokens` of a one-token request (of
        `options`, only what shapes the prompt is sent: tools, template variables)."""
        shaping = None
        if options is not None:
            shaping = replace(options, response_format=None, logprobs=False, top_logprobs=0)

        def run(cancelled: Cancelled) -> Iterator[int]:
            endpoint = self._connected()
            messages = [Message("user", prompt)] if isinstance(prompt, str) else list(prompt)
            path, body = request_body(
                endpoint, messages, SamplingParams(max_tokens=1), chat_template, shaping
            )
            for data in rh.stream_json(self.client, endpoint, path, body, cancelled):
                if data.get("usage"):
                    yield int(data["usage"].get("prompt_tokens", 0))

        counts = [count async for count in ThreadedStream(run)]
        return counts[-1] if counts else 0

    def close(self) -> None:
        """Stop what runs and close the connections."""
        self.cancel()
        self.client.close()


def request_body(
    endpoint: rh.Endpoint,
    messages: list[Message],
    params: SamplingParams,
    chat_template: bool,
    options: RequestOptions | None = None,
) -> tuple[str, dict[str, Any]]:
    """The API path and JSON body for a streamed request (usage included); template
    variables go as `chat_template_kwargs` (vLLM's, mlx_lm.server's and mlxchat's name), a
    thinking budget as mlxchat's `thinking_budget`, tools, response format and logprobs as
    OpenAI names them (`remote_tools.option_fields`), each only when set."""
    body: dict[str, Any] = {
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": params.max_tokens,
        "temperature": params.temp,
        "top_p": params.top_p,
    }
    if endpoint.model:
        body["model"] = endpoint.model
    optional = {
        "top_k": params.top_k or None,
        "min_p": params.min_p or None,
        "repetition_penalty": params.repetition_penalty,
        "seed": params.seed,
        "stop": list(params.stop) or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if options is not None and chat_template:
        if options.template_kwargs:
            body["chat_template_kwargs"] = dict(options.template_kwargs)
        if options.thinking_budget is not None:
            body["thinking_budget"] = options.thinking_budget
    if options is not None:
        body.update(rt.option_fields(options, chat_template))
    if chat_template:
        body["messages"] = [rt.wire_message(m) for m in messages]
        return "chat/completions", body
    body["prompt"] = "\n\n".join(m.content for m in messages)
    return "completions", body
