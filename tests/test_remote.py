"""The remote engine against REAL servers on loopback: mlx-lm's `mlx_lm.server` on the demo
model, `mlxchat serve` (when installed), a closed port, a key-checking server, a server
killed mid-answer. What users see: the answer, exit codes, one error line, the status bar."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_CACHE
from servers import free_port, key_server, mlx_lm_server, server_process
from test_cli import assert_one_line_error, mlxchat
from ui.helpers import SIZE, ready, send, shown, type_text, until

from mlxchat.config import Settings
from mlxchat.engine.remote import RemoteEngine
from mlxchat.engine.types import Chunk, Message, SamplingParams
from mlxchat.ui.app import ChatApp

pytestmark = pytest.mark.demo
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def demo_dir() -> Path:
    """The demo model's MLX directory (converted once into the test cache)."""
    os.environ["MLXCHAT_CACHE_DIR"] = str(TEST_CACHE)
    from mlxchat.models.demo import ensure_demo

    return ensure_demo()


@pytest.fixture(scope="module")
def served(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlx_lm.server` on the demo model; yields its base URL."""
    with mlx_lm_server(demo_dir, tmp_path_factory.mktemp("hf")) as (_, url):
        yield url


def test_generate_answers_through_mlx_lm_server(served: str) -> None:
    proc = mlxchat("generate", "-m", served, "-p", QUESTION, "--max-tokens", "12", "-v")
    assert proc.returncode == 0, proc.stderr
    assert "Paris" in proc.stdout
    assert "TTFT" in proc.stderr and "GB" not in proc.stderr  # no memory figure from afar


def test_refused_connection_is_one_line() -> None:
    port = free_port()
    proc = mlxchat("generate", "-m", f"http://127.0.0.1:{port}/v1", "-p", "Hi")
    assert_one_line_error(proc, f"cannot connect to 127.0.0.1:{port} (Connection refused)")


def test_wrong_key_is_one_line() -> None:
    with key_server() as url:
        proc = mlxchat("generate", "-m", url, "-p", "Hi", "--api-key", "wrong-key")
    assert_one_line_error(proc, "refused the API key (HTTP 401)")


def test_unknown_model_is_one_line(served: str) -> None:
    proc = mlxchat("generate", "-m", served, "--remote-model", "no-such-model", "-p", "Hi")
    assert_one_line_error(proc, "has no model 'no-such-model'")


def test_server_killed_mid_answer_keeps_the_partial_answer(demo_dir: Path, tmp_path: Path):
    with mlx_lm_server(demo_dir, tmp_path / "hf") as (server, url):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlxchat", "generate", "-m", url, "--max-tokens", "2000"]
            + ["-p", "Write a very long story about a dragon and a knight."],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = proc.stdout.read(1)  # the answer has started
        server.kill()
        rest, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    assert (first + rest).strip()
    assert "the answer above is incomplete" in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1


def test_translate_on_a_server_is_naive_wait_k_with_metrics(served: str) -> None:
    proc = mlxchat(
        "translate", "--plain", "-v", "-m", served, "-k", "2", "--max-new-words", "4",
        stdin="The cat sat on the mat.\n",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "naive re-encode, one completion request per target word" in proc.stderr
    delays = [int(d) for d in re.findall(r"\[read (\d+) source words\]", proc.stdout)]
    assert 1 <= len(delays) <= 4 and delays[0] >= 2 and delays == sorted(delays)
    assert re.search(r"-- AL [\d.]+  LAAL [\d.]+  AP [\d.]+  DAL [\d.]+", proc.stdout)


async def test_chat_streams_from_the_server_and_names_the_host(served: str) -> None:
    engine = RemoteEngine()
    settings = Settings(model=served, theme="mlxchat-dark", temp=0.0, max_tokens=12)
    app = ChatApp(engine, settings, None, list_models=lambda: [])
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await type_text(pilot, QUESTION)
        await pilot.press("enter")
        await until(pilot, lambda: screen.answering)
        await until(pilot, lambda: not screen.answering, timeout=120)
        user, answer = screen.conversation.messages
        assert "Paris" in answer.source
        status = str(screen.status.render())
        assert f"@ {served.split('/')[2]}" in status and "tok/s" in status
    engine.close()


async def test_tui_refused_connection_is_a_notice_and_the_app_goes_on() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(model=url, theme="mlxchat-dark")
    app = ChatApp(RemoteEngine(), settings, None, list_models=lambda: [])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: any("cannot connect" in n.message for n in app._notifications))
        assert any(n.startswith("Model not loaded: cannot connect") for n in await shown(pilot))
        screen = await send(pilot, "/help")  # still running, still answering commands
        assert not screen.answering


async def test_tui_server_killed_mid_answer_keeps_it_marked_failed(demo_dir: Path, tmp_path):
    with mlx_lm_server(demo_dir, tmp_path / "hf") as (server, url):
        settings = Settings(model=url, theme="mlxchat-dark", max_tokens=2000)
        app = ChatApp(RemoteEngine(), settings, None, list_models=lambda: [])
        async with app.run_test(size=SIZE) as pilot:
            screen = await ready(pilot)
            await type_text(pilot, "Write a very long story about a dragon.")
            await pilot.press("enter")
            await until(pilot, lambda: screen.answering)
            await until(pilot, lambda: screen.status.state == "generating", timeout=120)
            server.kill()
            await until(pilot, lambda: not screen.answering, timeout=60)
            _, answer = screen.conversation.messages
            assert answer.source.strip()  # the partial answer stays
            assert "closed the stream" in answer.header_text or "broke" in answer.header_text
            assert any(n.startswith("Answer failed: ") for n in await shown(pilot))


async def test_cancel_closes_the_stream_and_the_server_serves_on(served: str) -> None:
    engine = RemoteEngine()
    await engine.load(served)
    prompt = [Message("user", "Write a very long story about a dragon.")]
    stream = engine.stream(prompt, SamplingParams(max_tokens=2000))
    events = []
    async for event in stream:
        events.append(event)
        if isinstance(event, Chunk) and event.text:
            stream.cancel()  # what Esc does
    assert events[-1].finish_reason == "cancelled"
    assert len([e for e in events if isinstance(e, Chunk) and e.text]) <= 3
    answer = "".join([e.text async for e in engine.stream(QUESTION) if isinstance(e, Chunk)])
    assert "Paris" in answer
    engine.close()


def test_remote_engine_against_mlxchat_serve(demo_dir: Path) -> None:
    pytest.importorskip("mlxchat.server", reason="mlxchat serve is not installed")
    port = free_port()
    args = ["-m", "mlxchat", "serve", "--model", "demo", "--host", "127.0.0.1"]
    with server_process([*args, "--port", str(port), "--api-key", "k"], port, key="k") as (_, url):
        good = mlxchat(
            "generate", "-m", url, "-p", QUESTION, "--max-tokens", "12", "--api-key", "k"
        )
        assert good.returncode == 0, good.stderr
        assert "Paris" in good.stdout
        bad = mlxchat("generate", "-m", url, "-p", "Hi", "--api-key", "wrong-key")
        assert_one_line_error(bad, "refused the API key")
