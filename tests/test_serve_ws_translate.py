"""`/v1/ws/translate`: wait-k translation of a streamed source over a real WebSocket."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import running_server
from websockets.asyncio.client import ClientConnection, connect

from mlxchat.engine.engine import Engine
from mlxchat.server.state import ServerConfig
from mlxchat.translate.metrics import latency_metrics

SENTENCE = ["The", "cat", "is", "on", "the", "table", "and", "the", "dog", "sleeps"]


@pytest.fixture(scope="module")
def never_ending(tiny_endless: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tiny_endless` whose answers do not end at a line break either (translations then
    stop only at the word cap)."""
    import mlx.core as mx
    from tokenizers import Tokenizer

    path = tmp_path_factory.mktemp("models") / "never-ending"
    shutil.copytree(tiny_endless, path)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    weights = mx.load(str(path / "model.safetensors"))
    head = weights["lm_head.weight"]
    breaks = [i for i in range(head.shape[0]) if "\n" in tokenizer.decode([i])]
    keep = mx.array([0.0 if i in breaks else 1.0 for i in range(head.shape[0])])
    weights["lm_head.weight"] = head * keep[:, None]
    mx.save_safetensors(str(path / "model.safetensors"), weights)
    return path


@pytest.fixture(scope="module")
def ws_url(never_ending: Path) -> Iterator[str]:
    engine = Engine()
    engine.load_sync(str(never_ending))
    with running_server(engine, ServerConfig()) as base:
        yield base.replace("http://", "ws://") + "/v1/ws/translate"


async def send(ws: ClientConnection, kind: str, **fields: Any) -> None:
    await ws.send(json.dumps({"type": kind} | fields))


async def receive(ws: ClientConnection, until: str = "segment.done") -> list[dict[str, Any]]:
    """Events up to the first of type `until` (or an `error`)."""
    events = []
    async with asyncio.timeout(30):
        while True:
            events.append(json.loads(await ws.recv()))
            if events[-1]["type"] in (until, "error"):
                return events


def close_to(a: dict[str, float | None], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        (a[m] is None and math.isnan(b[m])) or math.isclose(a[m] or 0, b[m]) for m in b
    )


async def translate(ws: ClientConnection, words: list[str]) -> list[dict[str, Any]]:
    """Send `words` one message each, then `source.end`; the events up to `segment.done`."""
    for word in words:
        await send(ws, "source.append", text=word + " ")
    await send(ws, "source.end")
    return await receive(ws)


async def test_a_sentence_word_by_word_has_wait_k_delays_and_metrics(ws_url: str) -> None:
    k, n = 3, len(SENTENCE)
    async with connect(ws_url) as ws:
        await send(ws, "session.start", wait_k=k, temp=0, max_new_words=n + 3)
        started = (await receive(ws, "session.started"))[-1]
        assert started["settings"]["wait_k"] == k
        for segment in (0, 1):  # two sentences over one connection
            events = await translate(ws, SENTENCE)
            words = [e for e in events if e["type"] == "target.word"]
            done = events[-1]
            assert done["type"] == "segment.done" and done["segment"] == segment
            delays = [w["delay"] for w in words]
            assert delays == [min(k + t - 1, n) for t in range(1, len(words) + 1)]
            assert sum(d < n for d in delays) == n - k  # written while the source still came
            assert done["delays"] == delays and done["words"] == [w["text"] for w in words]
            assert done["source"] == " ".join(SENTENCE) and done["translation"]
            assert close_to(done["metrics"], latency_metrics(delays, n))
            for i, word in enumerate(words):
                assert word["segment"] == segment and word["index"] == i
                running = latency_metrics(delays[: i + 1], word["source_words_read"])
                assert close_to(word["metrics"], running)


