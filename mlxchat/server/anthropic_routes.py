"""Anthropic's Messages API: `POST /v1/messages` (JSON or SSE) and
`POST /v1/messages/count_tokens`, so the `anthropic` SDK and Claude Code run on the served
model.

The stream is Anthropic's event sequence: `message_start`, `ping`, then per content block
`content_block_start`, its deltas (`thinking_delta` for a reasoning model's thinking,
`text_delta`, or one `input_json_delta` for a tool call) and `content_block_stop`, then
`message_delta` (stop_reason, usage) and `message_stop`. Errors on these paths use
Anthropic's envelope (`errors.anthropic_envelope`). The key may come as `x-api-key`;
`anthropic-version` is read and any version is accepted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, format_sse_event

from mlxchat.engine.types import Chunk, Stats, ToolCall
from mlxchat.server.anthropic_schemas import CountRequest, MessagesRequest
from mlxchat.server.auth import require_api_key
from mlxchat.server.errors import APIError, anthropic_envelope
from mlxchat.server.generation import WATCH_INTERVAL, Generation, served_model, start
from mlxchat.server.openai_routes import read_body
from mlxchat.server.pump import TIMEOUT
from mlxchat.server.schemas import check_body, parse_json
from mlxchat.server.state import model_defaults, state_of

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "cancelled": "end_turn",
    "error": "end_turn",
}


@router.post("/messages/count_tokens")
async def count_tokens(request: Request) -> dict[str, int]:
    """The prompt's tokens as `/v1/messages` would send it (system, tools, messages)."""
    body = check_body(parse_json(await read_body(request)), CountRequest)
    state = state_of(request)
    served_model(state, body.model)
    tokens = await state.engine.count_tokens(body.conversation(), options=body.options())
    return {"input_tokens": tokens}


@router.post("/messages")
async def messages(request: Request) -> Any:
    """An answer as Anthropic's `message`, whole (JSON) or streamed (SSE)."""
    request.headers.get("anthropic-version")  # any version: the shapes are the current ones
    body = check_body(parse_json(await read_body(request)), MessagesRequest)
    state = state_of(request)
    served_model(state, body.model)
    conversation, options = body.conversation(), body.options()
    params = body.sampling(state.config.defaults, model_defaults(state))
    generation = await start(
        state,
        conversation,
        params,
        chat_template=True,
        progress=False,
        gone=request.is_disconnected,
        options=options,
    )
    if generation is None:
        return JSONResponse({}, status_code=499)
    head = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body.model or "",
    }
    if body.stream:
        events = _stream(generation, head, state.config.keepalive_interval)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return EventSourceResponse(events, headers=headers)
    return await _whole(generation, head, request.is_disconnected)


def _usage(stats: Stats) -> dict[str, int]:
    prompt = stats.cached_tokens + stats.prompt_tokens
    return {
        "input_tokens": prompt,
        "output_tokens": stats.generation_tokens,
        "cache_read_input_tokens": stats.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


def _tool_use(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        arguments = {}
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


async def _whole(generation: Generation, head: dict[str, Any], gone: Callable[[], Any]) -> Any:
    chunks: list[Chunk] = []
    item = generation.first
    try:
        while True:
            if isinstance(item, Chunk):
                chunks.append(item)
            try:
                item = await generation.next(WATCH_INTERVAL)
            except StopAsyncIteration:
                break
            if item is TIMEOUT and await gone():
                return JSONResponse({}, status_code=499)
    finally:
        generation.close()
    last = chunks[-1]
    thinking = "".join(chunk.text for chunk in chunks if chunk.channel == "reasoning")
    text = "".join(chunk.text for chunk in chunks if chunk.channel != "reasoning")
    content: list[dict[str, Any]] = []
    if thinking:  # a reasoning model's thinking (the think split's "reasoning" channel)
        content.append({"type": "thinking", "thinking": thinking, "signature": ""})
    if text:
        content.append({"type": "text", "text": text})
    content += [_tool_use(c.tool_call) for c in chunks if c.tool_call is not None]
    return head | {
        "content": content,
        "stop_reason": STOP_REASONS.get(last.finish_reason or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(last.stats),
    }


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps({"type": kind, **payload}, ensure_ascii=False)
    return format_sse_event(data_str=data, event=kind)


async def _stream(
    generation: Generation, head: dict[str, Any], keepalive: float
) -> AsyncIterator[bytes]:
    """Anthropic's SSE event sequence for one generation; closing it cancels it."""
    item = generation.first
    stats = getattr(item, "stats", Stats())
    usage = {"input_tokens": stats.context_tokens - stats.generation_tokens, "output_tokens": 0}
    message = head | {"content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    yield _event("message_start", {"message": message})
    yield _event("ping", {})
    index = -1
    open_kind: str | None = None  # the block being written: "text", "thinking" or none
    try:
        while True:
            if item is TIMEOUT:
                yield _event("ping", {})
            elif isinstance(item, Chunk):
                kind = "thinking" if item.channel == "reasoning" else "text"
                if item.text:
                    if open_kind != kind:
                        if open_kind is not None:
                            yield _event("content_block_stop", {"index": index})
                        index += 1
                        open_kind = kind
                        block = {"type": kind, kind: ""}
                        yield _event(
                            "content_block_start", {"index": index, "content_block": block}
                        )
                    delta = {"type": f"{kind}_delta", kind: item.text}
                    yield _event("content_block_delta", {"index": index, "delta": delta})
                ends = item.tool_call is not None or item.finish_reason is not None
                if ends and open_kind is not None:
                    yield _event("content_block_stop", {"index": index})
                    open_kind = None
                if item.tool_call is not None:
                    index += 1
                    block = _tool_use(item.tool_call) | {"input": {}}
                    yield _event("content_block_start", {"index": index, "content_block": block})
                    delta = {"type": "input_json_delta", "partial_json": item.tool_call.arguments}
                    yield _event("content_block_delta", {"index": index, "delta": delta})
                    yield _event("content_block_stop", {"index": index})
                if item.finish_reason is not None:
                    reason = STOP_REASONS.get(item.finish_reason, "end_turn")
                    yield _event(
                        "message_delta",
                        {
                            "delta": {"stop_reason": reason, "stop_sequence": None},
                            "usage": _usage(item.stats),
                        },
                    )
                    yield _event("message_stop", {})
            try:
                item = await generation.next(keepalive)
            except StopAsyncIteration:
                break
    except APIError as error:
        yield _event("error", {"error": anthropic_envelope(error)["error"]})
    finally:
        generation.close()
