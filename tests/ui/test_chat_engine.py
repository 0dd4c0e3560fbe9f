"""The chat app on the REAL engine with tiny random models (loaded in milliseconds).

What reaches the screen (the Markdown source of each message), the status bar and the rows
in the history database are checked against what the engine generated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Message, SamplingParams
from mlxchat.store.history import History
from mlxchat.text import sanitize
from mlxchat.ui.app import ChatApp

from .helpers import SIZE, model_settled, ready, send, shown, until


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """One real engine for the module (each app loads its model into it)."""
    engine = Engine(progress_interval=0.05)
    yield engine
    engine.cancel()


@pytest.fixture(scope="module")
def looping_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose greedy answer to "Hello" never ends (it loops until the limit)."""
    from tiny_models import make_tiny_model  # tests/ is on sys.path (tests/conftest.py)

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-looping", seed=2)


@pytest.fixture
def tiny_settings(tiny_llama: Path) -> Settings:
    """Greedy settings on the tiny llama model."""
    return Settings(model=str(tiny_llama), theme="mlxchat-dark", temp=0.0, max_tokens=64)


def rows(history: History, conversation_id: int) -> list[tuple[str, str, str | None, str | None]]:
    with sqlite3.connect(history.path) as conn:
        return list(
            conn.execute(
                "SELECT role, content, finish_reason, model FROM messages"
                " WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            )
        )


def make(engine: Engine, settings: Settings, history: History, **kw) -> ChatApp:
    return ChatApp(engine, settings, history, list_models=lambda: [], **kw)


async def test_answer_streams_from_the_real_model(engine, tiny_settings, history) -> None:
    await engine.load(tiny_settings.model)
    expected = await engine.generate(
        [Message("user", "Hello")], SamplingParams(temp=0.0, max_tokens=64)
    )
    app = make(engine, tiny_settings, history)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert screen.status.model == str(tiny_settings.model)
        await send(pilot, "Hello")
        user, answer = screen.conversation.messages
        assert user.source == "Hello"
        assert answer.text == expected.text  # greedy: the same tokens as a plain generate
        assert answer.source == sanitize(expected.text)  # control characters escaped
        assert "tok/s" in answer.header_text
        status = str(screen.status.render())
        assert f"{expected.stats.generation_tokens} tok" in status and "ctx" in status
        assert screen.status.stats.generation_tokens == expected.stats.generation_tokens
        saved = rows(history, screen.chat.conversation_id)
        assert saved == [
            ("user", "Hello", None, None),
            ("assistant", expected.text, expected.finish_reason, str(tiny_settings.model)),
        ]


async def test_escape_stops_the_real_model(engine, tiny_settings, looping_model, history) -> None:
    settings = replace(tiny_settings, model=str(looping_model), max_tokens=100_000)
    app = make(engine, settings, history)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hello", wait=False)
        await until(pilot, lambda: len(screen.conversation.messages[-1].text) > 10)
        await pilot.press("escape")
        await until(pilot, lambda: not screen.answering, timeout=5)
        answer = screen.conversation.messages[-1]
        assert answer.status == "stopped"
        assert "stopped" in answer.header_text
        role, content, finish, _ = rows(history, screen.chat.conversation_id)[-1]
        assert (role, finish) == ("assistant", "cancelled")
        assert content == answer.text and content
        assert 0 < screen.status.stats.generation_tokens < 100_000
        # the app goes on: another answer comes
        assert await screen.submit("/max-tokens 20")
        await send(pilot, "Again")
        assert rows(history, screen.chat.conversation_id)[-1][0] == "assistant"


async def test_retry_regenerates_with_the_cache(engine, tiny_settings, history) -> None:
    app = make(engine, tiny_settings, history)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Numbers: 0 1 2 3")
        first = screen.conversation.messages[-1].text
        await send(pilot, "/retry")
        await until(pilot, lambda: not screen.answering)
        await pilot.pause()
        views = screen.conversation.messages
        assert len(views) == 2
        assert views[-1].text == first  # greedy: the same answer again
        saved = rows(history, screen.chat.conversation_id)
        assert [r[0] for r in saved] == ["user", "assistant", "assistant"]  # both versions
        # the second request reused the cached prompt: only a few new tokens were prefilled
        assert screen.status.stats.prompt_tokens < 8


async def test_switch_model_keeps_the_conversation(
    engine, tiny_settings, tiny_qwen, history
) -> None:
    app = make(engine, tiny_settings, history)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hello")
        await send(pilot, f"/model {tiny_qwen}")
        await until(pilot, lambda: model_settled(screen))
        assert engine.model_info.name == str(tiny_qwen)
        assert screen.status.model == str(tiny_qwen)
        await send(pilot, "And you?")
        answer = screen.conversation.messages[-1]
        assert answer.label == str(tiny_qwen)
        assert len(screen.chat.turns) == 4
        saved = rows(history, screen.chat.conversation_id)
        assert saved[-1][3] == str(tiny_qwen) and saved[1][3] == str(tiny_settings.model)


async def test_missing_model_keeps_the_old_one(engine, tiny_settings, history, tmp_path) -> None:
    app = make(engine, tiny_settings, history)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, f"/model {tmp_path / 'no-such-model'}")
        await until(pilot, lambda: model_settled(screen), timeout=20)
        assert any("Model not loaded" in n for n in await shown(pilot))
        assert engine.model_info.name == str(tiny_settings.model)
        assert screen.status.model == str(tiny_settings.model)
        await send(pilot, "Still there?")
        assert screen.conversation.messages[-1].text


async def test_bad_commands_send_nothing_to_the_model(engine, tiny_settings, history) -> None:
    app = make(engine, tiny_settings, history)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        for command in ("/temp hot", "/max-tokens -1", "/nope"):
            assert not await screen.submit(command)
        notes = await shown(pilot)
        assert any("usage: /temp X" in n for n in notes)
        assert any("usage: /max-tokens N" in n for n in notes)
        assert any("Unknown command /nope" in n for n in notes)
        assert screen.conversation.messages == []
        assert history.list_conversations() == []


async def test_history_is_saved_and_resumed(engine, tiny_settings, history) -> None:
    app = make(engine, tiny_settings, history)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hello")
        cid = screen.chat.conversation_id
        first_answer = screen.conversation.messages[-1].text
    resumed = make(engine, tiny_settings, history, resume=cid)
    async with resumed.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await until(pilot, lambda: len(screen.conversation.messages) == 2)
        assert screen.conversation.messages[-1].text == first_answer
        await send(pilot, "More")
        assert len(rows(history, cid)) == 4
