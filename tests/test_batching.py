"""Many answers at once on the real engine (tiny random models): answers join and leave the
batch between steps, each keeps its own settings, stop strings, cancel and stats, and a
greedy answer is the one the request gets alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Chunk, Message, SamplingParams
from mlxchat.translate.settings import WaitKSettings
from mlxchat.translate.translation import open_translation

PROMPTS = [
    "Hello there",
    "What is the capital of France?",
    "The quick brown fox",
    "Numbers: 1 2 3",
    "Translate the cat is on the table",
    "def add(a, b):",
]


@pytest.fixture(scope="module")
def engine(tiny_endless: Path) -> Iterator[Engine]:
    """Answers that never end by themselves: they run to max_tokens (or a cancel)."""
    engine = Engine(progress_interval=0.0)
    engine.load_sync(str(tiny_endless))
    yield engine
    engine.close()


def alone(engine: Engine, prompt: str, params: SamplingParams) -> list[int]:
    return engine.generate_sync([Message("user", prompt)], params).tokens


async def collect(engine: Engine, prompt: str, params: SamplingParams) -> list[Chunk]:
    return [
        event
        async for event in engine.stream([Message("user", prompt)], params)
        if isinstance(event, Chunk)
    ]


def tokens(chunks: list[Chunk]) -> list[int]:
    return [c.token for c in chunks if c.token is not None]


async def test_answers_together_are_the_answers_alone(engine: Engine) -> None:
    params = SamplingParams(max_tokens=24)
    expected = [alone(engine, prompt, params) for prompt in PROMPTS]
    arrivals: list[int] = []

    async def noted(index: int) -> list[Chunk]:
        chunks = []
        async for event in engine.stream([Message("user", PROMPTS[index])], params):
            if isinstance(event, Chunk):
                chunks.append(event)
                arrivals.append(index)
        return chunks

    together = await asyncio.gather(*(noted(i) for i in range(len(PROMPTS))))
    assert [tokens(chunks) for chunks in together] == expected
    last = len(PROMPTS) - 1  # written together: the last began before the first ended
    assert arrivals.index(last) < len(arrivals) - 1 - arrivals[::-1].index(0)
    for chunks in together:
        assert chunks[-1].finish_reason == "length"
        assert chunks[-1].stats.generation_tokens == 24
        assert chunks[-1].stats.ttft > 0 and chunks[-1].stats.generation_tps > 0


async def test_an_answer_joins_mid_batch_and_one_leaves_early(engine: Engine) -> None:
    long, short = SamplingParams(max_tokens=40), SamplingParams(max_tokens=5)
    expected_long = alone(engine, PROMPTS[0], long)
    expected_short = alone(engine, PROMPTS[1], short)
    first = engine.stream([Message("user", PROMPTS[0])], long)
    seen: list[Chunk] = []
    async for event in first:
        if isinstance(event, Chunk):
            seen.append(event)
            if len(seen) == 8:  # the first is writing: another joins, and ends first
                joined = asyncio.create_task(collect(engine, PROMPTS[1], short))
    short_chunks = await joined
    assert tokens(seen) == expected_long
    assert tokens(short_chunks) == expected_short
    assert short_chunks[-1].finish_reason == "length"


async def test_cancelling_one_answer_leaves_the_others_intact(engine: Engine) -> None:
    params = SamplingParams(max_tokens=30)
    expected = [alone(engine, p, params) for p in PROMPTS[:3]]
    victim = engine.stream([Message("user", PROMPTS[1])], params)
    others = [asyncio.create_task(collect(engine, p, params)) for p in (PROMPTS[0], PROMPTS[2])]
    cut: list[Chunk] = []
    async for event in victim:
        if isinstance(event, Chunk):
            cut.append(event)
            if len(cut) == 3:
                victim.cancel()
    first, third = await asyncio.gather(*others)
    assert cut[-1].finish_reason == "cancelled" and len(tokens(cut)) < 30
    assert tokens(cut) == expected[1][: len(tokens(cut))]
    assert tokens(first) == expected[0] and tokens(third) == expected[2]


async def test_each_answer_keeps_its_own_settings_and_stop_strings(engine: Engine) -> None:
    greedy = SamplingParams(max_tokens=20)
    penalised = SamplingParams(max_tokens=20, repetition_penalty=1.8)
    reference = engine.generate_sync([Message("user", PROMPTS[2])], greedy).text
    stop = reference[8:11]  # a stop string the greedy answer meets
    stopping = SamplingParams(max_tokens=20, stop=(stop,))
    expected = {
        "greedy": alone(engine, PROMPTS[0], greedy),
        "penalised": alone(engine, PROMPTS[0], penalised),
    }
    results = await asyncio.gather(
        collect(engine, PROMPTS[0], greedy),
        collect(engine, PROMPTS[0], penalised),
        collect(engine, PROMPTS[2], stopping),
        collect(engine, PROMPTS[3], SamplingParams(max_tokens=3)),
    )
    plain, with_penalty, stopped, short = results
    assert tokens(plain) == expected["greedy"]
    assert tokens(with_penalty) == expected["penalised"] != expected["greedy"]
    text = "".join(c.text for c in stopped)
    assert stopped[-1].finish_reason == "stop" and stop not in text
    assert reference.startswith(text)
    assert len(tokens(short)) == 3 and short[-1].finish_reason == "length"


async def test_a_translation_keeps_its_pace_while_two_chats_stream(engine: Engine) -> None:
    settings = WaitKSettings(wait_k=2, max_new_words=3, max_tokens_per_word=3)
    words = ["The", "cat", "is", "on", "the", "table."]

    async def translate() -> tuple[list[str], float]:
        live = open_translation(engine, settings, auto_segment=False)
        written = []
        for i, word in enumerate(words):
            async for event in live.feed(word, last=i == len(words) - 1):
                if type(event).__name__ == "TargetWord":
                    written.append(event.word)
        return written, time.perf_counter()

    async def chat(prompt: str) -> tuple[list[Chunk], float]:
        chunks = await collect(engine, prompt, SamplingParams(max_tokens=1500))
        return chunks, time.perf_counter()

    alone_words, _ = await translate()
    chats = [asyncio.create_task(chat(p)) for p in PROMPTS[:2]]
    await asyncio.sleep(0.2)  # both chats are writing
    written, translated_at = await translate()
    answers = await asyncio.gather(*chats)
    assert written == alone_words  # the same words, between the chats' steps
    assert translated_at < min(done for _, done in answers)  # not after the chats
    assert all(len(tokens(chunks)) == 1500 for chunks, _ in answers)


async def test_a_cancelled_answer_leaves_within_a_step(engine: Engine) -> None:
    params = SamplingParams(max_tokens=100_000)
    keep = asyncio.create_task(collect(engine, PROMPTS[0], SamplingParams(max_tokens=200)))
    stream = engine.stream([Message("user", PROMPTS[1])], params)
    gaps = []
    last = time.perf_counter()
    count = 0
    async for event in stream:
        if isinstance(event, Chunk):
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
            count += 1
            if count == 10:
                stream.cancel()
                cancelled_at = now
    assert time.perf_counter() - cancelled_at < 5 * max(gaps[1:10])  # a step or two
    assert len(await keep) > 0


def test_a_request_cancelled_while_its_prompt_is_fitted_ends_cancelled(tiny_endless: Path) -> None:
    from mlxchat.engine.batching import Batch
    from mlxchat.engine.generation import GenerateRequest
    from mlxchat.engine.prompt_cache import PromptCache
    from mlxchat.engine.worker import Job
    from mlxchat.models import loader as models

    model, tokenizer, info = models.load_model(str(tiny_endless))
    batch = Batch(model, tokenizer, info.context_length, PromptCache(model, 10**8), None)
    events: list[object] = []
    job = Job(lambda emit, cancelled: None, events.append)
    job.cancel.set()
    too_long = [Message("user", "word " * 20) for _ in range(2000)]  # must be fitted
    request = GenerateRequest(too_long, SamplingParams(), None, True, None, None, None)
    assert batch.admit(job, request) is None  # not deferred: `Job.run` ends the job now
    (chunk,) = events
    assert isinstance(chunk, Chunk) and chunk.finish_reason == "cancelled" and chunk.text == ""
    assert not batch.busy()
