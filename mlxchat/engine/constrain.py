"""Constrained decoding with llguidance: a grammar per row, applied as a logits processor.

A request's `response_format` (json_object, json_schema) or a forced tool call
(`tool_choice` "required" or a named function) becomes a llguidance grammar. Each row of
the batch gets its own `LLMatcher` (a copy of one compiled per grammar and cached); before
every token the matcher's bitmask (numpy) masks the logits with `mx.where`, so it runs on
the CPU and on Metal alike (llguidance's own `llguidance.mlx` kernel is Metal-only).

Engine thread only.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import mlx.core as mx
import numpy as np

from mlxchat.engine.types import EngineError

JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
"""JSON as `json.dumps` writes it: the layout models saw most, and fewer choices to make."""

_TOKENIZERS: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
_MATCHERS: OrderedDict[tuple[int, str], tuple[Any, Any]] = OrderedDict()
CACHED_GRAMMARS = 64
"""Compiled grammars kept (a client's schema is compiled once, then copied per request)."""


class ConstraintError(EngineError):
    """A schema (or tool parameters) the constraint cannot enforce; names what and where."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def ll_tokenizer(tokenizer: Any) -> Any:
    """llguidance's tokenizer for mlx-lm's `TokenizerWrapper` (built once per tokenizer)."""
    key = id(tokenizer)
    found = _TOKENIZERS.get(key)
    if found is not None and found[0] is tokenizer:
        return found[1]
    import llguidance.hf

    built = llguidance.hf.from_tokenizer(
        tokenizer._tokenizer, eos_token=sorted(tokenizer.eos_token_ids)
    )
    _TOKENIZERS[key] = (tokenizer, built)
    while len(_TOKENIZERS) > 4:
        _TOKENIZERS.popitem(last=False)
    return built


def schema_grammar(schema: dict[str, Any]) -> str:
    """The grammar of one JSON value matching `schema`."""
    from llguidance import LLMatcher

    return LLMatcher.grammar_from_json_schema(schema, defaults=JSON_OPTIONS)  # type: ignore[arg-type]


def lark_grammar(lark: str) -> str:
    """A grammar written in llguidance's Lark dialect."""
    from llguidance import LLMatcher

    return LLMatcher.grammar_from_lark(lark)


def with_json_layout(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with the compact JSON layout set (for `%json` inside a Lark grammar)."""
    return {**schema, "x-guidance": {**JSON_OPTIONS, **schema.get("x-guidance", {})}}


def matcher(tokenizer: Any, grammar: str, param: str) -> Any:
    """A fresh matcher for `grammar` (compiled once per tokenizer and grammar, then copied).

    Raises:
        ConstraintError: the grammar uses something llguidance cannot enforce (`param`
            names the request field it came from).
    """
    from llguidance import LLMatcher

    key = (id(tokenizer), grammar)
    found = _MATCHERS.get(key)
    base = found[1] if found is not None and found[0] is tokenizer else None
    if base is None:
        ll = ll_tokenizer(tokenizer)
        failed, messages = LLMatcher.validate_grammar_with_warnings(grammar, ll)
        if failed:
            reason = messages[0] if messages else "invalid grammar"
            raise ConstraintError(
                f"'{param}' cannot be enforced: {_plain(reason)}; leave that keyword out", param
            )
        base = LLMatcher(ll, grammar)
        if base.is_error():
            raise ConstraintError(f"'{param}' cannot be enforced: {base.get_error()}", param)
        _MATCHERS[key] = (tokenizer, base)
        while len(_MATCHERS) > CACHED_GRAMMARS:
            _MATCHERS.popitem(last=False)
    else:
        _MATCHERS.move_to_end(key)
    return base.deep_copy()


def _plain(reason: str) -> str:
    """llguidance's message on one line (e.g. 'Unimplemented keys: ["not"]')."""
    return " ".join(reason.split())


class GrammarProcessor:
    """An mlx-lm logits processor that lets through only tokens the grammar allows.

    mlx-lm calls it once per generated token with the row's tokens so far, the last one
    being the token sampled at the previous step (at the first call: the prompt's last).

    Args:
        matcher: The row's own `LLMatcher`.
        stop_tokens: The model's end tokens, the only ones allowed once the grammar is done.
        start_after: A token id (e.g. the end of a think block) after which the constraint
            starts; None: from the first token. What comes before it is left free.
    """

    def __init__(
        self, matcher: Any, stop_tokens: Sequence[int], start_after: int | None = None
    ) -> None:
        self.matcher = matcher
        self.stop_tokens = sorted(stop_tokens)
        self.start_after = start_after
        self.active = start_after is None
        self.fresh = True  # no token of the constrained part sampled yet
        self.bitmask: np.ndarray | None = None

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if not self.active:
            if not (tokens.size and _last(tokens) == self.start_after):
                return logits
            self.active = True  # the next token is the constrained part's first
        if self.fresh:
            self.fresh = False
        elif tokens.size:
            self.matcher.consume_token(_last(tokens))
        if self.matcher.is_error():
            return logits  # a token the grammar refused (cannot happen with the mask)
        if self.matcher.is_stopped():  # the grammar is complete: the answer ends
            allowed = mx.zeros((logits.shape[-1],), dtype=mx.bool_)
            allowed[mx.array(self.stop_tokens)] = True
        else:
            mx.async_eval(logits)  # the model's step runs while the mask is computed
            allowed = self._allowed(logits.shape[-1])
        return mx.where(allowed, logits, mx.array(-float("inf"), dtype=logits.dtype))

    def _allowed(self, vocab: int) -> mx.array:
        """The grammar's bitmask as a boolean array over the logits' `vocab`."""
        import llguidance.numpy as llnp

        words = (vocab + 31) // 32
        if self.bitmask is None or self.bitmask.shape[1] < words:
            self.bitmask = np.zeros((1, words), dtype=np.int32)
        self.bitmask[:] = 0
        llnp.fill_next_token_bitmask(self.matcher, self.bitmask)
        bits = np.unpackbits(self.bitmask.view(np.uint8), bitorder="little")[:vocab]
        return mx.array(bits.astype(np.bool_))


def _last(tokens: mx.array) -> int:
    """The last token of a row's history."""
    return int(tokens[-1].item())  # type: ignore[arg-type]


def response_format_grammar(response_format: dict[str, Any] | None) -> str | None:
    """The grammar of OpenAI's `response_format` (None: free text).

    Raises:
        ConstraintError: an unknown type or a malformed json_schema.
    """
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return schema_grammar({"type": "object"})
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None and isinstance(spec, dict) and "schema" not in spec:
            schema = {}
        if not isinstance(schema, dict):
            raise ConstraintError(
                "'response_format.json_schema.schema' must be a JSON schema object",
                "response_format.json_schema.schema",
            )
        return schema_grammar(schema)
    raise ConstraintError(
        f"'response_format.type' must be text, json_object or json_schema (got {kind!r})",
        "response_format.type",
    )


def closed(schema: Any) -> Any:
    """`schema` with `additionalProperties: false` on every object that declares its
    properties and says nothing of others: a forced call writes only declared arguments
    (an open object let small models invent keys until `max_tokens`)."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON schema of one call `{"name": ..., "arguments": {...}}` to one of `tools`."""
    options = []
    for tool in tools:
        function = tool.get("function", tool)
        parameters = closed(function.get("parameters") or {"type": "object"})
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": function["name"]}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


def tool_call_grammar(tools: list[dict[str, Any]], start: str, end: str) -> str:
    """One call wrapped in the model's tool-call tags (`start`/`end`; both "" for the
    documented JSON format: the answer is the call's JSON object alone)."""
    schema = call_schema(tools)
    if not start:
        return schema_grammar(schema)
    body = json.dumps(with_json_layout(schema))
    return lark_grammar(f"start: {json.dumps(start)} call {json.dumps(end)}\ncall: %json {body}\n")


def row_processors(
    tokenizer: Any, options: Any, tool_grammar: str | None, start_after: int | None = None
) -> list[Any]:
    """The constraint of one row as logits processors (empty: free text): a forced tool
    call's grammar, else the `response_format`'s; from `start_after` on (a think block's
    end token: the reasoning stays free), else from the first token.

    Raises:
        ConstraintError: a schema llguidance cannot enforce (the message names it).
    """
    stops = tokenizer.eos_token_ids
    if tool_grammar is not None:
        return [GrammarProcessor(matcher(tokenizer, tool_grammar, "tools"), stops, start_after)]
    grammar = response_format_grammar(options.response_format)
    if grammar is None:
        return []
    grammar_matcher = matcher(tokenizer, grammar, "response_format")
    return [GrammarProcessor(grammar_matcher, stops, start_after)]
