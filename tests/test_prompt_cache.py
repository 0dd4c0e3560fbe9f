"""The prompt cache with many entries, on the real engine and a tiny model: conversations
taking turns each find their own prefix, entries are evicted under the byte budget, and an
answer from a reused (or copied) cache is the answer of a fresh one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Message, SamplingParams

GREEDY = SamplingParams(max_tokens=12)
SYSTEM = Message("system", "You are a helpful assistant. " * 8)


def turn(history: list[Message], text: str) -> list[Message]:
    return [*history, Message("user", text)]


@pytest.fixture
def engine(tiny_llama: Path) -> Iterator[Engine]:
    engine = Engine()
    engine.load_sync(str(tiny_llama))
    yield engine
    engine.close()


def answer(engine: Engine, messages: list[Message]) -> tuple[list[int], int, str]:
    result = engine.generate_sync(messages, GREEDY)
    return result.tokens, result.stats.cached_tokens, result.text


def test_two_conversations_taking_turns_each_reuse_their_own_prefix(
    engine: Engine, tiny_llama: Path
) -> None:
    a1 = turn([SYSTEM], "Tell me about the sea and the waves " * 6)
    b1 = turn([SYSTEM], "Tell me about numbers " * 6)
    _, _, text_a = answer(engine, a1)
    _, _, text_b = answer(engine, b1)
    a2 = turn([*a1, Message("assistant", text_a)], "And the tides?")
    b2 = turn([*b1, Message("assistant", text_b)], "And zero?")
    tokens_a2, cached_a2, _ = answer(engine, a2)
    tokens_b2, cached_b2, _ = answer(engine, b2)
    a1_length = engine.generate_sync(a1, SamplingParams(max_tokens=1)).stats.prompt_tokens
    # each second turn found its own first turn, not only the shared system prompt
    assert cached_a2 >= a1_length - 4 and cached_b2 > cached_a2 / 2
    assert engine.prompt_cache_report()["entries"] >= 2  # type: ignore[index]
    fresh = Engine()
    fresh.load_sync(str(tiny_llama))
    try:  # the same greedy tokens as with no cache at all (a copied prefix included)
        assert answer(fresh, a2)[0] == tokens_a2
        fresh.close()
        fresh = Engine()
        fresh.load_sync(str(tiny_llama))
        assert answer(fresh, b2)[0] == tokens_b2
    finally:
        fresh.close()


def test_entries_are_evicted_under_the_byte_budget(tiny_llama: Path) -> None:
    prompts = [turn([], f"{word} " * 60) for word in ("apple", "river", "stone", "cloud")]
    probe = Engine()
    probe.load_sync(str(tiny_llama))
    answer(probe, prompts[0])
    one_entry = probe.prompt_cache_report()["bytes"]  # type: ignore[index]
    probe.close()
    engine = Engine(prompt_cache_bytes=int(one_entry * 2.5))  # room for two entries
    engine.load_sync(str(tiny_llama))
    try:
        for prompt in prompts:
            answer(engine, prompt)
            report = engine.prompt_cache_report()
            assert report is not None and report["bytes"] <= report["budget"]
        assert engine.prompt_cache_report()["entries"] == 2  # type: ignore[index]
        assert answer(engine, prompts[0])[1] < 10  # evicted: only the template head is shared
        assert answer(engine, prompts[0])[1] > 50  # and now cached
    finally:
        engine.close()


def test_a_named_session_is_its_own_entry(engine: Engine) -> None:
    chat = turn([SYSTEM], "Hello there " * 5)
    first = engine.generate_sync(chat, GREEDY, session="chat-1")
    again = engine.generate_sync(chat, GREEDY, session="chat-1")
    assert again.stats.cached_tokens >= first.stats.prompt_tokens - 1
    assert again.tokens == first.tokens


def test_health_reports_the_prompt_cache(engine: Engine) -> None:
    import httpx
    from server_helpers import running_server

    from mlxchat.server.state import ServerConfig

    with running_server(engine, ServerConfig()) as url:
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30).raise_for_status()
        cache = httpx.get(f"{url}/health").json()["prompt_cache"]
    assert cache["entries"] == 1 and 0 < cache["bytes"] <= cache["budget"]
