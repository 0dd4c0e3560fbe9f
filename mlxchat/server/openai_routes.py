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
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event

from mlxchat.engine.types import Chunk, Progress
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
    return await _respond(request, body, messages, chat_template=True, shape=_chat_shape)


@v1.post("/completions")
async def completions(request: Request) -> Any:
    """A plain text continuation of `prompt` (no chat template)."""
    body = parse_body(await read_body(request), CompletionRequest)
    return await _respond(request, body, body.text(), chat_template=False, shape=_text_shape)


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
Shape = Callable[[str, str | None, bool], dict[str, Any]]


def _chat_shape(text: str, finish: str | None, first: bool) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant", "content": text} if first else {"content": text}
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def _text_shape(text: str, finish: str | None, first: bool) -> dict[str, Any]:
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}


async def _respond(
    request: Request, body: Any, prompt: Any, *, chat_template: bool, shape: Shape
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
    texts: list[str] = []
    item = generation.first
    last: Chunk | None = None
    check_at = time.monotonic() + WATCH_INTERVAL
    try:
        while True:
            if isinstance(item, Chunk):
                texts.append(item.text)
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
    text, finish = "".join(texts), last.finish_reason
    choice = shape(text, finish, False)
    if "delta" in choice:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        choice |= {"logprobs": None, "finish_reason": finish}
    obj = "chat.completion" if head["object"] == "chat.completion.chunk" else "text_completion"
    return head | {"object": obj, "choices": [choice], "usage": usage(last.stats)}


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
    item = generation.first
    try:
        while True:
            if item is TIMEOUT:
                yield KEEPALIVE_COMMENT
            elif isinstance(item, Progress):
                yield _data(progress_payload(item), "progress")
            elif isinstance(item, Chunk) and (item.text or item.finish_reason or first):
                finish = item.finish_reason
                yield _data(head | {"choices": [shape(item.text, finish, first)]})
                first = False
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
