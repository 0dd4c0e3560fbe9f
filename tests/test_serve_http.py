"""`mlxchat serve` over HTTP: a real uvicorn server on loopback, the official `openai` client,
raw SSE bytes with httpx, every error case of the API."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from server_helpers import running_server

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.server.state import ServerConfig

DEFAULTS = Settings(temp=0.0, top_p=1.0, max_tokens=16)
CONFIG = ServerConfig(
    max_queue=1,
    max_concurrency=1,
    max_body_bytes=64_000,
    keepalive_interval=15.0,
    defaults=DEFAULTS,
)
HELLO = [{"role": "user", "content": "Hello, how are you today?"}]


@pytest.fixture(scope="module")
def engine(tiny_endless: Path) -> Engine:
    """A tiny model that never ends an answer by itself (answers run to max_tokens)."""
    engine = Engine(progress_interval=0.01)
    engine.load_sync(str(tiny_endless))
    return engine


@pytest.fixture(scope="module")
def base(engine: Engine) -> Iterator[str]:
    with running_server(engine, CONFIG) as url:
        yield url


@pytest.fixture
def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


def sse_events(body: bytes) -> list[bytes]:
    return [event for event in body.split(b"\n\n") if event]


def test_openai_client_streams_with_usage_and_matches_the_whole_answer(
    client: openai.OpenAI, engine: Engine
) -> None:
    stream = client.chat.completions.create(
        model=engine.model_info.name,
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=12,
    )
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    content = [c for c in chunks if c.choices]
    assert content[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in content][-1] == "length"
    assert all(c.choices[0].finish_reason is None for c in content[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12
    text = "".join(c.choices[0].delta.content or "" for c in content)
    whole = client.chat.completions.create(model="tiny-endless", messages=HELLO, max_tokens=12)
    assert whole.choices[0].message.content == text and len(text) > 5
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage.prompt_tokens == chunks[-1].usage.prompt_tokens > 5


def test_follow_up_turn_reuses_the_cached_prompt(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="tiny-endless", messages=HELLO, max_tokens=8)
    answer = first.choices[0].message.content
    turn = [*HELLO, {"role": "assistant", "content": answer}, {"role": "user", "content": "Why?"}]
    second = client.chat.completions.create(model="tiny-endless", messages=turn, max_tokens=8)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= first.usage.prompt_tokens
    assert second.usage.prompt_tokens > cached


def test_sse_bytes_on_the_wire(base: str) -> None:
    body = {"messages": HELLO, "stream": True, "max_tokens": 5, "stop": "zzz"}
    response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    assert events[-1] == b"data: [DONE]"
    assert all(e.startswith(b"data: {") for e in events[:-1])
    first = json.loads(events[0].removeprefix(b"data: "))
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert b"usage" not in response.content  # only with include_usage


def test_progress_events_and_keepalives_only_where_asked(engine: Engine) -> None:
    config = ServerConfig(keepalive_interval=0.0005, defaults=DEFAULTS)
    with running_server(engine, config) as url:
        options = {"include_progress": True}
        body = {"messages": HELLO, "stream": True, "max_tokens": 200, "stream_options": options}
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    events = sse_events(response.content)
    progress = [e for e in events if e.startswith(b"event: progress\n")]
    assert progress, events[:5]
    payload = json.loads(progress[-1].split(b"\n")[1].removeprefix(b"data: "))
    assert payload["completion_tokens"] > 0 and payload["tokens_per_second"] > 0
    assert b": ping" in events
    assert events[-1] == b"data: [DONE]"


def test_text_completions(client: openai.OpenAI) -> None:
    whole = client.completions.create(model="tiny-endless", prompt="The quick brown", max_tokens=6)
    assert whole.object == "text_completion" and whole.choices[0].finish_reason == "length"
    streamed = client.completions.create(
        model="tiny-endless", prompt="The quick brown", max_tokens=6, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == whole.choices[0].text


def test_models_and_health(client: openai.OpenAI, base: str, engine: Engine) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[0] == engine.model_info.name
    health = httpx.get(f"{base}/health").json()
    assert health["status"] == "ok" and health["model"] == engine.model_info.name


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        (b'{"messages": [', 400, None, "not valid JSON"),
        (b"[1, 2]", 400, None, "JSON object"),
        (b"{}", 400, "messages", "non-empty"),
        (b'{"messages": []}', 400, "messages", "non-empty"),
        (b'{"messages": [{"role": "robot", "content": "hi"}]}', 400, "messages.0.role", "robot"),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}',
            400,
            "temperature",
            "number",
        ),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "temperature": -1}',
            400,
            "temperature",
            "temp",
        ),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}',
            400,
            "max_tokens",
            "max_tokens",
        ),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
            400,
            "stream",
            "boolean",
        ),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4"}',
            404,
            "model",
            "gpt-4",
        ),
    ],
)
def test_bad_requests_get_the_error_envelope(
    base: str, body: bytes, status: int, param: str | None, words: str
) -> None:
    headers = {"content-type": "application/json"}
    response = httpx.post(f"{base}/v1/chat/completions", content=body, headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and words in error["message"]
    assert "Traceback" not in response.text


def test_unknown_fields_are_ignored(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="tiny-endless", messages=HELLO, max_tokens=3, extra_body={"frobnicate": [1, 2]}
    )
    assert answer.choices[0].message.content


def test_prompt_longer_than_the_context_is_400_with_the_numbers(client: openai.OpenAI) -> None:
    long = [{"role": "user", "content": "fox " * 2100}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tiny-endless", messages=long, stream=True)
    error = caught.value.body
    assert error["code"] == "context_length_exceeded"
    assert "2048" in error["message"] and "tokens" in error["message"]
    assert client.chat.completions.create(model="tiny-endless", messages=HELLO, max_tokens=2)


@pytest.mark.parametrize("chunked", [False, True])
def test_body_over_the_limit_is_413(base: str, chunked: bool) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 70_000}]}).encode()
    content = iter([body[:30_000], body[30_000:]]) if chunked else body  # no Content-Length
    response = httpx.post(f"{base}/v1/chat/completions", content=content)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert httpx.get(f"{base}/health").status_code == 200


def test_a_declared_oversize_body_is_refused_before_it_is_sent(base: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        )
        assert conn.recv(4096).startswith(b"HTTP/1.1 413 ")


def test_api_key_is_required_when_set(engine: Engine) -> None:
    with running_server(engine, ServerConfig(api_key="s3cret", defaults=DEFAULTS)) as url:
        wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="guess", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.models.list()
        assert caught.value.body["code"] == "invalid_api_key"
        right = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
        assert right.chat.completions.create(model="tiny-endless", messages=HELLO, max_tokens=2)
        assert httpx.get(f"{url}/health").status_code == 200  # health needs no key


async def test_full_queue_is_429_with_retry_after(base: str) -> None:
    endless = {"messages": HELLO, "stream": True, "max_tokens": 100_000}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        async with http.stream("POST", "/v1/chat/completions", json=endless) as running:
            received = running.aiter_bytes()  # kept: dropping it would close the stream
            await anext(received)  # the first request runs
            waiting = asyncio.create_task(http.post("/v1/chat/completions", json=endless))
            while (await http.get("/health")).json()["waiting_requests"] < 1:
                await asyncio.sleep(0.01)
            refused = await http.post("/v1/chat/completions", json=endless)
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "queue_full"
            waiting.cancel()
        while (await http.get("/health")).json()["active_requests"]:
            await asyncio.sleep(0.01)


async def test_disconnect_cancels_and_the_next_request_runs_at_once(base: str) -> None:
    endless = {"messages": HELLO, "stream": True, "max_tokens": 100_000}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        async with http.stream("POST", "/v1/chat/completions", json=endless) as response:
            async for _ in response.aiter_bytes():
                break
        gone = time.perf_counter()
        small = {"messages": HELLO, "max_tokens": 1}
        answer = await http.post("/v1/chat/completions", json=small)
        waited = time.perf_counter() - gone
    assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 1
    assert waited < 2.0  # the endless answer would never have ended