async def test_chunks_split_at_whitespace_and_misplaced_events_are_errors(ws_url: str) -> None:
    async with connect(ws_url) as ws:
        await send(ws, "session.start", wait_k=2, max_new_words=2)
        await receive(ws, "session.started")
        misplaced: list[tuple[str, dict[str, Any], str]] = [
            ("session.start", {}, "already started"),
            ("source.append", {"text": 5}, "'text' must be a string"),
        ]
        for kind, fields, words in misplaced:
            await send(ws, kind, **fields)
            assert words in (await receive(ws))[-1]["error"]["message"]
        for chunk in ("The c", "at is o", "n the tab", "le"):
            await send(ws, "source.append", text=chunk)
        await send(ws, "source.end")
        done = (await receive(ws))[-1]
        assert done["source"] == "The cat is on the table"
        assert done["delays"] == [2, 3]


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "source.append", "text": "Hello "}', "send session.start first"),
        ('{"type": "session.start", "wait_k": 0}', "'wait_k' must be a whole number from 1 to 32"),
        ('{"type": "session.start", "wait_k": "3"}', "'wait_k'"),
        ('{"type": "session.start", "temp": -1}', "temp"),
        ('{"type": "translate"}', "unknown event type"),
    ],
)
async def test_bad_events_get_an_error_event_and_the_connection_stays(
    ws_url: str, message: str, words: str
) -> None:
    async with connect(ws_url) as ws:
        await ws.send(message)
        event = json.loads(await ws.recv())
        assert event["type"] == "error" and words in event["error"]["message"]
        await send(ws, "session.start", wait_k=1, max_new_words=1)
        await receive(ws, "session.started")
        await send(ws, "source.end")
        assert "without any source words" in (await receive(ws))[-1]["error"]["message"]
        assert (await translate(ws, ["Hello", "there"]))[-1]["delays"] == [1]


async def translate_until_end(ws: ClientConnection) -> None:
    """Send SENTENCE and its end; return once a word was written after the end."""
    await send(ws, "source.append", text=" ".join(SENTENCE) + " ")
    await send(ws, "source.end")
    while (await receive(ws, "target.word"))[-1]["delay"] < len(SENTENCE):
        pass


async def test_a_client_that_leaves_mid_sentence_frees_the_engine(ws_url: str) -> None:
    async with connect(ws_url) as ws:  # the end of the sentence starts a 4,096-word answer
        await send(ws, "session.start", wait_k=3, max_new_words=4096)
        await receive(ws, "session.started")
        await translate_until_end(ws)
    started = time.perf_counter()
    async with connect(ws_url) as ws:
        await send(ws, "session.start", wait_k=2, max_new_words=1)
        await receive(ws, "session.started")
        assert (await translate(ws, ["Hello", "there"]))[-1]["delays"] == [2]
    assert time.perf_counter() - started < 2.0


async def test_two_translations_run_side_by_side(ws_url: str) -> None:
    """Two clients fed word for word in turn: each writes as its own wait-k allows (neither
    waits for the other's sentence to end) and gets what it gets alone."""
    n = len(SENTENCE)

    async def alone(k: int) -> list[str]:
        async with connect(ws_url) as ws:
            await send(ws, "session.start", wait_k=k, temp=0, max_new_words=n)
            await receive(ws, "session.started")
            return (await translate(ws, SENTENCE))[-1]["words"]

    expected = {2: await alone(2), 3: await alone(3)}
    async with connect(ws_url) as a, connect(ws_url) as b:
        clients = {2: a, 3: b}
        for k, ws in clients.items():
            await send(ws, "session.start", wait_k=k, temp=0, max_new_words=n)
            await receive(ws, "session.started")
        written: dict[int, list[int]] = {2: [], 3: []}
        for read, word in enumerate(SENTENCE[:-1], start=1):
            for k, ws in clients.items():
                await send(ws, "source.append", text=word + " ")
                if read >= k:  # wait-k writes one word now, while the other client waits
                    event = (await receive(ws, "target.word"))[-1]
                    assert event["type"] == "target.word", event
                    written[k].append(event["delay"])
        assert written == {k: list(range(k, n)) for k in clients}
        for k, ws in clients.items():
            await send(ws, "source.append", text=SENTENCE[-1] + " ")
            await send(ws, "source.end")
            done = (await receive(ws))[-1]
            assert done["type"] == "segment.done" and done["words"] == expected[k]
