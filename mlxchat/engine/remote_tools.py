"""The agents' request options over the remote engine's HTTP API, and what comes back.

Out: `tools`, `tool_choice`, `response_format` and `logprobs`/`top_logprobs` as OpenAI's
chat API names them, and messages with an assistant's `tool_calls` and "tool" results.
In: streamed `delta.tool_calls` pieces joined per `index` into whole `ToolCall`s (OpenAI
sends the id and name first, the arguments in pieces), and `logprobs.content` entries as
`TokenLogprob`s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlxchat.engine.tool_calls import message_dict, new_call_id
from mlxchat.engine.types import FinishReason, Message, RequestOptions, TokenLogprob, ToolCall


def wire_message(message: Message) -> dict[str, Any]:
    """A message as OpenAI's API takes it (call arguments as JSON text)."""
    return message_dict(message, decode=False)


def option_fields(options: RequestOptions, chat: bool) -> dict[str, Any]:
    """The body fields for `options` (tools only on the chat endpoint; each only when set)."""
    body: dict[str, Any] = {}
    if chat and options.tools:
        body["tools"] = [dict(tool) for tool in options.tools]
        body["tool_choice"] = options.tool_choice
    if options.response_format is not None:
        body["response_format"] = dict(options.response_format)
    if options.logprobs:
        if chat:
            body["logprobs"] = True
            if options.top_logprobs:
                body["top_logprobs"] = options.top_logprobs
        else:  # /v1/completions: logprobs is the number of alternatives
            body["logprobs"] = options.top_logprobs
    return body


def finish_reason(value: str) -> FinishReason:
    """The engine's finish reason for a server's (`function_call` is OpenAI's old name)."""
    if value == "length":
        return "length"
    return "tool_calls" if value in ("tool_calls", "function_call") else "stop"


@dataclass
class _Pending:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallJoiner:
    """Joins streamed `delta.tool_calls` pieces per `index` into whole calls.

    A call is whole when a later index starts (calls stream one after another) or at the
    end (`flush`).
    """

    def __init__(self) -> None:
        self._pending: dict[int, _Pending] = {}

    def add(self, delta: Any) -> list[ToolCall]:
        """Take a delta's `tool_calls`; return the calls it completed."""
        pieces = delta.get("tool_calls") if isinstance(delta, dict) else None
        done: list[ToolCall] = []
        for position, piece in enumerate(pieces if isinstance(pieces, list) else ()):
            if not isinstance(piece, dict):
                continue
            index = piece.get("index", position)
            index = index if isinstance(index, int) else position
            if index not in self._pending:
                done += self._take(below=index)
            entry = self._pending.setdefault(index, _Pending())
            entry.id = entry.id or str(piece.get("id") or "")
            function = piece.get("function")
            if isinstance(function, dict):
                entry.name += str(function.get("name") or "")
                arguments = function.get("arguments")
                if isinstance(arguments, str):
                    entry.arguments.append(arguments)
                elif arguments is not None:  # some servers send the object itself
                    entry.arguments.append(json.dumps(arguments, ensure_ascii=False))
        return done

    def flush(self) -> list[ToolCall]:
        """Every call still being joined (the stream ended)."""
        return self._take()

    def _take(self, below: int | None = None) -> list[ToolCall]:
        """Take the calls before index `below` (None: all)."""
        calls = []
        for index in sorted(i for i in self._pending if below is None or i < below):
            entry = self._pending.pop(index)
            arguments = "".join(entry.arguments) or "{}"
            calls.append(ToolCall(entry.id or new_call_id(), entry.name, arguments))
        return calls


def choice_logprobs(choice: dict[str, Any]) -> list[TokenLogprob]:
    """A streamed chat choice's `logprobs.content` as `TokenLogprob`s (none: empty)."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    out = []
    for item in content if isinstance(content, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("logprob"), int | float):
            continue
        top = tuple(
            (str(alt.get("token", "")), float(alt["logprob"]))
            for alt in item.get("top_logprobs") or ()
            if isinstance(alt, dict) and isinstance(alt.get("logprob"), int | float)
        )
        out.append(TokenLogprob(str(item.get("token", "")), float(item["logprob"]), top))
    return out
