"""Request bodies of the OpenAI-compatible endpoints and their validation.

Types are checked strictly (a string where a number belongs is rejected, not converted);
fields the server does not know are ignored, as OpenAI's clients send many. Ranges are
checked by the config's own validation (`config.apply_overrides`), the same rules as the
config file and the command line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mlxchat.config import ConfigError, Settings, effective_sampling
from mlxchat.engine.types import Message, RequestOptions, SamplingParams, ToolCall
from mlxchat.server.errors import APIError
from mlxchat.settings import SETTINGS, SettingError

_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
_SAMPLING_FIELDS = {
    "temperature": "temp",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "seed": "seed",
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class TextPart(_Body):
    """A text part of a message's content (the only kind this server accepts)."""

    type: Literal["text"]
    text: str


class FunctionCall(_Body):
    """An assistant's call: the function's name and its arguments as JSON text."""

    name: str
    arguments: str = "{}"


class ToolCallIn(_Body):
    """One of an assistant message's `tool_calls`."""

    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Body):
    """One message of `messages`; `content` is a string or a list of text parts. An
    assistant's `tool_calls`; a "tool" message's `tool_call_id` (and `name`)."""

    role: str
    content: str | list[TextPart] | None = None
    reasoning_content: str | None = None
    """An earlier answer's reasoning (sent on only to a template that reads it)."""
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text, its parts joined."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(_Body):
    """`stream_options`: `include_usage` as OpenAI's; `include_progress` is mlxchat's own."""

    include_usage: bool = False
    include_progress: bool = False


class _Sampling(_Body):
    model: str | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | int | None = None
    top_logprobs: int | None = None

    def base_options(self) -> RequestOptions:
        """The response format and logprobs (what every endpoint shares).

        Raises:
            APIError: 400 for a malformed response_format or top_logprobs out of 0-20.
        """
        check_response_format(self.response_format)
        top = self.top_logprobs or 0
        if isinstance(self.logprobs, int) and not isinstance(self.logprobs, bool):
            top = max(top, self.logprobs)  # /v1/completions: logprobs is the count
        if not 0 <= top <= MAX_TOP_LOGPROBS:
            raise APIError(
                400,
                f"'top_logprobs' must be between 0 and {MAX_TOP_LOGPROBS} (got {top})",
                param="top_logprobs",
            )
        wanted = self.logprobs is not None and self.logprobs is not False
        return RequestOptions(
            response_format=self.response_format, logprobs=wanted, top_logprobs=top
        )

    def sampling(
        self, defaults: Settings, model_defaults: Mapping[str, Any] | None
    ) -> SamplingParams:
        """The request's decoding settings (`config.effective_sampling`: the request, then
        the server's settings, then the model's own defaults).

        Raises:
            APIError: 400 naming the field whose value is out of range.
        """
        if self.n not in (None, 1):
            raise APIError(400, f"'n' must be 1 (got {self.n}): one answer per request", param="n")
        values = self.model_dump(include=set(_SAMPLING_FIELDS))
        if self.max_completion_tokens is not None:
            values["max_tokens"] = self.max_completion_tokens
        fields_by_setting = {name: field for field, name in _SAMPLING_FIELDS.items()}
        request = {name: values[field] for field, name in _SAMPLING_FIELDS.items()}
        try:
            params = effective_sampling(defaults, model_defaults, request)
        except ConfigError as error:
            param = fields_by_setting.get(error.name or "", error.name)
            raise APIError(400, str(error), param=param) from None
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return replace(params, stop=tuple(s for s in stops if s))

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def include_progress(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_progress)


class ChatRequest(_Sampling):
    """The body of `POST /v1/chat/completions`."""

    messages: list[ChatMessage] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    """Extra chat-template variables, e.g. `{"enable_thinking": false}` (vLLM's name)."""
    reasoning_effort: str | None = None
    """"low", "medium" or "high", for templates that read it (gpt-oss)."""
    thinking_budget: int | None = None
    """Most reasoning tokens before the answer is forced (mlxchat's own field)."""
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    speculative: str | None = None
    """"auto", "off" or "lookup": speculative decoding for this request (mlxchat's own)."""

    def options(self) -> RequestOptions:
        """Tools, response format and logprobs for the engine.

        Raises:
            APIError: 400 naming a malformed tool, tool_choice or response_format.
        """
        tools = check_tools(self.tools or [])
        choice = check_tool_choice(self.tool_choice, tools)
        options = replace(self.base_options(), tools=tuple(tools), tool_choice=choice)
        if self.speculative is None:
            return options
        try:
            mode = SETTINGS["speculative"].check(self.speculative)
        except SettingError as error:
            raise APIError(400, str(error), param="speculative") from None
        return replace(options, speculative=mode)

    def with_thinking(self, options: RequestOptions, defaults: Settings) -> RequestOptions:
        """`options` with the request's template variables and thinking budget, over the
        server's own thinking settings.

        Raises:
            APIError: 400 for a negative `thinking_budget`.
        """
        base = defaults.request_options()
        kwargs = base.template_kwargs | options.template_kwargs
        kwargs |= dict(self.chat_template_kwargs or {})
        if self.reasoning_effort is not None:
            kwargs.setdefault("reasoning_effort", self.reasoning_effort)
        budget = base.thinking_budget if self.thinking_budget is None else self.thinking_budget
        if budget is not None and budget < 0:
            raise APIError(400, "'thinking_budget' must be 0 or more", param="thinking_budget")
        return replace(options, template_kwargs=kwargs, thinking_budget=budget)

    def conversation(self) -> list[Message]:
        """The messages for the engine.

        Raises:
            APIError: 400 for missing or empty `messages` or an unknown role.
        """
        if not self.messages:
            raise APIError(400, "'messages' must be a non-empty list", param="messages")
        result = []
        for i, message in enumerate(self.messages):
            role = _ROLES.get(message.role)
            if role is None:
                known = ", ".join(_ROLES)
                raise APIError(
                    400,
                    f"messages[{i}].role '{message.role}' is not supported; use one of: {known}",
                    param=f"messages.{i}.role",
                )
            calls = tuple(
                ToolCall(call.id, call.function.name, call.function.arguments)
                for call in message.tool_calls or []
            )
            result.append(
                Message(
                    role,  # type: ignore[arg-type]
                    message.text(),
                    reasoning=message.reasoning_content or "",
                    tool_calls=calls,
                    tool_call_id=message.tool_call_id,
                    name=message.name if role == "tool" else None,
                )
            )
        if not any(m.content.strip() or m.tool_calls for m in result):
            raise APIError(400, "every message is empty; give some text", param="messages")
        return result


