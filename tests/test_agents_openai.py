"""Agents' API over OpenAI's protocol: tools, forced calls, response_format, logprobs, with
the official `openai` client against a real server on loopback (a tiny model whose chat
template takes tools, so mlx-lm's `json_tools` parser reads its calls)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import openai
import pytest
from pydantic import BaseModel, Field
from server_helpers import running_server

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.engine.generation import encode_prompt
from mlxchat.engine.tool_calls import ToolCallSplitter
from mlxchat.engine.types import Message, RequestOptions, ToolCall
from mlxchat.server.state import ServerConfig

CONFIG = ServerConfig(
    max_queue=8,
    max_concurrency=4,
    max_body_bytes=64_000,
    keepalive_interval=15.0,
    defaults=Settings(temp=0.0, top_p=1.0, max_tokens=400),
)
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


class Weather(BaseModel):
    city: str = Field(max_length=10)
    days: int = Field(ge=1, le=7)
    unit: Literal["C", "F"]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather forecast for a city.",
        "parameters": Weather.model_json_schema(),
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
def engine(tiny_tools: Path) -> Iterator[Engine]:
    engine = Engine()
    engine.load_sync(str(tiny_tools))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def base(engine: Engine) -> Iterator[str]:
    with running_server(engine, CONFIG) as url:
        yield url


@pytest.fixture
def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


def named(name: str) -> dict[str, object]:
    return {"type": "function", "function": {"name": name}}


def test_named_tool_choice_gives_a_call_that_validates_streamed_as_whole(
    client: openai.OpenAI,
) -> None:
    kw = {"messages": ASK, "tools": [WEATHER_TOOL, TIME_TOOL], "tool_choice": named("get_weather")}
    whole = client.chat.completions.create(model="tiny-tools", **kw)  # type: ignore[call-overload]
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    Weather.model_validate_json(call.function.arguments)  # parses and matches the schema
    assert choice.message.content is None

    stream = client.chat.completions.create(model="tiny-tools", stream=True, **kw)  # type: ignore[call-overload]
    pieces: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        delta = chunk.choices[0].delta
        for part in delta.tool_calls or []:
            entry = pieces.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += part.id or ""
            entry["name"] += part.function.name or ""
            entry["arguments"] += part.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert list(pieces) == [0]
    assert pieces[0]["name"] == call.function.name
    assert pieces[0]["arguments"] == call.function.arguments
    assert pieces[0]["id"].startswith("call_")


def test_required_picks_one_of_the_tools(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="tiny-tools", messages=ASK, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required"
    )  # type: ignore[call-overload]
    (call,) = answer.choices[0].message.tool_calls
    assert call.function.name in {"get_weather", "get_time"}
    assert isinstance(json.loads(call.function.arguments), dict)


def test_tools_reach_the_template_unless_tool_choice_is_none(client: openai.OpenAI) -> None:
    def prompt_tokens(**kw: object) -> int:
        answer = client.chat.completions.create(
            model="tiny-tools", messages=ASK, max_tokens=1, **kw
        )  # type: ignore[call-overload]
        return answer.usage.prompt_tokens

    plain = prompt_tokens()
    assert prompt_tokens(tools=[WEATHER_TOOL]) > plain + 20
    assert prompt_tokens(tools=[WEATHER_TOOL], tool_choice="none") == plain


def test_calls_and_results_go_back_through_the_template(engine: Engine) -> None:
    tokenizer = engine._loaded.tokenizer  # type: ignore[union-attr]
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    messages = [
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "Sunny, 21 C", tool_call_id="call_1", name="get_weather"),
    ]
    text = tokenizer.decode(encode_prompt(tokenizer, messages, True, RequestOptions()))
    # arguments decoded to an object (as mlx-lm does): the template writes them as JSON once
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' in text
    assert "<tool_response>\nSunny, 21 C\n</tool_response>" in text


def test_an_openai_tool_loop_round_trip(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model="tiny-tools", messages=ASK, tools=[WEATHER_TOOL], tool_choice=named("get_weather")
    )  # type: ignore[call-overload]
    message = first.choices[0].message
    follow = [
        *ASK,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "Sunny"},
    ]
    second = client.chat.completions.create(
        model="tiny-tools", messages=follow, tools=[WEATHER_TOOL], max_tokens=5
    )  # type: ignore[call-overload]
    assert second.choices[0].finish_reason in {"stop", "length"}
    assert second.usage.prompt_tokens > first.usage.prompt_tokens


def test_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    answer = client.chat.completions.parse(
        model="tiny-tools", messages=ASK, response_format=Weather
    )
    parsed = answer.choices[0].message.parsed
    assert isinstance(parsed, Weather)
    assert answer.choices[0].finish_reason == "stop"


def test_json_object_on_text_completions(client: openai.OpenAI) -> None:
    answer = client.completions.create(
        model="tiny-tools",
        prompt="A JSON object:",
        max_tokens=40,
        extra_body={
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "flag",
                    "schema": {
                        "type": "object",
                        "properties": {"ok": {"type": "boolean"}},
                        "required": ["ok"],
                        "additionalProperties": False,
                    },
                },
            }
        },
    )
    assert isinstance(json.loads(answer.choices[0].text)["ok"], bool)


def test_a_keyword_the_constraint_cannot_enforce_is_a_400_naming_it(base: str) -> None:
    schema = {"type": "object", "not": {"required": ["a"]}}
    body = {
        "messages": ASK,
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    }
    reply = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert '"not"' in error["message"] and error["param"] == "response_format"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "function", "function": {}}]}, "tools.0.function.name"),
        ({"tools": [WEATHER_TOOL], "tool_choice": named("nope")}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ],
)
def test_malformed_agent_fields_are_400s(base: str, body: dict[str, object], param: str) -> None:
    reply = httpx.post(f"{base}/v1/chat/completions", json={"messages": ASK, **body}, timeout=60)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param


def test_logprobs_whole_and_streamed(client: openai.OpenAI) -> None:
    kw = {"messages": ASK, "max_tokens": 8, "logprobs": True, "top_logprobs": 3}
    whole = client.chat.completions.create(model="tiny-tools", **kw)  # type: ignore[call-overload]
    content = whole.choices[0].logprobs.content
    assert len(content) == whole.usage.completion_tokens
    assert "".join(entry.token for entry in content) == whole.choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        tops = [top.logprob for top in entry.top_logprobs]
        assert tops == sorted(tops, reverse=True) and entry.logprob <= tops[0] + 1e-4
        assert entry.bytes == list(entry.token.encode())
    streamed = []
    for chunk in client.chat.completions.create(model="tiny-tools", stream=True, **kw):  # type: ignore[call-overload]
        if chunk.choices and chunk.choices[0].logprobs:
            streamed += chunk.choices[0].logprobs.content
    assert [(e.token, round(e.logprob, 4)) for e in streamed] == [
        (e.token, round(e.logprob, 4)) for e in content
    ]
    plain = client.chat.completions.create(model="tiny-tools", messages=ASK, max_tokens=8)
    assert plain.choices[0].logprobs is None


def test_splitter_reads_another_parser_fed_a_character_at_a_time() -> None:
    from mlx_lm.tool_parsers import qwen3_coder

    splitter = ToolCallSplitter(
        qwen3_coder.tool_call_start, qwen3_coder.tool_call_end, qwen3_coder.parse_tool_call, []
    )
    text = (
        "Let me check. <tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
        "</parameter>\n</function>\n</tool_call> and <tool_"
    )
    shown, calls = [], []
    for char in text:
        piece, found = splitter.feed(char)
        shown.append(piece)
        calls += found
    piece, found = splitter.feed("", final=True)
    shown.append(piece)
    assert "".join(shown) == "Let me check.  and <tool_"
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]


async def test_websocket_chat_takes_a_schema_and_sends_tool_calls(base: str) -> None:
    from websockets.asyncio.client import connect

    url = base.replace("http://", "ws://") + "/v1/ws/chat"
    schema = {"name": "w", "schema": Weather.model_json_schema()}
    async with connect(url) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "chat.request",
                    "id": "s",
                    "messages": ASK,
                    "response_format": {"type": "json_schema", "json_schema": schema},
                }
            )
        )
        await ws.send(
            json.dumps(
                {
                    "type": "chat.request",
                    "id": "t",
                    "messages": ASK,
                    "tools": [WEATHER_TOOL],
                    "tool_choice": "required",
                }
            )
        )
        events: dict[str, list[dict[str, object]]] = {"s": [], "t": []}
        while not all(e and e[-1]["type"] in ("chat.done", "error") for e in events.values()):
            event = json.loads(await ws.recv())
            if event.get("id") in events:
                events[event["id"]].append(event)
    text = "".join(str(e["delta"]) for e in events["s"] if e["type"] == "chat.delta")
    Weather.model_validate_json(text)
    (call,) = [e["tool_call"] for e in events["t"] if e["type"] == "chat.tool_call"]
    assert call["function"]["name"] == "get_weather"  # type: ignore[index]
    assert events["t"][-1]["finish_reason"] == "tool_calls"
    assert not [e for e in events["t"] if e["type"] == "chat.delta"]


def test_a_schema_is_compiled_once_and_each_row_gets_its_own_matcher(engine: Engine) -> None:
    from mlxchat.engine import constrain

    def twice() -> tuple[int, int, int]:
        tokenizer = engine._loaded.tokenizer  # type: ignore[union-attr]
        grammar = constrain.schema_grammar({"type": "object", "title": "compiled-once"})
        brace = tokenizer.encode("{", add_special_tokens=False)
        first = constrain.matcher(tokenizer, grammar, "response_format")
        assert first.consume_token(brace[0])
        second = constrain.matcher(tokenizer, grammar, "response_format")
        cached = [key for key in constrain._MATCHERS if key[1] == grammar]
        return first.validate_tokens(brace), second.validate_tokens(brace), len(cached)

    after_brace, fresh, cached = engine.call_sync(twice)
    assert cached == 1
    assert (after_brace, fresh) == (0, 1)  # each row's matcher is its own copy
