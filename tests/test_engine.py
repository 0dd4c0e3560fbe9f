"""The engine on a tiny random model: streaming, async behaviour, cancel, sessions, errors."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mlxchat.engine.engine import Engine
from mlxchat.engine.types import (
    Chunk,
    EngineError,
    Message,
    ModelLoadError,
    Progress,
    SamplingParams,
)

GREEDY = SamplingParams(max_tokens=24)


@pytest.fixture(scope="module")
def engine(tiny_endless: Path) -> Engine:
    """A tiny model that never stops by itself, so long generations can be interrupted."""
    engine = Engine(progress_interval=0.01)
    engine.load_sync(str(tiny_endless))
    return engine


def chunks_of(events: list[object]) -> list[Chunk]:
    return [e for e in events if isinstance(e, Chunk)]


def test_generate_is_the_stream_joined(engine: Engine) -> None:
    events = list(engine.iterate("Tell me about the fox.", GREEDY))
    chunks = chunks_of(events)
    result = engine.generate_sync("Tell me about the fox.", GREEDY)
    assert result.text == "".join(c.text for c in chunks)
    assert len(result.text) > 10
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason in ("stop", "length")
    last = chunks[-1].stats
    assert last.generation_tokens == len(result.tokens) <= GREEDY.max_tokens
    assert last.prompt_tokens > 5 and last.prompt_tps > 0 and last.generation_tps > 0
    assert last.ttft > 0 and last.peak_memory > 0


async def test_event_loop_keeps_ticking_during_generation(engine: Engine) -> None:
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.05)

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    result = await engine.generate("Count with me.", SamplingParams(max_tokens=1500))
    elapsed = time.perf_counter() - start
    task.cancel()
    assert result.stats.generation_tokens > 100
    assert elapsed > 0.3, "generation too short to show anything"
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) >= elapsed * 20 * 0.6
    assert max(gaps) < 0.25


async def test_concurrent_requests_each_get_their_own_answer(engine: Engine) -> None:
    prompts = [f"Question number {i}: what is {i} plus {i}?" for i in range(4)]
    alone = [(await engine.generate(p, GREEDY)).text for p in prompts]
    together = await asyncio.gather(*(engine.generate(p, GREEDY) for p in prompts))
    assert [r.text for r in together] == alone
    assert len(set(alone)) > 1


async def test_cancel_stops_within_one_token_and_engine_stays_usable(engine: Engine) -> None:
    stream = engine.stream("Go on and on.", SamplingParams(max_tokens=2000))
    seen: list[Chunk] = []
    async for event in stream:
        if isinstance(event, Chunk):
            seen.append(event)
            if len(seen) == 5:
                cancelled_at = time.perf_counter()
                stream.cancel()
    assert seen[-1].finish_reason == "cancelled"
    assert len([c for c in seen if c.created > cancelled_at]) <= 2  # see test_engine_cancel_call
    after = await engine.generate("Tell me about the fox.", GREEDY)
    assert after.text == engine.generate_sync("Tell me about the fox.", GREEDY).text


async def test_breaking_out_of_the_loop_cancels(engine: Engine) -> None:
    stream = engine.stream("Go on and on.", SamplingParams(max_tokens=5000))
    count = 0
    async for event in stream:
        count += isinstance(event, Chunk)
        if count == 3:
            break
    await stream.aclose()
    start = time.perf_counter()
    await engine.generate("Quick one.", SamplingParams(max_tokens=2))
    assert time.perf_counter() - start < 2, "the abandoned request kept the engine busy"


async def test_cancelling_the_task_cancels_the_request(engine: Engine) -> None:
    got: list[Chunk] = []

    async def consume() -> None:
        async for event in engine.stream("Go on and on.", SamplingParams(max_tokens=5000)):
            if isinstance(event, Chunk):
                got.append(event)

    task = asyncio.create_task(consume())
    while len(got) < 3:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await asyncio.wait_for(engine.generate("Quick.", SamplingParams(max_tokens=2)), 5)
    assert result.finish_reason in ("stop", "length")


def test_engine_cancel_call(engine: Engine) -> None:
    events = engine.iterate("Go on and on.", SamplingParams(max_tokens=5000))
    chunks = []
    cancelled_at = None
    for event in events:
        if isinstance(event, Chunk):
            chunks.append(event)
            if len(chunks) == 4:
                cancelled_at = time.perf_counter()
                engine.cancel()
    assert chunks[-1].finish_reason == "cancelled"
    # The engine may run ahead of a slow consumer; count what it made after the cancel call:
    # the token in progress and the final (cancelled) chunk at most.
    assert len([c for c in chunks if c.created > cancelled_at]) <= 2
    assert chunks[-1].stats.generation_tokens < 5000


def test_progress_events_are_throttled(engine: Engine) -> None:
    events = list(engine.iterate("Go on.", SamplingParams(max_tokens=600)))
    progress = [e for e in events if isinstance(e, Progress)]
    chunks = chunks_of(events)
    assert progress, "no progress events"
    assert len(progress) < len(chunks) / 2
    assert all(p.stats.generation_tokens <= chunks[-1].stats.generation_tokens for p in progress)


def test_seed_makes_sampling_reproducible(engine: Engine) -> None:
    params = SamplingParams(temp=1.0, top_p=0.9, top_k=50, seed=7, max_tokens=20)
    first = engine.generate_sync("Say something.", params).text
    second = engine.generate_sync("Say something.", params).text
    other = engine.generate_sync("Say something.", SamplingParams(temp=1.0, seed=8, max_tokens=20))
    assert first == second
    assert other.text != first


def test_stop_string_ends_the_answer_before_it(engine: Engine) -> None:
    full = engine.generate_sync("Tell me about the fox.", SamplingParams(max_tokens=40)).text
    stop = full[12:15]
    cut = engine.generate_sync(
        "Tell me about the fox.", SamplingParams(max_tokens=40, stop=(stop,))
    )
    assert cut.finish_reason == "stop"
    assert cut.text == full[: full.index(stop)]


def test_session_prefills_only_new_tokens_and_stays_correct(engine: Engine) -> None:
    turn1 = [Message("system", "Be brief."), Message("user", "What is the capital of France?")]
    first = engine.generate_sync(turn1, GREEDY, session="chat")
    turn2 = [*turn1, Message("assistant", first.text), Message("user", "And of Italy?")]
    full_length = asyncio.run(engine.count_tokens(turn2))
    second = engine.generate_sync(turn2, GREEDY, session="chat")
    assert first.stats.prompt_tokens == asyncio.run(engine.count_tokens(turn1))
    assert second.stats.prompt_tokens < full_length - first.stats.prompt_tokens
    assert second.text == engine.generate_sync(turn2, GREEDY).text  # same as a fresh cache


def test_regenerating_the_last_turn_reuses_the_cache(engine: Engine) -> None:
    turn = [Message("user", "Tell me a story about a cat.")]
    first = engine.generate_sync(turn, GREEDY, session="retry")
    again = engine.generate_sync(turn, GREEDY, session="retry")
    assert again.text == first.text
    assert again.stats.prompt_tokens == 1  # everything but the last prompt token was reused


def test_cancelled_turn_leaves_the_session_consistent(engine: Engine) -> None:
    turn = [Message("user", "Tell me a story about a dog.")]
    events = engine.iterate(turn, SamplingParams(max_tokens=500), session="cancelled")
    chunks: list[Chunk] = []
    for event in events:
        if isinstance(event, Chunk):
            chunks.append(event)
            if len(chunks) == 4:
                engine.cancel()
    partial = "".join(c.text for c in chunks)
    assert chunks[-1].finish_reason == "cancelled"
    follow = [*turn, Message("assistant", partial), Message("user", "Go on.")]
    assert (
        engine.generate_sync(follow, GREEDY, session="cancelled").text
        == engine.generate_sync(follow, GREEDY).text
    )


def test_context_limit_drops_oldest_turns(engine: Engine) -> None:
    history: list[Message] = []
    for i in range(12):
        history += [Message("user", f"Message {i} about foxes."), Message("assistant", "Yes.")]
    history.append(Message("user", "Last question?"))
    result = engine.generate_sync(history, SamplingParams(max_tokens=8), max_context=120)
    assert result.stats.dropped_messages > 0
    assert result.stats.context_limit == 120
    assert result.stats.prompt_tokens + 8 <= 120


def test_message_longer_than_the_context_is_an_error(engine: Engine) -> None:
    huge = [Message("user", "fox " * 400)]
    with pytest.raises(EngineError, match="more than the context of 100"):
        engine.generate_sync(huge, GREEDY, max_context=100)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (SamplingParams(max_tokens=0), "'max_tokens' must be a whole number ≥ 1, got 0"),
        (SamplingParams(temp=-1), "'temp' must be a number from 0 to 5, got -1"),
        (SamplingParams(top_p=2), "'top_p' must be a number from 0 to 1, got 2"),
    ],
)
def test_bad_settings_are_clear_errors(
    engine: Engine, params: SamplingParams, message: str
) -> None:
    with pytest.raises(EngineError, match=message):
        engine.generate_sync("hi", params)


def test_empty_prompt_is_an_error(engine: Engine) -> None:
    with pytest.raises(EngineError, match="empty"):
        engine.generate_sync("   ", GREEDY)


def test_failed_load_keeps_the_previous_model(tiny_llama: Path, tmp_path: Path) -> None:
    engine = Engine()
    engine.load_sync(str(tiny_llama))
    before = engine.generate_sync("Tell me about the fox.", GREEDY).text
    with pytest.raises(ModelLoadError, match="does-not-exist"):
        engine.load_sync(str(tmp_path / "does-not-exist"))
    assert engine.model_info is not None and engine.model_info.name == str(tiny_llama)
    assert engine.generate_sync("Tell me about the fox.", GREEDY).text == before


def test_switching_models_changes_the_answers(tiny_llama: Path, tiny_qwen: Path) -> None:
    engine = Engine()
    engine.load_sync(str(tiny_llama))
    llama = engine.generate_sync("Tell me about the fox.", GREEDY).text
    info = engine.load_sync(str(tiny_qwen))
    assert info.name == str(tiny_qwen)
    assert engine.generate_sync("Tell me about the fox.", GREEDY).text != llama


def test_generating_without_a_model_is_an_error() -> None:
    with pytest.raises(EngineError, match="no model is loaded"):
        Engine().generate_sync("hi", GREEDY)
