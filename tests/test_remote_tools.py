"""The agents' options over the remote engine: tools, forced calls, tool results, response
formats and logprobs through `RemoteEngine` against a real `mlxchat serve` app on loopback
(the tiny model whose chat template takes tools), and OpenAI's streamed call pieces joined."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import running_server

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.engine.remote import RemoteEngine
from mlxchat.engine.remote_tools import ToolCallJoiner
from mlxchat.engine.types import Chunk, Message, RequestOptions, SamplingParams, ToolCall
from mlxchat.server.state import ServerConfig

CONFIG = ServerConfig(
    max_queue=8,
    max_concurrency=4,
    max_body_bytes=64_000,
    keepalive_interval=15.0,
    defaults=Settings(temp=0.0, top_p=1.0, max_tokens=200),
)
ASK = Message("user", "What is the weather in Paris?")
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 10}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
FORCED = RequestOptions(
    tools=(WEATHER, TIME), tool_choice={"type": "function", "function": {"name": "get_weather"}}
)
GREEDY = SamplingParams(temp=0.0, max_tokens=200)


@pytest.fixture(scope="module")
def remote(tiny_tools: Path) -> Iterator[RemoteEngine]:
    """A `RemoteEngine` connected to `mlxchat serve`'s app serving the tiny tool model."""
    engine = Engine()
    engine.load_sync(str(tiny_tools))
    with running_server(engine, CONFIG) as base:
        client = RemoteEngine(api_key="unused")
        client.load_sync(f"{base}/v1")
        yield client
        client.close()
    engine.close()


def chunks(
    remote: RemoteEngine, messages: list[Message], options: RequestOptions, **params: Any
) -> list[Chunk]:
    params = {"temp": 0.0, "max_tokens": 200, **params}
    events = remote.iterate(messages, SamplingParams(**params), options=options, progress=False)
    return [event for event in events if isinstance(event, Chunk)]


def test_a_forced_call_arrives_whole_and_its_result_is_answered(remote: RemoteEngine) -> None:
    got = chunks(remote, [ASK], FORCED)
    calls = [c.tool_call for c in got if c.tool_call is not None]
    assert len(calls) == 1
    (call,) = calls
    assert call.name == "get_weather" and call.id.startswith("call_")
    assert set(json.loads(call.arguments)) == {"city"}
    assert got[-1].finish_reason == "tool_calls"
    assert "".join(c.text for c in got) == ""  # the call is not in the text

    def answer(result: str, calls: tuple[ToolCall, ...] = (call,)) -> list[Chunk]:
        turn = [
            ASK,
            Message("assistant", "", tool_calls=calls),
            Message("tool", result, tool_call_id=call.id, name="get_weather"),
        ]
        return chunks(remote, turn, RequestOptions(tools=(WEATHER, TIME)), max_tokens=4)

    short, long = answer("21 C"), answer("21 C, sunny, light wind from the west, dry " * 4)
    assert short[-1].finish_reason in ("stop", "length", "tool_calls")
    assert short[-1].error is None
    grown = long[-1].stats.prompt_tokens - short[-1].stats.prompt_tokens
    assert grown >= 20  # the tool's result reached the model's prompt
    callless = answer("21 C", calls=())
    rendered = short[-1].stats.prompt_tokens - callless[-1].stats.prompt_tokens
    assert rendered >= len(call.arguments) // 4 + 5  # and so did the call it answers


async def test_tools_reach_the_server_prompt_and_its_count(remote: RemoteEngine) -> None:
    plain = chunks(remote, [ASK], RequestOptions(), max_tokens=1)
    tooled = chunks(remote, [ASK], RequestOptions(tools=(WEATHER,)), max_tokens=1)
    assert tooled[-1].stats.prompt_tokens > plain[-1].stats.prompt_tokens + 10
    counted = await remote.count_tokens([ASK], options=RequestOptions(tools=(WEATHER,)))
    assert counted == tooled[-1].stats.prompt_tokens


def test_response_format_and_logprobs_go_through(remote: RemoteEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    options = RequestOptions(
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
        logprobs=True,
        top_logprobs=2,
    )
    got = chunks(remote, [ASK], options)
    answer = "".join(c.text for c in got)
    assert set(json.loads(answer)) == {"ok"}
    texts = [c for c in got if c.text]
    assert texts and all(c.logprob is not None for c in texts)
    assert all(c.logprob is not None and len(c.logprob.top) == 2 for c in texts)
    assert all(c.logprob is not None and c.logprob.logprob <= 0 for c in texts)


def test_streamed_call_pieces_are_joined_per_index() -> None:
    joiner = ToolCallJoiner()
    first = {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_time"}}
    assert joiner.add({"tool_calls": [first]}) == []
    assert joiner.add({"tool_calls": [{"index": 0, "function": {"arguments": '{"tz":'}}]}) == []
    assert joiner.add({"tool_calls": [{"index": 0, "function": {"arguments": ' "UTC"}'}}]}) == []
    second = {"index": 1, "id": "call_b", "function": {"name": "get_weather", "arguments": ""}}
    assert joiner.add({"tool_calls": [second]}) == [ToolCall("call_a", "get_time", '{"tz": "UTC"}')]
    assert joiner.add({"content": "x"}) == []
    (last,) = joiner.flush()
    assert (last.id, last.name, last.arguments) == ("call_b", "get_weather", "{}")
    assert joiner.flush() == []