class CompletionRequest(_Sampling):
    """The body of `POST /v1/completions` (one prompt)."""

    prompt: str | list[str] | None = None

    def text(self) -> str:
        """The prompt.

        Raises:
            APIError: 400 for a missing or empty prompt, or several prompts.
        """
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt or [])
        if len(prompts) > 1:
            raise APIError(
                400, "'prompt' must be one string (batches are not supported)", param="prompt"
            )
        if not prompts or not prompts[0].strip():
            raise APIError(400, "'prompt' must be a non-empty string", param="prompt")
        return prompts[0]


Body = TypeVar("Body", bound=_Body)


def parse_body(raw: bytes | str, kind: type[Body]) -> Body:
    """Decode and type-check a JSON request body.

    Raises:
        APIError: 400 for malformed JSON, a body that is not an object, or a wrong type.
    """
    return check_body(parse_json(raw), kind)


def parse_json(raw: bytes | str) -> dict[str, Any]:
    """A JSON object from the wire.

    Raises:
        APIError: 400 for malformed JSON or a value that is not an object.
    """
    try:
        data: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8"
        raise APIError(400, f"the body is not valid JSON ({reason})", code="invalid_json") from None
    except RecursionError:
        raise APIError(400, "the body is nested too deeply", code="invalid_json") from None
    except ValueError as error:  # an integer of more than 4,300 digits
        message = f"the body holds a number too large ({error})"
        raise APIError(400, message, code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, "the body must be a JSON object", code="invalid_json")
    _check_unicode(data)
    return data


def _check_unicode(data: Any) -> None:
    """Refuse text that is not Unicode: a lone surrogate escaped in JSON (`"\\ud800"`)
    decodes to a string no tokenizer or reply can encode."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise APIError(
            400,
            "the body holds a lone surrogate (e.g. \\ud800): text must be valid Unicode",
            code="invalid_json",
        ) from None


def check_body(data: dict[str, Any], kind: type[Body]) -> Body:
    """Type-check a decoded body.

    Raises:
        APIError: 400 naming the first field of a wrong type.
    """
    try:
        return kind.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"] if not _is_type_tag(part))
        raise APIError(400, f"'{param}': {first['msg']}", param=param) from None


def _is_type_tag(part: object) -> bool:
    """pydantic names the union member it tried (`str`, `list[...]`) in error locations."""
    return isinstance(part, str) and (part in {"str", "int", "float", "bool"} or "[" in part)


MAX_TOP_LOGPROBS = 20
"""OpenAI's limit on `top_logprobs`."""


def check_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`tools` as OpenAI declares them: `{"type": "function", "function": {"name", ...}}`.

    Raises:
        APIError: 400 naming the first malformed tool.
    """
    for i, tool in enumerate(tools):
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise APIError(
                400,
                f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}",
                param=f"tools.{i}",
            )
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise APIError(
                400,
                f"tools[{i}].function.name must be a non-empty string",
                param=f"tools.{i}.function.name",
            )
        parameters = function.get("parameters", {})
        if not isinstance(parameters, dict):
            raise APIError(
                400,
                f"tools[{i}].function.parameters must be a JSON schema object",
                param=f"tools.{i}.function.parameters",
            )
    return tools


def check_tool_choice(choice: str | dict[str, Any] | None, tools: list[dict[str, Any]]) -> Any:
    """`tool_choice` checked against `tools` ("auto" when absent).

    Raises:
        APIError: 400 for an unknown value or a function not in `tools`.
    """
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise APIError(
                400,
                f"'tool_choice' must be auto, none, required or a function (got {choice!r})",
                param="tool_choice",
            )
        if choice == "required" and not tools:
            raise APIError(
                400, "'tool_choice' is required but 'tools' is empty", param="tool_choice"
            )
        return choice
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    names = [tool["function"]["name"] for tool in tools]
    if name not in names:
        known = ", ".join(names) or "none"
        raise APIError(
            400,
            f"'tool_choice' names function {name!r}, which is not in 'tools' ({known})",
            param="tool_choice",
        )
    return {"type": "function", "function": {"name": name}}


def check_response_format(response_format: dict[str, Any] | None) -> None:
    """`response_format` checked (its schema's keywords are checked when compiled).

    Raises:
        APIError: 400 for an unknown type or a json_schema without a schema object.
    """
    if response_format is None:
        return
    kind = response_format.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise APIError(
            400,
            f"'response_format.type' must be text, json_object or json_schema (got {kind!r})",
            param="response_format.type",
        )
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise APIError(
                400,
                "'response_format.json_schema' must hold a 'schema' object",
                param="response_format.json_schema",
            )
