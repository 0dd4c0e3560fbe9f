"""Request bodies of Anthropic's Messages API (`/v1/messages`) and their mapping onto the
engine's messages, sampling and request options."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from mlxchat.config import ConfigError, Settings, effective_sampling
from mlxchat.engine.types import Message, RequestOptions, SamplingParams, ToolCall
from mlxchat.server.errors import APIError
from mlxchat.server.schemas import _Body, check_response_format

_SAMPLING = {"temperature": "temp", "top_p": "top_p", "top_k": "top_k", "max_tokens": "max_tokens"}


class Block(_Body):
    """A content block: text, tool_use (assistant), tool_result (user); thinking blocks of
    earlier answers are accepted and left out of the prompt."""

    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[Block] | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None


class AnthropicMessage(_Body):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class AnthropicTool(_Body):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class AnthropicToolChoice(_Body):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class OutputFormat(_Body):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Body):
    """`output_config`: its `format` is where the current SDK puts `output_format`."""

    format: OutputFormat | None = None


class CountRequest(_Body):
    """The body of `POST /v1/messages/count_tokens`."""

    model: str | None = None
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[Block] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None
    output_format: OutputFormat | None = None
    output_config: OutputConfig | None = None

    def conversation(self) -> list[Message]:
        """The engine's messages: the system prompt, then each turn with its blocks.

        Raises:
            APIError: 400 for a block of a type this server does not take (e.g. images).
        """
        result = []
        system = _text(self.system, "system")
        if system:
            result.append(Message("system", system))
        for i, message in enumerate(self.messages):
            blocks = (
                [Block(type="text", text=message.content)]
                if isinstance(message.content, str)
                else message.content
            )
            texts: list[str] = []
            calls: list[ToolCall] = []
            for j, block in enumerate(blocks):
                where = f"messages.{i}.content.{j}"
                if block.type == "text":
                    texts.append(block.text or "")
                elif block.type == "tool_use" and message.role == "assistant":
                    arguments = json.dumps(block.input or {}, ensure_ascii=False)
                    calls.append(ToolCall(block.id or "", block.name or "", arguments))
                elif block.type == "tool_result" and message.role == "user":
                    content = _text(block.content, where)
                    if block.is_error:
                        content = f"Error: {content}"
                    result.append(Message("tool", content, tool_call_id=block.tool_use_id))
                elif block.type in ("thinking", "redacted_thinking"):
                    continue
                else:
                    raise APIError(
                        400,
                        f"{where}: a '{block.type}' block is not supported in a "
                        f"{message.role} message here",
                        param=where,
                    )
            if texts or calls:
                result.append(Message(message.role, "".join(texts), tool_calls=tuple(calls)))
        return result

    def options(self) -> RequestOptions:
        """Tools, tool_choice and output_format as the engine's request options."""
        tools: tuple[dict[str, Any], ...] = tuple(
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description or "",
                    "parameters": tool.input_schema,
                },
            }
            for tool in self.tools or []
        )
        choice: Any = "auto"
        if self.tool_choice is not None:
            kind = self.tool_choice.type
            choice = {"auto": "auto", "any": "required", "none": "none"}.get(kind)
            if kind == "tool":
                names = [tool.name for tool in self.tools or []]
                if self.tool_choice.name not in names:
                    raise APIError(
                        400,
                        f"tool_choice names tool {self.tool_choice.name!r}, which is not in "
                        f"'tools' ({', '.join(names) or 'none'})",
                        param="tool_choice.name",
                    )
                choice = {"type": "function", "function": {"name": self.tool_choice.name}}
            if kind == "any" and not tools:
                raise APIError(400, "tool_choice 'any' needs tools", param="tool_choice")
        response_format = None
        output = self.output_format or (self.output_config and self.output_config.format)
        if output:
            spec = {"name": "output", "schema": output.schema_}
            response_format = {"type": "json_schema", "json_schema": spec}
            check_response_format(response_format)
        return RequestOptions(tools=tools, tool_choice=choice, response_format=response_format)


class MessagesRequest(CountRequest):
    """The body of `POST /v1/messages`."""

    max_tokens: int | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False

    def sampling(self, defaults: Settings, model_defaults: Any) -> SamplingParams:
        """The request's decoding settings (the request, the server's, the model's).

        Raises:
            APIError: 400 naming the field out of range.
        """
        request = {name: getattr(self, field) for field, name in _SAMPLING.items()}
        try:
            params = effective_sampling(defaults, model_defaults, request)
        except ConfigError as error:
            by_setting = {name: field for field, name in _SAMPLING.items()}
            param = by_setting.get(error.name or "", error.name)
            raise APIError(400, str(error), param=param) from None
        stops = tuple(s for s in self.stop_sequences or [] if s)
        return SamplingParams(**{**params.__dict__, "stop": stops})


def _text(content: str | list[Block] | None, where: str) -> str:
    """The text of a string or of text blocks."""
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for block in content:
        if block.type != "text":
            raise APIError(400, f"{where}: only text blocks are supported here", param=where)
        parts.append(block.text or "")
    return "\n".join(parts)
