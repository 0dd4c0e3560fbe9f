"""Live prefill progress and truthful numbers from the engine (a tiny random model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Chunk, Message, Progress, SamplingParams

LONG = "The quick brown fox jumps over the lazy dog. " * 30


@pytest.fixture(scope="module")
def engine(tiny_llama: Path) -> Engine:
    """Progress at every prefill step of 16 tokens."""
    engine = Engine(progress_interval=0.0, prefill_step_size=16)
    engine.load_sync(str(tiny_llama))
    return engine


def test_prefill_reports_progress_step_by_step(engine: Engine) -> None:
    events = list(engine.iterate(LONG, SamplingParams(max_tokens=4)))
    prefill = [e for e in events if isinstance(e, Progress) and e.phase == "prefill"]
    total = prefill[0].prompt_total
    assert total > 100
    done = [e.prompt_done for e in prefill]
    steps = [b - a for a, b in zip(done, done[1:], strict=False)]
    assert done[0] == 0 and done[-1] == total - 1  # the last token goes with the first step
    assert len(steps) >= total // 16 and all(0 < step <= 16 for step in steps)
    assert all(e.prompt_total == total for e in prefill)
    assert all(e.stats.context_tokens == total for e in prefill)  # what the request holds
    assert all(e.stats.prompt_tokens == e.prompt_done for e in prefill)
    assert all(e.stats.prompt_tps > 0 for e in prefill[1:])
    assert all(e.stats.active_memory > 0 for e in prefill)


def test_every_chunk_carries_memory_and_no_first_token_speed(engine: Engine) -> None:
    events = engine.iterate("Hello", SamplingParams(max_tokens=6))
    chunks = [e for e in events if isinstance(e, Chunk)]
    assert all(c.stats.active_memory > 0 and c.stats.peak_memory > 0 for c in chunks)
    assert chunks[0].stats.generation_tokens == 1
    assert chunks[0].stats.generation_tps == 0  # one token: no time to measure a speed over
    assert chunks[-1].stats.generation_tps > 0


def test_context_during_prefill_is_the_whole_prompt(engine: Engine) -> None:
    messages = [Message("user", LONG), Message("assistant", "Yes."), Message("user", "More?")]
    session = "context"
    list(engine.iterate(messages[:1], SamplingParams(max_tokens=2), session=session))
    events = list(engine.iterate(messages, SamplingParams(max_tokens=2), session=session))
    first = next(e for e in events if isinstance(e, Progress))
    last = [e for e in events if isinstance(e, Chunk)][-1]
    assert first.prompt_total < 30  # only the new turns are prefilled ...
    assert first.stats.context_tokens > 300  # ... but the context holds the whole chat
    assert last.stats.context_tokens >= first.stats.context_tokens


def test_prefill_steps_are_small_on_the_reference_blas(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlxchat.engine import blas, cpu
    from mlxchat.engine.generation import (
        PREFILL_STEP_SIZE,
        SLOW_PREFILL_STEP_SIZE,
        default_prefill_step_size,
    )

    slow = not blas.load().is_openblas and cpu.on_cpu()
    assert default_prefill_step_size() == (SLOW_PREFILL_STEP_SIZE if slow else PREFILL_STEP_SIZE)
    monkeypatch.setenv(cpu.ENV_SWITCH, "0")  # the plain path on purpose: the usual step
    assert default_prefill_step_size() == PREFILL_STEP_SIZE


async def test_a_request_cancelled_during_prefill_frees_the_engine_within_a_step(
    engine: Engine,
) -> None:
    session = "cancelled-prefill"
    params = SamplingParams(max_tokens=8)
    stream = engine.stream(LONG * 4, params, session=session)
    events = []
    async for event in stream:
        events.append(event)
        if isinstance(event, Progress) and event.phase == "prefill" and event.prompt_done >= 32:
            stream.cancel()
    prefill = [e for e in events if isinstance(e, Progress) and e.phase == "prefill"]
    chunks = [e for e in events if isinstance(e, Chunk)]
    assert prefill[-1].prompt_done < prefill[-1].prompt_total // 2  # stopped within a step
    assert [(c.text, c.finish_reason) for c in chunks] == [("", "cancelled")]
    # the session's cache holds a consistent prefix: the next answer is a fresh one's
    again = await engine.generate("Hello", params, session=session)
    fresh = await engine.generate("Hello", params)
    assert again.tokens == fresh.tokens
