"""OpenAI-compatible HTTP: `/v1/chat/completions`, `/v1/completions` (JSON or SSE),
`/v1/models`, and `/health`.

SSE streams follow OpenAI's format: `data: {chunk}` events sharing one `id` and `created`,
the role in the first delta, `finish_reason` on the last content chunk, an optional usage
chunk (`stream_options.include_usage`), then `data: [DONE]`. mlxchat adds named
`event: progress` events (only with `stream_options.include_progress`: OpenAI's Python
client does not skip named events) and `: keep-alive` comments during silences.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event

from mlxchat.engine.types import Chunk, Progress, RequestOptions
from mlxchat.server.auth import require_api_key
from mlxchat.server.errors import APIError
from mlxchat.server.generation import (
    WATCH_INTERVAL,
    Generation,
    progress_payload,
    served_model,
    start,
    usage,
)
from mlxchat.server.openai_shapes import chat_logprobs, text_logprobs, tool_call_payload
from mlxchat.server.pump import TIMEOUT
from mlxchat.server.schemas import ChatRequest, CompletionRequest, parse_body
from mlxchat.server.state import model_defaults, state_of

router = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness, the loaded model, the queue and the prompt cache."""
    state = state_of(request)
    info = state.engine.model_info
    return {
        "status": "ok",
        "model": info.name if info else None,
        "active_requests": state.queue.running,
        "waiting_requests": state.queue.waiting,
        "prompt_cache": state.engine.prompt_cache_report(),
    }


@v1.get("/models")
async def models(request: Request) -> dict[str, Any]:
    """The loaded model first, then the other local models `mlxchat models` lists."""
    from mlxchat.models.loader import list_local_models

    loaded = served_model(state_of(request), None)
    names = [loaded] + [m.name for m in list_local_models() if m.available and m.name != loaded]
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "mlxchat", "loaded": i == 0}
        for i, name in enumerate(names)
    ]
    return {"object": "list", "data": data}


@v1.post("/chat/completions")
async def chat_completions(request: Request) -> Any:
    """A chat answer, whole (JSON) or streamed (SSE)."""
    body = parse_body(await read_body(request), ChatRequest)
    messages = body.conversation()
    options = body.with_thinking(body.options(), state_of(request).config.defaults)
    return await _respond(
        request, body, messages, chat_template=True, shape=_chat_shape, options=options
    )


@v1.post("/completions")
async def completions(request: Request) -> Any:
    """A plain text continuation of `prompt` (no chat template)."""
    body = parse_body(await read_body(request), CompletionRequest)
    return await _respond(
        request,
        body,
        body.text(),
        chat_template=False,
        shape=_text_shape,
        options=body.base_options(),
    )


router.include_router(v1)


JSON_TYPES = ("application/json", "")
"""Content types a body may be declared as (none: curl's `--json`-less scripts and tests)."""


