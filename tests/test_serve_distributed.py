"""`mlxchat serve` under `mlx.launch`: two local ranks (ring backend) serve one split model."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tiny_models import make_tiny_model
from websockets.asyncio.client import connect

from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Message, SamplingParams
from mlxchat.translate import SegmentDone, WaitKSettings
from mlxchat.translate.incremental import stream_translate

LAUNCH = Path(sys.executable).with_name("mlx.launch")
SOURCE = "The cat is on the table and the dog sleeps"
QUESTIONS = ["Hello, how are you today?", "Hello, how are you today? And the cat?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair() -> int:
    """A port p with p + 1 free too: the ring backend binds one port per rank from p."""
    for _ in range(100):
        first = free_port()
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", first))
                b.bind(("127.0.0.1", first + 1))
                return first
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


@contextmanager
def launched(model: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """`mlx.launch -n 2 --backend ring -- mlxchat serve -m MODEL --port PORT`, stopped after."""
    command = [str(LAUNCH), "-n", "2", "--backend", "ring", "-p", str(free_port_pair()), "--"]
    serve = [sys.executable, "-m", "mlxchat", "serve", "-m", str(model), "--port", str(port)]
    process = subprocess.Popen(
        command + serve,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def single_process(model: Path) -> tuple[list[str], list[str]]:
    """The greedy answers to QUESTIONS and the wait-2 translation of SOURCE on one process."""
    engine = Engine()
    engine.load_sync(str(model))
    params = SamplingParams(temp=0.0, max_tokens=8)
    answers = [engine.generate_sync([Message("user", q)], params).text for q in QUESTIONS]
    settings = WaitKSettings(wait_k=2, max_new_words=6)

    def translate(model: Any, tokenizer: Any, emit: Any, cancelled: Any) -> None:
        for event in stream_translate(model, tokenizer, SOURCE, settings, should_stop=cancelled):
            emit(event)

    done = [e for e in engine.with_model_sync(translate) if isinstance(e, SegmentDone)]
    return answers, list(done[0].target_words)


async def translate_over_websocket(url: str) -> list[str]:
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "session.start", "wait_k": 2, "max_new_words": 6}))
        await ws.send(json.dumps({"type": "source.append", "text": SOURCE}))
        await ws.send(json.dumps({"type": "source.end"}))
        async with asyncio.timeout(30):
            while (event := json.loads(await ws.recv()))["type"] != "segment.done":
                assert event["type"] != "error", event
        return event["words"]


def test_two_ranks_answer_as_one_process(tiny_llama: Path) -> None:
    expected, translation = single_process(tiny_llama)
    port = free_port()
    with launched(tiny_llama, port) as process:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "rank 0 never served"
                time.sleep(0.2)
        for question, answer in zip(QUESTIONS, expected, strict=True):
            body = {
                "messages": [{"role": "user", "content": question}],
                "max_tokens": 8,
                "temperature": 0,
            }
            reply = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30).json()
            assert reply["choices"][0]["message"]["content"] == answer
        # the second question shares the first one's prompt prefix: the ranks reused it
        assert reply["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
        url = f"ws://127.0.0.1:{port}/v1/ws/translate"  # trims its KV cache at every word
        assert len(translation) >= 3
        assert asyncio.run(translate_over_websocket(url)) == translation


def test_a_model_that_cannot_be_split_gets_one_line(tmp_path: Path) -> None:
    model = make_tiny_model(
        tmp_path / "three-heads", hidden_size=48, num_attention_heads=3, num_key_value_heads=3
    )
    with launched(model, free_port()) as process:
        output, _ = process.communicate(timeout=60)
    lines = [line for line in output.splitlines() if "cannot split" in line]
    assert lines == [
        f"mlxchat: error: cannot split {model} across 2 ranks: it has 3 attention heads and "
        "3 KV heads, and both must divide by 2; run fewer ranks or a model whose head counts "
        "divide by the rank count"
    ]
    assert "rank 0 exited with code 2" in output
    assert "Traceback" not in output
