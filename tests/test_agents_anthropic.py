"""Anthropic's Messages API with the official `anthropic` client against a real server on
loopback: create, the stream's event sequence, tools, count_tokens, output formats, errors,
`x-api-key` and model aliases (a tiny model whose chat template takes tools)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import anthropic
import httpx
import pytest
from pydantic import BaseModel, Field
from server_helpers import running_server

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Chunk, ModelInfo, Stats
from mlxchat.server.state import ServerConfig

KEY = "secret-key"
CONFIG = ServerConfig(
    api_key=KEY,
    max_queue=8,
    max_concurrency=4,
    max_body_bytes=64_000,
    keepalive_interval=15.0,
    defaults=Settings(temp=0.0, top_p=1.0, max_tokens=400),
    model_aliases=("claude-*",),
)
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
MODEL = "claude-sonnet-4-5"


class Weather(BaseModel):
    city: str = Field(max_length=10)
    unit: Literal["C", "F"]


TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": Weather.model_json_schema(),
}


@pytest.fixture(scope="module")
def base(tiny_tools: Path) -> Iterator[str]:
    engine = Engine()
    engine.load_sync(str(tiny_tools))
    with running_server(engine, CONFIG) as url:
        yield url
    engine.close()


@pytest.fixture
def client(base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key=KEY, max_retries=0)


def test_create_answers_and_counts_its_prompt(client: anthropic.Anthropic) -> None:
    kw = {"model": MODEL, "system": "Be brief.", "messages": ASK}
    message = client.messages.create(max_tokens=6, **kw)  # type: ignore[call-overload]
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.model == MODEL
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 6
    assert message.content[0].type == "text" and message.content[0].text
    counted = client.messages.count_tokens(**kw)  # type: ignore[arg-type]
    assert counted.input_tokens == message.usage.input_tokens
    blocks = client.messages.count_tokens(
        model=MODEL, system=[{"type": "text", "text": "Be brief."}], messages=ASK
    )  # type: ignore[arg-type]
    assert blocks.input_tokens == counted.input_tokens


def test_stream_is_the_documented_event_sequence(client: anthropic.Anthropic) -> None:
    kw = {"model": MODEL, "messages": ASK, "max_tokens": 6}
    whole = client.messages.create(**kw)  # type: ignore[call-overload]
    kinds = []
    text = ""
    for event in client.messages.create(stream=True, **kw):  # type: ignore[call-overload]
        kinds.append(event.type)
        if event.type == "content_block_delta":
            assert event.delta.type == "text_delta"
            text += event.delta.text
        if event.type == "message_delta":
            assert event.delta.stop_reason == "max_tokens"
            assert event.usage.output_tokens == 6
    deltas = kinds.count("content_block_delta")
    assert deltas >= 1
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert text == whole.content[0].text


def test_ping_and_event_names_on_the_wire(base: str) -> None:
    body = {"model": MODEL, "messages": ASK, "max_tokens": 2, "stream": True}
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    reply = httpx.post(f"{base}/v1/messages", json=body, headers=headers, timeout=60)
    events = [e for e in reply.text.split("\n\n") if e.strip()]
    names = [e.splitlines()[0].removeprefix("event: ") for e in events]
    assert names[:2] == ["message_start", "ping"]
    for event in events:  # each data's type is its event name
        name, data = event.splitlines()[0], event.splitlines()[1]
        assert json.loads(data.removeprefix("data: "))["type"] == name.removeprefix("event: ")


def test_tool_use_whole_streamed_and_back(client: anthropic.Anthropic) -> None:
    kw = {
        "model": MODEL,
        "messages": ASK,
        "max_tokens": 400,
        "tools": [TOOL],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    message = client.messages.create(**kw)  # type: ignore[call-overload]
    assert message.stop_reason == "tool_use"
    (use,) = [block for block in message.content if block.type == "tool_use"]
    assert use.name == "get_weather" and use.id
    Weather.model_validate(use.input)
    with client.messages.stream(**kw) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "input_json" in kinds
    (streamed,) = [block for block in final.content if block.type == "tool_use"]
    assert streamed.input == use.input and final.stop_reason == "tool_use"
    assert (
        client.messages.count_tokens(model=MODEL, messages=ASK, tools=[TOOL]).input_tokens
        == message.usage.input_tokens
    )  # type: ignore[arg-type]
    follow = [
        *ASK,
        {"role": "assistant", "content": [use.model_dump()]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny"}],
        },
    ]
    again = client.messages.create(model=MODEL, messages=follow, tools=[TOOL], max_tokens=3)  # type: ignore[arg-type]
    assert again.usage.input_tokens > message.usage.input_tokens


class Forecast(BaseModel):
    unit: Literal["C", "F"]
    sunny: bool


def test_parse_with_an_output_format(client: anthropic.Anthropic) -> None:
    message = client.messages.parse(
        model=MODEL, messages=ASK, max_tokens=400, output_format=Forecast
    )  # type: ignore[arg-type]
    assert isinstance(message.parsed_output, Forecast)


def test_errors_use_anthropics_envelope(base: str, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as found:
        client.messages.create(model="gpt-4o", messages=ASK, max_tokens=2)  # type: ignore[arg-type]
    assert found.value.body["type"] == "error"  # type: ignore[index]
    assert found.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "gpt-4o" in found.value.body["error"]["message"]  # type: ignore[index]
    wrong = anthropic.Anthropic(base_url=base, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(model=MODEL, messages=ASK, max_tokens=2)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(
            model=MODEL,
            messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}],
            max_tokens=2,
        )  # type: ignore[arg-type]
    assert "image" in bad.value.body["error"]["message"]  # type: ignore[index]
    reply = httpx.post(
        f"{base}/v1/chat/completions", json={}, headers={"x-api-key": KEY}, timeout=30
    )
    assert reply.status_code == 400 and "param" in reply.json()["error"]  # OpenAI's there


class _Scripted:
    """An engine stub whose answer is a reasoning part, then the answer (the chunks a
    reasoning model gives once the think split exists)."""

    model_info = ModelInfo("thinker", "thinker")

    def stream(self, *args: object, **kw: object) -> _Scripted:
        self.chunks = [
            Chunk("Let me ", 1, Stats(context_tokens=5), channel="reasoning"),
            Chunk("think.", 2, Stats(context_tokens=6), channel="reasoning"),
            Chunk("Paris.", 3, Stats(context_tokens=7)),
            Chunk("", None, Stats(prompt_tokens=4, generation_tokens=3), finish_reason="stop"),
        ]
        return self

    def __aiter__(self) -> _Scripted:
        return self

    async def __anext__(self) -> Chunk:
        if not self.chunks:
            raise StopAsyncIteration
        return self.chunks.pop(0)

    def cancel(self) -> None:
        self.chunks = []


def test_reasoning_chunks_are_thinking_blocks() -> None:
    engine = _Scripted()
    with running_server(engine, ServerConfig()) as url:  # type: ignore[arg-type]
        client = anthropic.Anthropic(base_url=url, api_key="-", max_retries=0)
        message = client.messages.create(model="thinker", messages=ASK, max_tokens=9)
        assert [block.type for block in message.content] == ["thinking", "text"]
        assert message.content[0].thinking == "Let me think."  # type: ignore[union-attr]
        assert message.content[1].text == "Paris."  # type: ignore[union-attr]
        with client.messages.stream(model="thinker", messages=ASK, max_tokens=9) as stream:
            deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
            final = stream.get_final_message()
    assert deltas == ["thinking_delta", "thinking_delta", "text_delta"]
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think."  # type: ignore[union-attr]
