"""OpenAI's shapes of what the engine adds to text: tool calls and log probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlxchat.engine.types import TokenLogprob, ToolCall


def tool_call_payload(call: ToolCall, index: int | None = None) -> dict[str, Any]:
    """A call as `message.tool_calls[i]` (with `index`: as a streamed `delta.tool_calls`)."""
    payload: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    return payload if index is None else {"index": index, **payload}


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs(items: Sequence[TokenLogprob]) -> dict[str, Any] | None:
    """A chat choice's `logprobs` (`{"content": [...]}`), None when none were asked."""
    if not items:
        return None
    content = [
        _entry(item.token, item.logprob)
        | {"top_logprobs": [_entry(token, value) for token, value in item.top]}
        for item in items
    ]
    return {"content": content, "refusal": None}


def text_logprobs(items: Sequence[TokenLogprob], offset: int) -> dict[str, Any] | None:
    """A text completion's `logprobs` (tokens, token_logprobs, top_logprobs, text_offset)."""
    if not items:
        return None
    offsets = []
    at = offset
    for item in items:
        offsets.append(at)
        at += len(item.token)
    return {
        "tokens": [item.token for item in items],
        "token_logprobs": [item.logprob for item in items],
        "top_logprobs": [dict(item.top) for item in items],
        "text_offset": offsets,
    }
