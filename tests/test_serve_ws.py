"""`/v1/ws/chat`: typed JSON events over a real WebSocket, several requests, cancel, errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import running_server
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.server.state import ServerConfig

HELLO = [{"role": "user", "content": "Hello, how are you today?"}]


@pytest.fixture(scope="module")
def ws_url(tiny_endless: Path) -> Iterator[str]:
    engine = Engine(progress_interval=0.01)
    engine.load_sync(str(tiny_endless))
    config = ServerConfig(api_key="k", defaults=Settings(temp=0.0, top_p=1.0, max_tokens=8))
    with running_server(engine, config) as base:
        yield base.replace("http://", "ws://") + "/v1/ws/chat"


async def until_done(ws: ClientConnection, request_id: str) -> list[dict[str, Any]]:
    """The events of one request up to its `chat.done` or `error`."""
    events = []
    async with asyncio.timeout(10):
        while True:
            event = json.loads(await ws.recv())
            if event.get("id") == request_id:
                events.append(event)
                if event["type"] in ("chat.done", "error"):
                    return events


async def test_two_requests_and_a_cancel_over_one_connection(ws_url: str) -> None:
    async with connect(ws_url, additional_headers={"Authorization": "Bearer k"}) as ws:
        request = {"type": "chat.request", "messages": HELLO, "max_tokens": 6}
        await ws.send(json.dumps(request | {"id": "a"}))
        first = await until_done(ws, "a")
        kinds = {e["type"] for e in first}
        assert {"chat.delta", "chat.done"} <= kinds
        done = first[-1]
        assert done["finish_reason"] == "length" and done["usage"]["completion_tokens"] == 6
        assert "".join(e["delta"] for e in first if e["type"] == "chat.delta")

        await ws.send(json.dumps(request | {"id": "b", "max_tokens": 100_000}))
        before: list[str] = []  # a delta, then a progress event while it generates
        async with asyncio.timeout(10):
            while "chat.delta" not in before or before[-1] != "chat.progress":
                before.append(json.loads(await ws.recv())["type"])
        await ws.send(json.dumps({"type": "chat.cancel", "id": "b"}))
        cancelled = await until_done(ws, "b")
        assert cancelled[-1]["type"] == "chat.done"
        assert cancelled[-1]["finish_reason"] == "cancelled"

        await ws.send(json.dumps(request | {"id": "c", "max_tokens": 2}))
        assert (await until_done(ws, "c"))[-1]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("message", "request_id", "words"),
    [
        ("{not json", None, "not valid JSON"),
        ('{"type": "chat.request", "messages": []}', None, "'id'"),
        ('{"type": "chat.request", "id": "x", "messages": []}', "x", "non-empty"),
        ('{"type": "chat.request", "id": "x", "messages": [1]}', "x", "messages.0"),
        ('{"type": "chat.hello", "id": "x"}', "x", "unknown event type"),
        ('{"type": "chat.cancel", "id": "nope"}', "nope", "no running request"),
    ],
)
async def test_bad_events_get_an_error_event_and_the_connection_stays(
    ws_url: str, message: str, request_id: str | None, words: str
) -> None:
    async with connect(ws_url, additional_headers={"Authorization": "Bearer k"}) as ws:
        await ws.send(message)
        event = json.loads(await ws.recv())
        assert event["type"] == "error" and event["id"] == request_id
        assert words in event["error"]["message"]
        await ws.send(json.dumps({"type": "chat.request", "id": "ok", "messages": HELLO}))
        assert (await until_done(ws, "ok"))[-1]["type"] == "chat.done"


async def test_wrong_key_is_refused_in_the_handshake(ws_url: str) -> None:
    with pytest.raises(InvalidStatus) as caught:
        await connect(ws_url, additional_headers={"Authorization": "Bearer no"})
    response = caught.value.response
    assert response.status_code == 401
    assert json.loads(bytes(response.body))["error"]["code"] == "invalid_api_key"


async def test_cancel_a_request_still_waiting_for_the_engine(ws_url: str) -> None:
    async with connect(ws_url, additional_headers={"Authorization": "Bearer k"}) as ws:
        endless = {"type": "chat.request", "messages": HELLO, "max_tokens": 100_000}
        await ws.send(json.dumps(endless | {"id": "long"}))
        await ws.send(json.dumps(endless | {"id": "queued"}))
        await ws.send(json.dumps({"type": "chat.cancel", "id": "queued"}))
        done = (await until_done(ws, "queued"))[-1]
        assert done == {
            "type": "chat.done",
            "id": "queued",
            "finish_reason": "cancelled",
            "usage": None,
        }
        await ws.send(json.dumps({"type": "chat.cancel", "id": "long"}))
        assert (await until_done(ws, "long"))[-1]["finish_reason"] == "cancelled"
        await ws.send(json.dumps(endless | {"id": "after", "max_tokens": 2}))
        seen = []
        async with asyncio.timeout(10):
            while not seen or seen[-1] != ("after", "chat.done"):
                event = json.loads(await ws.recv())
                seen.append((event["id"], event["type"]))
        assert "queued" not in {request_id for request_id, _ in seen}  # it never ran
