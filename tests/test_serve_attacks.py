"""A hostile but bounded client against a real `mlxchat serve` stack on a loopback port.

Each attack is followed by a normal request that must answer within seconds: the server
can be neither stalled nor borrowed. Every loop here is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import running_server
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.server.state import ServerConfig

ANSWERS_WITHIN = 15.0
"""Seconds a normal request may take after an attack (the issue's bound)."""

HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A tiny model whose answers never end by themselves, with a context of 128k tokens
    (an answer to the limit takes a minute or two), and small prefill steps (a long prompt
    takes many seconds)."""
    from tiny_models import make_tiny_model

    path = make_tiny_model(
        tmp_path_factory.mktemp("models") / "long", endless=True, max_position_embeddings=1 << 17
    )
    engine = Engine(progress_interval=0.05, prefill_step_size=16)
    engine.load_sync(str(path))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def base(engine: Engine) -> Iterator[str]:
    config = ServerConfig(defaults=Settings(max_tokens=8), max_queue=4)
    with running_server(engine, config, header_timeout=HEADER_TIMEOUT, max_pending=32) as url:
        yield url


@pytest.fixture(scope="module")
def small(tiny_endless: Path) -> Iterator[str]:
    """A server on a model with a context of 2,048 tokens."""
    engine = Engine()
    engine.load_sync(str(tiny_endless))
    with running_server(engine, ServerConfig(defaults=Settings(max_tokens=8))) as url:
        yield url
    engine.close()


def normal_request_answers(base: str, within: float = ANSWERS_WITHIN) -> None:
    """A plain chat request gets its answer within `within` seconds."""
    started = time.monotonic()
    reply = httpx.post(
        f"{base}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=within,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["finish_reason"] == "length"
    assert time.monotonic() - started < within


def post(base: str, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    headers.setdefault("Content-Type", "application/json")
    return httpx.post(f"{base}/v1/chat/completions", content=content, headers=headers, timeout=30)


# ----- work per request --------------------------------------------------------------------
def test_ten_thousand_messages_are_fitted_quickly(small: str) -> None:
    messages = [{"role": "user", "content": ""}] * 10_000 + [{"role": "user", "content": "Hi"}]
    started = time.monotonic()
    reply = post(small, {"messages": messages, "max_tokens": 2})
    assert reply.status_code == 200, reply.text
    assert time.monotonic() - started < 10  # took ~19 minutes before
    normal_request_answers(small)


def test_an_abandoned_request_without_streaming_is_cancelled(base: str) -> None:
    body = {"messages": [{"role": "user", "content": "Go"}], "max_tokens": 10**12}
    with pytest.raises(httpx.TimeoutException):  # the greedy answer would take minutes
        httpx.post(f"{base}/v1/chat/completions", json=body, timeout=1.0)
    normal_request_answers(base, within=5)
    health = httpx.get(f"{base}/health").json()
    assert health["active_requests"] == 0  # nothing left running


def test_max_tokens_is_capped_at_the_context(small: str) -> None:
    body = {"messages": [{"role": "user", "content": "Go"}], "max_tokens": 10**12}
    reply = httpx.post(f"{small}/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["total_tokens"] == 2048
    assert reply.json()["choices"][0]["finish_reason"] == "length"


def test_a_client_that_leaves_during_prefill_frees_the_engine(base: str) -> None:
    long = " ".join(["word"] * 8000)  # about 40,000 tokens: over 10 s of prefill here
    body = {"messages": [{"role": "user", "content": long}], "stream": True}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{base}/v1/chat/completions", json=body, timeout=0.5)
    normal_request_answers(base, within=5)


# ----- connections --------------------------------------------------------------------------
def test_idle_connections_cannot_lock_out_new_clients(base: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    idle = []
    try:
        for _ in range(100):  # far more than the 32 allowed to wait for their headers
            conn = socket.create_connection((host, int(port)), timeout=5)
            with contextlib.suppress(ConnectionError):  # the oldest are closed meanwhile
                conn.sendall(b"G")
            idle.append(conn)
        started = time.monotonic()
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        normal_request_answers(base)
        assert time.monotonic() - started < ANSWERS_WITHIN
        closed = 0
        for conn in idle:  # the server closed all but the newest 32 waiting ones
            conn.settimeout(0.05)
            try:
                closed += conn.recv(1) == b""
            except ConnectionError:
                closed += 1
            except TimeoutError:
                pass
        assert closed >= 100 - 32
    finally:
        for conn in idle:
            conn.close()


def test_a_client_slow_with_its_headers_is_dropped(base: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=HEADER_TIMEOUT * 5) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        started = time.monotonic()
        assert conn.recv(100) == b""  # closed by the server
        assert time.monotonic() - started < HEADER_TIMEOUT * 3


def test_the_listening_socket_sets_tcp_nodelay(base: str) -> None:
    from mlxchat.server.serving import listen

    async def accepted_nodelay() -> int:
        listener = listen("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        value = await asyncio.wait_for(seen, 5)
        writer.close()
        server.close()
        return value

    assert asyncio.run(accepted_nodelay()) == 1


# ----- who may call it ----------------------------------------------------------------------
def test_a_foreign_host_is_refused(base: str) -> None:
    reply = httpx.get(f"{base}/health", headers={"Host": "evil.example"})
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "host_not_allowed"
    assert httpx.get(f"{base}/health", headers={"Host": "localhost:1234"}).status_code == 200
    normal_request_answers(base)


def test_a_cross_site_simple_post_is_refused(base: str) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "Hi"}]})
    reply = post(base, body, **{"Content-Type": "text/plain", "Origin": "http://evil.example"})
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "origin_not_allowed"
    plain = post(base, body, **{"Content-Type": "text/plain"})
    assert plain.status_code == 415  # and without an Origin, text is not JSON
    normal_request_answers(base)


def test_a_cross_site_websocket_handshake_is_refused(base: str) -> None:
    async def handshake() -> int:
        url = base.replace("http", "ws") + "/v1/ws/chat"
        try:
            async with connect(url, origin="http://evil.example"):  # type: ignore[arg-type]
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    assert asyncio.run(handshake()) == 403


def test_allowed_origins_and_hosts_can_be_given(engine: Engine) -> None:
    from mlxchat.server.guard import Guard

    guard = Guard.for_address("127.0.0.1", {"my-box"}, {"http://localhost:3000/"})
    with running_server(engine, ServerConfig(guard=guard)) as url:
        ok = httpx.get(f"{url}/health", headers={"Origin": "http://localhost:3000"})
        named = httpx.get(f"{url}/health", headers={"Host": "my-box:8080"})
        other = httpx.get(f"{url}/health", headers={"Origin": "http://localhost:3001"})
    assert (ok.status_code, named.status_code, other.status_code) == (200, 200, 403)


# ----- what a client sends ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("[" * 100_000, "nested too deeply"),
        ('{"messages": [], "seed": ' + "1" * 5000 + "}", "number too large"),
        ('{"messages": [{"role": "user", "content": "\\ud800"}]}', "lone surrogate"),
        ('{"messages": [{"role": "\\ud800", "content": "Hi"}]}', "lone surrogate"),
        ('{"model": "\\ud800", "messages": [{"role": "user", "content": "Hi"}]}', "surrogate"),
    ],
)
def test_malformed_bodies_are_400s_naming_the_problem(base: str, raw: str, words: str) -> None:
    reply = post(base, raw)
    assert reply.status_code == 400, reply.text
    assert words in reply.json()["error"]["message"]


def test_websocket_abuse_gets_error_events_and_the_connection_stays(base: str) -> None:
    async def run() -> list[dict[str, Any]]:
        events = []
        async with connect(base.replace("http", "ws") + "/v1/ws/chat") as ws:
            for raw in ("[" * 100_000, '{"type": "chat.request", "id": "\\ud800"}'):
                await ws.send(raw)
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            messages = [{"role": "user", "content": "Hi"}]
            request = {"type": "chat.request", "id": "ok", "messages": messages, "max_tokens": 2}
            await ws.send(json.dumps(request))
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 10)))[
                "type"
            ] != "chat.done":
                pass
            events.append(event)
        return events

    deep, surrogate, done = asyncio.run(run())
    assert deep["type"] == "error" and "nested too deeply" in deep["error"]["message"]
    assert surrogate["type"] == "error" and "surrogate" in surrogate["error"]["message"]
    assert done["finish_reason"] == "length"


def test_websocket_translation_is_bounded(base: str) -> None:
    def resident() -> int:
        status = Path("/proc/self/status").read_text()
        return int(
            next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
        )

    async def run() -> list[dict[str, Any]]:
        events = []
        async with connect(base.replace("http", "ws") + "/v1/ws/translate") as ws:
            for start in (
                {"max_tokens_per_word": 10**9},
                {"max_new_words": 10**9},
                {"source_lang": "x" * 30_000},
            ):
                await ws.send(json.dumps({"type": "session.start"} | start))
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            await ws.send(json.dumps({"type": "session.start", "wait_k": 2, "max_new_words": 1}))
            await asyncio.wait_for(ws.recv(), 10)  # session.started
            flood = "word " * 600_000  # 3 MB of words in one message
            for _ in range(3):
                await ws.send(json.dumps({"type": "source.append", "text": flood}))
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        return events

    before = resident()
    *settings, flood1, flood2, flood3 = asyncio.run(run())
    assert all(e["type"] == "error" for e in settings), settings
    assert "max_tokens_per_word" in settings[0]["error"]["message"]
    assert "max_new_words" in settings[1]["error"]["message"]
    assert "at most 40 characters" in settings[2]["error"]["message"]
    for event in (flood1, flood2, flood3):
        assert event["error"]["code"] == "source_buffer_full"
    assert resident() < before * 1.1 + 50_000  # kB: nothing of the flood is kept
    normal_request_answers(base)


# ----- the rules of the API -----------------------------------------------------------------
def test_the_bearer_rule_is_exact(engine: Engine) -> None:
    with running_server(engine, ServerConfig(api_key="k3y")) as url:

        def status(header: str) -> int:
            return httpx.get(f"{url}/v1/models", headers={"Authorization": header}).status_code

        assert [status(h) for h in ("Bearer k3y", "bearer k3y", "BEARER k3y")] == [200] * 3
        assert [status(h) for h in ("k3y", "Bearer  k3y", "Basic k3y", "Bearer")] == [401] * 4


def test_405_says_what_is_allowed_and_completions_name_the_prompt(small: str) -> None:
    wrong = httpx.get(f"{small}/v1/chat/completions")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    long = " ".join(["word"] * 3000)
    reply = httpx.post(f"{small}/v1/completions", json={"prompt": long, "max_tokens": 2})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "prompt"
