"""Reasoning over `mlxchat serve`: the official `openai` client reads `reasoning_content`
(streamed and whole), `content` never holds it, `chat_template_kwargs` reach the template,
the WebSocket chat sends `chat.reasoning`, and a remote engine turns it back into
reasoning chunks (a tiny model with think tokens behind a real loopback server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from server_helpers import running_server
from websockets.asyncio.client import connect

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.engine.remote import RemoteEngine
from mlxchat.engine.types import Chunk, RequestOptions, SamplingParams
from mlxchat.server.state import ServerConfig

HELLO = [{"role": "user", "content": "Hello, how are you today?"}]
BUDGET = {"thinking_budget": 5}
DEFAULTS = Settings(temp=0.0, top_p=1.0, max_tokens=16)


@pytest.fixture(scope="module")
def base(tiny_thinking: Path) -> Iterator[str]:
    engine = Engine(progress_interval=0.01)
    engine.load_sync(str(tiny_thinking))
    with running_server(engine, ServerConfig(defaults=DEFAULTS)) as url:
        yield url
    engine.close()


@pytest.fixture
def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


def test_whole_answer_has_reasoning_content_apart(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="tiny-thinking", messages=HELLO, extra_body=BUDGET)  # type: ignore[arg-type]
    message = reply.choices[0].message
    extra: dict[str, Any] = message.model_extra or {}
    assert extra["reasoning_content"] and extra["reasoning"] == extra["reasoning_content"]
    assert message.content and "<think>" not in message.content + extra["reasoning_content"]
    assert "</think>" not in message.content
    assert reply.usage is not None and reply.usage.completion_tokens == 16


def test_streamed_reasoning_content_then_content(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="tiny-thinking", messages=HELLO, extra_body=BUDGET)  # type: ignore[arg-type]
    stream = client.chat.completions.create(
        model="tiny-thinking",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        extra_body=BUDGET,
    )
    kinds, thought, answer = [], "", ""
    for chunk in stream:
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            if extra.get("reasoning_content"):
                kinds.append("reasoning")
                thought += extra["reasoning_content"]
            if choice.delta.content:
                kinds.append("answer")
                answer += choice.delta.content
    assert (
        kinds.index("answer") > kinds.index("reasoning")
        and "reasoning" not in kinds[kinds.index("answer") :]
    )
    assert answer == whole.choices[0].message.content
    assert thought == (whole.choices[0].message.model_extra or {})["reasoning_content"]


def test_chat_template_kwargs_turn_thinking_off(client: openai.OpenAI) -> None:
    body = {"chat_template_kwargs": {"enable_thinking": False}} | BUDGET
    reply = client.chat.completions.create(model="tiny-thinking", messages=HELLO, extra_body=body)  # type: ignore[arg-type]
    assert "reasoning_content" not in (reply.choices[0].message.model_extra or {})
    assert reply.choices[0].message.content


def test_websocket_chat_sends_reasoning_events(base: str) -> None:
    async def run() -> list[dict[str, Any]]:
        url = base.replace("http://", "ws://") + "/v1/ws/chat"
        events = []
        async with connect(url) as ws:
            request = {"type": "chat.request", "id": "a", "messages": HELLO} | BUDGET
            await ws.send(json.dumps(request))
            async with asyncio.timeout(30):
                while not events or events[-1]["type"] != "chat.done":
                    events.append(json.loads(await ws.recv()))
        return events

    events = asyncio.run(run())
    kinds = [e["type"] for e in events if e["type"] in ("chat.reasoning", "chat.delta")]
    assert kinds[0] == "chat.reasoning" and "chat.delta" in kinds
    assert "thinking" in [e.get("phase") for e in events if e["type"] == "chat.progress"]
    text = "".join(e["delta"] for e in events if e["type"] in ("chat.reasoning", "chat.delta"))
    assert "think>" not in text


def test_remote_engine_turns_reasoning_content_into_reasoning_chunks(base: str) -> None:
    engine = RemoteEngine()
    engine.load_sync(f"{base}/v1")
    try:  # no budget: the tiny model thinks to the end of its 16 tokens
        events = list(engine.iterate("Hello, how are you today?", SamplingParams(max_tokens=16)))
    finally:
        engine.close()
    chunks = [e for e in events if isinstance(e, Chunk)]
    reasoning = "".join(c.text for c in chunks if c.channel == "reasoning")
    assert reasoning and "think>" not in reasoning
    assert "".join(c.text for c in chunks if c.channel == "answer") == ""


def test_remote_engine_sends_the_thinking_options(base: str) -> None:
    engine = RemoteEngine()
    engine.load_sync(f"{base}/v1")
    params = SamplingParams(max_tokens=12)
    try:
        events = list(engine.iterate("Hi", params, options=RequestOptions(thinking_budget=3)))
        off = RequestOptions(template_kwargs={"enable_thinking": False})
        plain = list(engine.iterate("Hi", params, options=off))
    finally:
        engine.close()
    chunks = [e for e in events if isinstance(e, Chunk)]
    assert any(c.channel == "reasoning" and c.text for c in chunks)
    assert any(c.channel == "answer" and c.text for c in chunks)
    assert not any(c.channel == "reasoning" for c in plain if isinstance(c, Chunk))
