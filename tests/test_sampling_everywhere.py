"""One sampling rule at every entry point: the chat, `generate`, `translate`, and the
server's HTTP, WebSocket chat and WebSocket translation.

A tiny model whose own generation_config.json sets a strong repetition penalty answers
differently with and without it (checked first, so the table can fail). Each entry point
is run for real and must give the answer of `config.effective_sampling`: the request's
values over the config over the model's defaults.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from server_helpers import running_server
from test_cli import mlxchat
from websockets.asyncio.client import connect

from mlxchat.config import Settings, effective_sampling
from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Message, SamplingParams
from mlxchat.server.state import ServerConfig
from mlxchat.store.history import History
from mlxchat.text import sanitize
from mlxchat.translate.settings import WaitKSettings
from mlxchat.translate.translation import open_translation
from mlxchat.ui.app import ChatApp

PENALTY = {"repetition_penalty": 1.8}
MAX_TOKENS = 24
SOURCE = ["The", "cat", "is", "on", "the", "table."]
TRANSLATE = {"wait_k": 2, "max_new_words": 8, "max_tokens_per_word": 8}


@pytest.fixture(scope="module")
def penalised(tiny_endless: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tiny_endless` (its answers repeat), its generation_config.json setting a penalty."""
    path = tmp_path_factory.mktemp("models") / "penalised"
    shutil.copytree(tiny_endless, path)
    (path / "generation_config.json").write_text(json.dumps(PENALTY))
    return path


@pytest.fixture(scope="module")
def engine(penalised: Path) -> Iterator[Engine]:
    engine = Engine()
    info = engine.load_sync(str(penalised))
    assert dict(info.sampling_defaults) == PENALTY
    yield engine
    engine.close()


def expected_params(request: dict[str, Any]) -> SamplingParams:
    return effective_sampling(Settings(), PENALTY, request)


def answer(engine: Engine, params: SamplingParams) -> str:
    return engine.generate_sync([Message("user", "Hello")], params).text


def translation(engine: Engine, sampling: SamplingParams) -> str:
    settings = WaitKSettings.from_values(TRANSLATE)
    live = open_translation(
        engine, WaitKSettings(**{**settings.__dict__, "sampling": sampling}), auto_segment=False
    )
    events = [e for i, w in enumerate(SOURCE) for e in live.feed_sync(w, last=i == len(SOURCE) - 1)]
    return " ".join(e.word for e in events if type(e).__name__ == "TargetWord")


# ----- the entry points ---------------------------------------------------------------------
def via_chat(engine: Engine, model: Path, url: str) -> str:
    async def run() -> str:
        settings = Settings(model=str(model), max_tokens=MAX_TOKENS)
        history = History.in_memory("")
        app = ChatApp(engine, settings, history, list_models=lambda: [])
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.chat_screen
            for _ in range(400):
                await pilot.pause(0.02)
                if engine.model_info is not None and screen.status.state == "idle":
                    break
            screen.prompt.insert("Hello")
            await pilot.press("enter")
            for _ in range(1000):
                await pilot.pause(0.02)
                if len(screen.conversation.messages) == 2 and not screen.answering:
                    break
            return screen.conversation.messages[-1].text

    return asyncio.run(run())


def via_generate(engine: Engine, model: Path, url: str) -> str:
    done = mlxchat("generate", "-m", str(model), "-p", "Hello", "--max-tokens", str(MAX_TOKENS))
    assert done.returncode == 0, done.stderr
    return done.stdout


def via_http(engine: Engine, model: Path, url: str) -> str:
    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    reply = client.chat.completions.create(
        model=str(model),
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=MAX_TOKENS,
    )
    return reply.choices[0].message.content or ""


def via_ws_chat(engine: Engine, model: Path, url: str) -> str:
    async def run() -> str:
        async with connect(url.replace("http", "ws") + "/v1/ws/chat") as ws:
            request = {"type": "chat.request", "id": "1", "max_tokens": MAX_TOKENS}
            messages = [{"role": "user", "content": "Hello"}]
            await ws.send(json.dumps(request | {"messages": messages}))
            text = ""
            while (event := json.loads(await ws.recv()))["type"] != "chat.done":
                assert event["type"] != "error", event
                text += event.get("delta", "") if event["type"] == "chat.delta" else ""
            return text

    return asyncio.run(run())


def via_translate_cli(engine: Engine, model: Path, url: str) -> str:
    source = model.parent / "source.txt"
    source.write_text(" ".join(SOURCE) + "\n")
    options = [f"--{k.replace('_', '-')}={v}" for k, v in TRANSLATE.items()]
    done = mlxchat("translate", "--json", "-m", str(model), "-i", str(source), *options)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    return " ".join(e["word"] for e in events if e["type"] == "target")


def via_ws_translate(engine: Engine, model: Path, url: str) -> str:
    async def run() -> str:
        async with connect(url.replace("http", "ws") + "/v1/ws/translate") as ws:
            await ws.send(json.dumps({"type": "session.start"} | TRANSLATE))
            for i, word in enumerate(SOURCE):
                await ws.send(json.dumps({"type": "source.append", "text": word + " "}))
                if i == len(SOURCE) - 1:
                    await ws.send(json.dumps({"type": "source.end"}))
            words = []
            while (event := json.loads(await ws.recv()))["type"] != "segment.done":
                assert event["type"] != "error", event
                if event["type"] == "target.word":
                    words.append(event["text"])
            return " ".join(words)

    return asyncio.run(run())


ANSWERS: dict[str, Callable[[Engine, Path, str], str]] = {
    "chat": via_chat,
    "generate": via_generate,
    "serve HTTP": via_http,
    "WS chat": via_ws_chat,
}
TRANSLATIONS: dict[str, Callable[[Engine, Path, str], str]] = {
    "translate": via_translate_cli,
    "WS translate": via_ws_translate,
}


PRINTED = {"generate"}
"""Entry points that print the text (control characters escaped, as users see them)."""


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[str]:
    with running_server(engine, ServerConfig()) as url:
        yield url


@pytest.mark.parametrize("entry", [*ANSWERS, *TRANSLATIONS])
def test_every_entry_point_samples_with_the_models_defaults(
    entry: str, engine: Engine, penalised: Path, server: str
) -> None:
    if entry in ANSWERS:
        wanted = answer(engine, expected_params({"max_tokens": MAX_TOKENS}))
        plain = answer(engine, SamplingParams(max_tokens=MAX_TOKENS))
        got = ANSWERS[entry](engine, penalised, server)
    else:
        wanted = translation(engine, expected_params({}))
        plain = translation(engine, SamplingParams(temp=0.0))
        got = TRANSLATIONS[entry](engine, penalised, server)
    assert wanted != plain, "the penalty must change the output, or this test tests nothing"
    if entry in PRINTED:
        wanted = sanitize(wanted)
    assert got.split() == wanted.split(), f"{entry} did not use the model's defaults"
