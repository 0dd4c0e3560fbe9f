"""A long prompt does not hold up the rest of the batch: a short request admitted while a
long prompt is prefilled gets its answer between the long prompt's chunks (counted in
batch steps, not seconds), and both answers are the ones they get alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlxchat.engine.batching import Batch
from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Chunk, Message, Progress, SamplingParams

STEP = 32
LONG = " ".join(f"word{i % 50} and more" for i in range(110))  # about 1,500 tokens


@pytest.fixture(scope="module")
def engine(tiny_endless: Path) -> Iterator[Engine]:
    engine = Engine(progress_interval=0.0, prefill_step_size=STEP)
    engine.load_sync(str(tiny_endless))
    yield engine
    engine.close()


@dataclass
class Steps:
    """Batch steps counted on the engine thread: the count, and per request (by its
    prompt's first word) the step it was admitted in and the step its first token came in."""

    now: int = 0
    admitted: dict[str, int] = field(default_factory=dict)
    first_token: dict[str, int] = field(default_factory=dict)
    jobs: dict[int, str] = field(default_factory=dict)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Steps:
    seen = Steps()
    step, admit, token = Batch.step, Batch.admit, Batch._token

    def counted(self: Batch) -> None:
        seen.now += 1
        step(self)

    def admitted(self: Batch, job: Any, request: Any) -> Any:
        name = request.prompt[-1].content.split()[0]
        seen.admitted[name], seen.jobs[id(job)] = seen.now, name
        return admit(self, job, request)

    def first(self: Batch, response: Any, row: Any, now: float) -> None:
        seen.first_token.setdefault(seen.jobs[id(row.job)], seen.now)
        token(self, response, row, now)

    monkeypatch.setattr(Batch, "step", counted)
    monkeypatch.setattr(Batch, "admit", admitted)
    monkeypatch.setattr(Batch, "_token", first)
    return seen


async def test_a_short_request_answers_during_a_long_prefill(engine: Engine, steps: Steps) -> None:
    params = SamplingParams(max_tokens=8)
    alone = engine.generate_sync([Message("user", "Hello there")], params).tokens
    long_alone = engine.generate_sync([Message("user", LONG)], params).tokens
    started = asyncio.Event()
    steps.admitted.clear()
    steps.first_token.clear()

    async def long() -> list[int]:
        tokens = []
        async for event in engine.stream([Message("user", "Once more: " + LONG)], params):
            if isinstance(event, Progress) and event.prompt_done >= 4 * STEP:
                started.set()  # the long prompt (new: nothing of it cached) is prefilling
            if isinstance(event, Chunk) and event.token is not None:
                tokens.append(event.token)
        return tokens

    async def short() -> list[int]:
        await started.wait()
        chunks = engine.stream([Message("user", "Hello there")], params)
        return [e.token async for e in chunks if isinstance(e, Chunk) and e.token is not None]

    long_tokens, short_tokens = await asyncio.wait_for(asyncio.gather(long(), short()), 600)
    assert short_tokens == alone
    assert len(long_tokens) == len(long_alone)
    # the short prompt's first token comes in the first step after it joined (before the
    # long prompt's next chunk), and its whole answer before the long prompt's first token
    assert steps.first_token["Hello"] - steps.admitted["Hello"] <= 1, steps
    assert steps.first_token["Hello"] + len(alone) < steps.first_token["Once"], steps


def test_a_step_plans_the_shortest_prompts_first_and_cuts_dear_chunks() -> None:
    from mlxchat.engine.prefill import Prefill, Prefiller

    prefiller = Prefiller(model=None, budget=256)
    long, short, done = Prefill([], list(range(5000))), Prefill([], [1] * 12), Prefill([], [])
    plan = prefiller.plan([long, done, short])
    assert [(p is short, size) for p, size in plan] == [(True, 12), (False, 244)]
    # a full chunk cost 1 ms a token at the start; this prompt's last chunk 4 ms a token
    prefiller.cheapest, long.seconds_per_token = 0.001, 0.004
    assert prefiller.plan([long]) == [(long, 64)]
