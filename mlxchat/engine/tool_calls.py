"""Tool calls in a row's text: what goes to the template, how calls are found and parsed.

The model's own format is parsed with mlx-lm's tool parsers (`mlx_lm/tool_parsers/`),
chosen as mlx-lm chooses them (the tokenizer config's `tool_parser_type`, else the chat
template) and exposed on its `TokenizerWrapper` (`tool_parser`, `tool_call_start`,
`tool_call_end`). A row's `ToolCallSplitter` takes the detokenized text and gives back the
answer text and each whole call once its end arrived.

`tool_choice` "required" or a named function forces a call by constrained decoding: in the
model's own tags where its parser reads JSON (`json_tools`), else, and for a model whose
template has no tool support, in the documented JSON format: the whole answer is one
object `{"name": "<function>", "arguments": {...}}`.

Engine thread only (but imports no MLX).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlxchat.engine.types import EngineError, Message, RequestOptions, ToolCall

log = logging.getLogger("mlxchat.engine")

JSON_PARSERS = {"json_tools"}
"""mlx-lm parsers whose call body is `{"name", "arguments"}` JSON: forced calls use the
model's own tags with them."""

_warned: set[int] = set()


def new_call_id() -> str:
    """An id for a call, shaped as OpenAI's (`call_…`)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def message_dict(message: Message, *, decode: bool = True) -> dict[str, Any]:
    """A message as chat templates read it: OpenAI's shape, call arguments decoded to
    objects (as mlx-lm's server passes them); with `decode` False, as OpenAI's API takes
    it (arguments as JSON text)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": _decoded(call.arguments) if decode else call.arguments,
                },
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _decoded(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return arguments


def tool_names(options: RequestOptions) -> list[str]:
    """The names of the request's tools."""
    return [_function(tool).get("name", "") for tool in options.tools]


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function", tool)
    return function if isinstance(function, dict) else {}


def forced_tools(options: RequestOptions) -> list[dict[str, Any]]:
    """The tools a call must be made to (empty: no call is forced).

    Raises:
        EngineError: `tool_choice` names a function that is not among `tools`, or asks for
            a call without tools.
    """
    choice = options.tool_choice
    if choice in ("auto", "none", None):
        return []
    if not options.tools:
        raise EngineError("'tool_choice' asks for a call but 'tools' is empty")
    if choice == "required":
        return list(options.tools)
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    chosen = [tool for tool in options.tools if _function(tool).get("name") == name]
    if not chosen:
        known = ", ".join(tool_names(options)) or "none"
        raise EngineError(f"'tool_choice' names function {name!r}, not in 'tools' ({known})")
    return chosen


def template_tools(tokenizer: Any, options: RequestOptions) -> list[dict[str, Any]] | None:
    """The tools to give the chat template (None: none; `tool_choice` "none" sends none)."""
    if not options.tools or options.tool_choice == "none":
        return None
    if not getattr(tokenizer, "has_tool_calling", False) and id(tokenizer) not in _warned:
        _warned.add(id(tokenizer))
        log.warning(
            "this model's chat template has no tool support: tools are answered as text "
            "unless tool_choice forces a call (then in the documented JSON format)"
        )
    return list(options.tools)


def uses_own_format(tokenizer: Any) -> bool:
    """Whether a forced call is written in the model's own tags (its parser reads JSON)."""
    parser = getattr(tokenizer, "tool_parser", None)
    return parser is not None and getattr(parser, "__module__", "").rsplit(".", 1)[-1] in (
        JSON_PARSERS
    )


def forced_call_prompt(messages: Sequence[Message], tools: list[dict[str, Any]]) -> list[Message]:
    """`messages` with a system note asking for the call in the documented JSON format
    (for models whose template does not show the tools)."""
    described = "\n".join(
        json.dumps(
            {
                "name": _function(tool).get("name"),
                "description": _function(tool).get("description", ""),
                "parameters": _function(tool).get("parameters") or {"type": "object"},
            }
        )
        for tool in tools
    )
    note = (
        "Call one of these functions. Answer with only a JSON object "
        '{"name": <function name>, "arguments": <arguments object>}.\n' + described
    )
    messages = list(messages)
    if messages and messages[0].role == "system":
        head = messages[0]
        return [Message("system", f"{head.content}\n\n{note}"), *messages[1:]]
    return [Message("system", note), *messages]


Parser = Callable[[str, Any], Any]


def parse_json_call(text: str, tools: Any = None) -> Any:
    """The documented JSON format's parser: `{"name": ..., "arguments": {...}}`."""
    return json.loads(text)


def _calls(parsed: Any) -> list[ToolCall]:
    items = parsed if isinstance(parsed, list) else [parsed]
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError("a call without a name")
        arguments = item.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append(ToolCall(str(item.get("id") or new_call_id()), item["name"], arguments))
    return calls


@dataclass
class ToolCallSplitter:
    """Splits one row's text into answer text and tool calls.

    Args:
        start: The text that opens a call ("" with `whole`: none).
        end: The text that closes it ("": the call runs to the end of the answer).
        parse: The parser (`text, tools` -> a call dict or a list of them).
        tools: The request's tools (some parsers read the parameter types).
        whole: The whole answer is one call in the documented JSON format.
    """

    start: str
    end: str
    parse: Parser
    tools: list[dict[str, Any]]
    whole: bool = False

    def __post_init__(self) -> None:
        self.held = ""
        self.inside = self.whole
        self.made = 0

    def feed(self, text: str, final: bool = False) -> tuple[str, list[ToolCall]]:
        """Add `text`; return the answer text safe to show and the calls completed.
        `final`: the answer ended (a call still open is parsed as it is)."""
        buffer = self.held + text
        shown: list[str] = []
        calls: list[ToolCall] = []
        while True:
            if not self.inside:
                at = buffer.find(self.start)
                if at < 0:
                    keep = 0 if final else _partial_suffix(buffer, self.start)
                    shown.append(buffer[: len(buffer) - keep])
                    buffer = buffer[len(buffer) - keep :]
                    break
                shown.append(buffer[:at])
                buffer = buffer[at + len(self.start) :]
                self.inside = True
            at = buffer.find(self.end) if self.end else -1
            if at < 0:
                if final and buffer.strip():
                    shown.append(self._parse(buffer, calls))
                    buffer = ""
                break
            shown.append(self._parse(buffer[:at], calls))
            buffer = buffer[at + len(self.end) :]
            self.inside = False
        self.held = buffer
        return "".join(shown), calls

    def _parse(self, body: str, calls: list[ToolCall]) -> str:
        """Parse a call's text into `calls`; returns the text to show if it is no call."""
        try:
            found = _calls(self.parse(body, self.tools))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("a tool call did not parse (%s); kept as text", error)
            return f"{self.start}{body}{self.end}" if not self.whole else body
        calls.extend(found)
        self.made += len(found)
        return ""


def _partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of `text` that begins `marker`."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:n]):
            return n
    return 0


@dataclass
class ToolPlan:
    """What a request's tools mean for its row: the splitter (None: no tools) and the
    grammar forcing a call (None: none forced)."""

    splitter: ToolCallSplitter | None
    grammar: str | None
    prompt_note: list[dict[str, Any]] | None = None
    """The forced tools to describe in a system note (the template does not show them)."""


def plan(tokenizer: Any, options: RequestOptions) -> ToolPlan:
    """How a row handles the request's tools.

    Raises:
        EngineError: a bad `tool_choice`; ConstraintError: parameters that cannot be enforced.
    """
    from mlxchat.engine import constrain

    forced = forced_tools(options)
    if options.tool_choice == "none" or not options.tools:
        return ToolPlan(None, None)
    own = getattr(tokenizer, "has_tool_calling", False)
    if forced and not uses_own_format(tokenizer):
        splitter = ToolCallSplitter("", "", parse_json_call, list(options.tools), whole=True)
        return ToolPlan(splitter, constrain.tool_call_grammar(forced, "", ""), forced)
    if not own:
        return ToolPlan(None, None)
    splitter = ToolCallSplitter(
        tokenizer.tool_call_start,
        tokenizer.tool_call_end or "",
        tokenizer.tool_parser,
        list(options.tools),
    )
    grammar = None
    if forced:
        start, end = tokenizer.tool_call_start + "\n", "\n" + tokenizer.tool_call_end
        grammar = constrain.tool_call_grammar(forced, start, end)
    return ToolPlan(splitter, grammar)


def tool_plan_note(tokenizer: Any, options: RequestOptions) -> list[dict[str, Any]] | None:
    """The forced tools to describe in a system note: a call forced in the documented JSON
    format (the model's template does not ask for that format); None otherwise."""
    if options.tool_choice in ("auto", "none") or not options.tools:
        return None
    if uses_own_format(tokenizer):
        return None
    try:
        return forced_tools(options)
    except EngineError:
        return None  # reported when the row is planned


def split(splitter: ToolCallSplitter | None, text: str, final: bool) -> tuple[str, list[ToolCall]]:
    """A row's hook: its new text without tool calls, and the calls completed (the row's
    reasoning, if any, is taken out before: calls are looked for in the answer only)."""
    if splitter is None:
        return text, []
    return splitter.feed(text, final)


def finish_reason(splitter: ToolCallSplitter | None, finish: Any) -> Any:
    """ "tool_calls" for an answer that ended by itself after making calls."""
    if splitter is not None and splitter.made and finish == "stop":
        return "tool_calls"
    return finish


class ToolCallRoute:
    """A row's text chain: the reasoning router, then the tool calls taken out of the
    answer pieces (`splitter`: None when the request has no tools); the calls completed
    wait in `calls` for the row to emit as `Chunk.tool_call`.

    Args:
        router: The row's `TextRouter` (reasoning or answer).
        splitter: The request's tool-call splitter, or None.
    """

    def __init__(self, router: Any, splitter: ToolCallSplitter | None) -> None:
        self.router = router
        self.splitter = splitter
        self.calls: list[ToolCall] = []

    @property
    def channel(self) -> Any:
        """The router's channel now."""
        return self.router.channel

    @property
    def thinking(self) -> bool:
        """Whether the text is inside the think span."""
        return bool(self.router.thinking)

    def feed(self, token: int | None, text: str) -> list[tuple[Any, str]]:
        """One step: the router's pieces, the answer's with the calls taken out."""
        return self._split(self.router.feed(token, text), final=False)

    def flush(self) -> list[tuple[Any, str]]:
        """The row ended: what is held back (a call still open is parsed as it is)."""
        return self._split(self.router.flush(), final=True)

    def take_calls(self) -> list[ToolCall]:
        """The calls completed since the last time."""
        calls, self.calls = self.calls, []
        return calls

    def _split(self, pieces: list[tuple[Any, str]], final: bool) -> list[tuple[Any, str]]:
        if self.splitter is None:
            return pieces
        out: list[tuple[Any, str]] = []
        for channel, text in pieces:
            if channel == "answer":
                text, calls = self.splitter.feed(text)
                self.calls += calls
            out.append((channel, text))
        if final:
            text, calls = self.splitter.feed("", final=True)
            self.calls += calls
            out.append(("answer", text))
        return out