async def read_body(request: Request) -> bytes:
    """The request body: JSON only (415 otherwise: a `text/plain` or form body is what a
    foreign web page can send without asking, see `guard.py`), refused with 413 past the
    configured size (before reading it all)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind not in JSON_TYPES:
        raise APIError(
            415,
            f"the body must be JSON (Content-Type: application/json), not '{kind}'",
            code="unsupported_media_type",
        )
    limit = state_of(request).config.max_body_bytes
    too_large = APIError(413, f"the body is larger than {limit} bytes", code="request_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_large
    return bytes(body)


# ----- response shapes: chat.completion(.chunk) and text_completion -------------------------
Shape = Callable[[Chunk, bool, int], dict[str, Any]]
"""A streamed choice from a chunk, whether it is the first, and the tool calls before it."""


def _chat_shape(chunk: Chunk, first: bool, calls_before: int) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant"} if first else {}
    if chunk.tool_call is not None:
        delta["tool_calls"] = [tool_call_payload(chunk.tool_call, calls_before)]
    else:
        delta["content"] = chunk.text
    logprobs = chat_logprobs([chunk.logprob] if chunk.logprob else [])
    return {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": chunk.finish_reason}


def _text_shape(chunk: Chunk, first: bool, calls_before: int) -> dict[str, Any]:
    logprobs = text_logprobs([chunk.logprob] if chunk.logprob else [], 0)
    return {
        "index": 0,
        "text": chunk.text,
        "logprobs": logprobs,
        "finish_reason": chunk.finish_reason,
    }


def _reasoning_choice(text: str, first: bool) -> dict[str, Any]:
    """A chat chunk's choice carrying reasoning: `reasoning_content` (DeepSeek, vLLM) and
    `reasoning` (mlx_lm.server, Ollama) hold the same text; `content` never does."""
    delta: dict[str, Any] = {"role": "assistant"} if first else {}
    delta |= {"content": None, "reasoning_content": text, "reasoning": text}
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}


async def _respond(
    request: Request,
    body: Any,
    prompt: Any,
    *,
    chat_template: bool,
    shape: Shape,
    options: RequestOptions,
) -> Any:
    state = state_of(request)
    model = served_model(state, body.model)
    params = body.sampling(state.config.defaults, model_defaults(state))
    generation = await start(
        state,
        prompt,
        params,
        chat_template=chat_template,
        progress=body.stream and body.include_progress,
        gone=request.is_disconnected,
        prompt_param="messages" if shape is _chat_shape else "prompt",
        options=options,
    )
    if generation is None:  # the client left while queued: nobody to answer
        return JSONResponse({}, status_code=499)
    chat = shape is _chat_shape
    head = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
    }
    if body.stream:
        sse = _sse(generation, head, shape, body.include_usage, state.config.keepalive_interval)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return EventSourceResponse(sse, headers=headers)
    return await _whole(generation, head, shape, request.is_disconnected)


async def _whole(
    generation: Generation, head: dict[str, Any], shape: Shape, gone: Callable[[], Any]
) -> Any:
    """Collect the answer into one response object; a client that left cancels it (checked
    every `WATCH_INTERVAL`, so the engine is free within about a token)."""
    chunks: list[Chunk] = []
    item = generation.first
    last: Chunk | None = None
    check_at = time.monotonic() + WATCH_INTERVAL
    try:
        while True:
            if isinstance(item, Chunk):
                chunks.append(item)
                last = item
            if time.monotonic() >= check_at:
                if await gone():
                    return JSONResponse({}, status_code=499)  # nobody reads it
                check_at = time.monotonic() + WATCH_INTERVAL
            try:
                item = await generation.next(WATCH_INTERVAL)
            except StopAsyncIteration:
                break
    finally:
        generation.close()
    assert last is not None
    finish = last.finish_reason
    text = "".join(c.text for c in chunks if c.channel == "answer")
    reasoning = "".join(c.text for c in chunks if c.channel == "reasoning")
    logprobs = [c.logprob for c in chunks if c.logprob is not None]
    calls = [c.tool_call for c in chunks if c.tool_call is not None]
    if shape is _chat_shape:
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = [tool_call_payload(call) for call in calls]
        else:
            message["content"] = text
        if reasoning:
            message |= {"reasoning_content": reasoning, "reasoning": reasoning}
        choice = {"index": 0, "message": message, "logprobs": chat_logprobs(logprobs)}
        choice["finish_reason"] = finish
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": text_logprobs(logprobs, 0)}
        choice["finish_reason"] = finish
        obj = "text_completion"
    return head | {"object": obj, "choices": [choice], "usage": usage(last.stats)}


def _chat_reasoning(chunk: Chunk, shape: Shape) -> bool:
    """Whether a chunk is reasoning to stream (a plain completion has no place for it)."""
    return chunk.channel == "reasoning" and bool(chunk.text) and shape is _chat_shape


def _makes_answer_event(chunk: Chunk, first: bool) -> bool:
    """Whether a chunk makes an answer event: answer text, a tool call, an answer token's
    log probability, the finish, or the first event."""
    answer = chunk.channel == "answer" and bool(chunk.text or chunk.logprob)
    return answer or bool(chunk.finish_reason or chunk.tool_call) or first


def _data(payload: dict[str, Any] | str, event: str | None = None) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return format_sse_event(data_str=text, event=event)


async def _sse(
    generation: Generation,
    head: dict[str, Any],
    shape: Shape,
    include_usage: bool,
    keepalive: float,
) -> AsyncIterator[bytes]:
    """The SSE byte stream of one generation; closing it cancels the generation."""
    first = True
    calls = 0
    item = generation.first
    try:
        while True:
            if item is TIMEOUT:
                yield KEEPALIVE_COMMENT
            elif isinstance(item, Progress):
                yield _data(progress_payload(item), "progress")
            elif isinstance(item, Chunk) and _chat_reasoning(item, shape):
                yield _data(head | {"choices": [_reasoning_choice(item.text, first)]})
                first = False
            if isinstance(item, Chunk) and _makes_answer_event(item, first):
                finish = item.finish_reason
                answer = item if item.channel == "answer" else replace(item, text="")
                yield _data(head | {"choices": [shape(answer, first, calls)]})
                first = False
                calls += item.tool_call is not None
                if finish is not None and include_usage:
                    yield _data(head | {"choices": [], "usage": usage(item.stats)})
            try:
                item = await generation.next(keepalive)
            except StopAsyncIteration:
                break
    except APIError as error:  # the engine failed mid-stream: tell the client, then end
        yield _data(error.envelope())
    finally:
        generation.close()
    yield _data("[DONE]")
