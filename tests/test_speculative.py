"""Speculative decoding inside the batch (tiny random models): prompt-lookup drafting on its
own, then rows that verify drafts give exactly the greedy answers of plain decoding, alone
and together with different acceptance, with stop strings, max_tokens, repetition penalty,
cancel and the session cache kept exact."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlxchat.engine import speculative
from mlxchat.engine.engine import Engine
from mlxchat.engine.speculative import PromptLookup
from mlxchat.engine.types import Chunk, Message, RequestOptions, SamplingParams, Stats
from mlxchat.settings import SETTINGS, SettingError

PROMPTS = ["Hello there", "The quick brown fox", "Numbers: 1 2 3", "def add(a, b):"]

# ----- drafting ---------------------------------------------------------------------------


def test_lookup_drafts_what_followed_the_last_ngram_earlier() -> None:
    lookup = PromptLookup()
    lookup.extend([1, 2, 3, 4, 5, 6, 9, 1, 2])
    assert lookup.draft(3) == [4, 5, 6, 9]  # "1 2 3" was followed by 4 5 6 9 (k = 4)
    assert lookup.draft(None) == [4, 5, 6, 9]  # pending unknown: "1 2" → 3 (its guess) left out
    assert lookup.draft(3, limit=2) == [4, 5]
    assert lookup.draft(7) == []  # "2 7" never seen, and 1-grams are not tried at first


def test_lookup_prefers_the_longest_and_latest_match() -> None:
    lookup = PromptLookup()
    lookup.extend([5, 1, 2, 7, 7, 0, 1, 2, 8, 8, 3, 1, 2])
    assert lookup.draft(None) == [8, 3, 1, 2]  # the latest "1 2" came before 8
    lookup = PromptLookup()
    lookup.extend([4, 1, 2, 6, 6, 9, 1, 2, 8, 8, 4, 1])
    assert lookup.draft(2) == [6, 6, 9, 1]  # "4 1 2" (3-gram) beats the later "1 2"


def test_lookup_adapts_k_and_pauses_after_misses() -> None:
    lookup = PromptLookup()
    lookup.extend(list(range(20)) * 2)
    assert len(lookup.draft(None)) == speculative.K_START
    lookup.record(4, 4)
    assert len(lookup.draft(None)) == speculative.K_START + 2
    lookup.record(6, 1)
    assert lookup.k == speculative.K_START + 1 and lookup.rate == 0.5
    for _ in range(speculative.MISSES_BEFORE_PAUSE):
        lookup.record(3, 0)
    for _ in range(speculative.PAUSE_START):
        assert lookup.draft(None) == []  # pauses: decodes plainly
    assert lookup.draft(None) != []
    assert lookup.n_min > speculative.NGRAM_MIN  # low acceptance: longer matches only


def test_the_setting_takes_only_its_modes() -> None:
    setting = SETTINGS["speculative"]
    assert setting.default == "auto" and setting.check("lookup") == "lookup"
    with pytest.raises(SettingError, match="must be one of auto, off, lookup, draft, got 'fast'"):
        setting.check("fast")


def test_a_processor_sees_the_draft_before_each_position(
    tiny_endless: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlx_lm
    from mlx_lm.generate import BatchGenerator

    from mlxchat.engine.verify import speculative_generator

    model, _ = mlx_lm.load(str(tiny_endless))
    generator = BatchGenerator(model, stop_tokens=[], prefill_step_size=64)
    batch = speculative_generator(generator)
    seen: list[list[int]] = []

    def processor(tokens: Any, logits: Any) -> Any:
        seen.append(tokens.tolist())
        return logits

    monkeypatch.setattr(PromptLookup, "draft", lambda self, p, limit=None: [101, 102, 103])
    (uid,) = generator.insert([[5, 6, 7, 8, 9]], max_tokens=[10], logits_processors=[[processor]])
    generator.insert([[9, 8, 7]], max_tokens=[10])  # a row that does not draft
    batch.watch(uid)
    steps = [generator.next()[1] for _ in range(4)]
    assert seen[0] == [5, 6, 7, 8, 9]  # the first token: plain
    x = next(r.token for r in steps[2] if r.uid == uid)
    base = [5, 6, 7, 8, 9, x]
    assert seen[1:5] == [base, base + [101], base + [101, 102], base + [101, 102, 103]]


# ----- verifying in the batch -------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tiny_endless: Path) -> Iterator[Engine]:
    engine = Engine(progress_interval=0.0, speculative="lookup")  # rows draft in any batch
    engine.load_sync(str(tiny_endless))
    yield engine
    engine.close()


class Oracle:
    """Drafts from the known plain answers, with one token wrong at a position that
    depends on the row and the step: rows accept different numbers of tokens."""

    def __init__(self) -> None:
        self.answers: dict[tuple[int, ...], list[int]] = {}
        self.recording: list[tuple[int, ...]] = []
        self.exact = False  # True: no wrong token in the drafts

    def draft(self, lookup: PromptLookup, pending: int | None, limit: int | None) -> list[int]:
        seq = lookup.tokens + ([] if pending is None else [pending])
        if not self.answers:  # recording the plain answers: no drafts
            if not self.recording or len(seq) < len(self.recording[-1]):
                self.recording.append(tuple(lookup.tokens))
            return []
        for prompt, answer in self.answers.items():
            full = [*prompt, *answer]
            if full[: len(seq)] == seq:
                skip = 0 if pending is not None else 1
                k = min(6, limit if limit is not None else 6)
                guess = full[len(seq) + skip : len(seq) + skip + k]
                wrong = random.Random(len(seq) * 31 + prompt[-1]).randrange(0, k + 2)
                if wrong < len(guess) and not self.exact:
                    guess[wrong] = (guess[wrong] + 1) % 300
                return guess
        return []


@pytest.fixture
def oracle(monkeypatch: pytest.MonkeyPatch) -> Oracle:
    oracle = Oracle()
    monkeypatch.setattr(
        PromptLookup, "draft", lambda self, p, limit=None: oracle.draft(self, p, limit)
    )
    return oracle


def learn(
    engine: Engine,
    oracle: Oracle,
    prompts: list[str],
    params: SamplingParams | list[SamplingParams],
    options: RequestOptions | None = None,
) -> list[list[int]]:
    """The plain answers of `prompts` (with `params`, one each or the same for all)."""
    answers = []
    for prompt, each in zip(
        prompts, params if isinstance(params, list) else [params] * len(prompts), strict=True
    ):
        oracle.recording, saved = [], oracle.answers
        oracle.answers = {}
        tokens = engine.generate_sync([Message("user", prompt)], each, options=options).tokens
        oracle.answers = {**saved, oracle.recording[0]: tokens}
        answers.append(tokens)
    return answers


async def collect(engine: Engine, prompt: str, params: SamplingParams) -> list[Chunk]:
    return [
        event
        async for event in engine.stream([Message("user", prompt)], params)
        if isinstance(event, Chunk)
    ]


def tokens(chunks: list[Chunk]) -> list[int]:
    return [c.token for c in chunks if c.token is not None]


def test_drafted_answers_alone_are_the_plain_answers(engine: Engine, oracle: Oracle) -> None:
    params = SamplingParams(max_tokens=40)
    expected = learn(engine, oracle, PROMPTS, params)
    for prompt, answer in zip(PROMPTS, expected, strict=True):
        result = engine.generate_sync([Message("user", prompt)], params)
        assert result.tokens == answer
        assert result.finish_reason == "length"
        assert 0 < result.stats.accepted_tokens < result.stats.draft_tokens


async def test_drafted_answers_together_are_the_plain_answers(
    engine: Engine, oracle: Oracle
) -> None:
    greedy = SamplingParams(max_tokens=40)
    penalised = SamplingParams(max_tokens=40, repetition_penalty=1.5, repetition_context_size=200)
    expected = learn(engine, oracle, PROMPTS, greedy)
    (without,) = learn(engine, oracle, ["Penalties apply"], greedy)
    (with_penalty,) = learn(engine, oracle, ["Penalties apply"], penalised)  # drafts from it
    assert with_penalty != without
    results = await asyncio.gather(
        *(collect(engine, prompt, greedy) for prompt in PROMPTS),
        collect(engine, "Penalties apply", penalised),
        collect(engine, PROMPTS[1], SamplingParams(max_tokens=7)),
    )
    for chunks, answer in zip(results, expected, strict=False):
        assert tokens(chunks) == answer
    accepted = [chunks[-1].stats.accepted_tokens for chunks in results[: len(PROMPTS)]]
    assert len(set(accepted)) > 1  # rows accepted different numbers of tokens
    assert tokens(results[-2]) == with_penalty  # the penalty saw the drafted context
    assert tokens(results[-1]) == expected[1][:7] and results[-1][-1].finish_reason == "length"


def test_a_stop_string_inside_an_accepted_draft_ends_the_answer_there(
    engine: Engine, oracle: Oracle
) -> None:
    params = SamplingParams(max_tokens=40)
    (answer,) = learn(engine, oracle, [PROMPTS[3]], params)
    reference = engine.generate_sync([Message("user", PROMPTS[3])], params).text
    stop = reference[14:17]
    stopping = SamplingParams(max_tokens=40, stop=(stop,))
    oracle.answers, saved = {}, oracle.answers  # plain, in a session, then its next turn
    first = engine.generate_sync([Message("user", PROMPTS[3])], stopping, session="a")
    history = [Message("user", PROMPTS[3]), Message("assistant", first.text)]
    turn = [*history, Message("user", "again")]
    second = engine.generate_sync(turn, SamplingParams(max_tokens=12), session="a")
    oracle.answers = saved
    drafted = engine.generate_sync([Message("user", PROMPTS[3])], stopping, session="b")
    assert drafted.stats.accepted_tokens > 0
    assert drafted.text == first.text and drafted.finish_reason == "stop" == first.finish_reason
    assert stop not in drafted.text and reference.startswith(drafted.text)
    again = engine.generate_sync(turn, SamplingParams(max_tokens=12), session="b")
    assert again.stats.cached_tokens == second.stats.cached_tokens > 0
    assert again.tokens == second.tokens  # the next turn starts from the answer's cache
    assert answer


async def test_a_cancelled_drafting_answer_ends_within_a_step(
    engine: Engine, oracle: Oracle
) -> None:
    params = SamplingParams(max_tokens=60)
    (answer,) = learn(engine, oracle, [PROMPTS[2]], params)
    stream = engine.stream([Message("user", PROMPTS[2])], params)
    seen: list[Chunk] = []
    async for event in stream:
        if isinstance(event, Chunk):
            seen.append(event)
            if len(tokens(seen)) >= 5 and len(seen) == 5:
                stream.cancel()
    assert seen[-1].finish_reason == "cancelled"
    assert len(tokens(seen)) < len(answer)
    assert tokens(seen) == answer[: len(tokens(seen))]


def test_off_and_per_request_modes(tiny_endless: Path, oracle: Oracle) -> None:
    params = SamplingParams(max_tokens=30)
    engine = Engine(progress_interval=0.0, speculative="off")
    try:
        engine.load_sync(str(tiny_endless))
        lookup = RequestOptions(speculative="lookup")
        (answer,) = learn(engine, oracle, [PROMPTS[1]], params, lookup)
        prompt = [Message("user", PROMPTS[1])]
        off = engine.generate_sync(prompt, params)
        on = engine.generate_sync(prompt, params, options=lookup)
    finally:
        engine.close()
    assert off.tokens == on.tokens == answer
    assert off.stats.draft_tokens == 0 < on.stats.accepted_tokens


async def test_auto_drafts_alone_but_not_in_a_crowded_batch(
    tiny_endless: Path, oracle: Oracle
) -> None:
    params = SamplingParams(max_tokens=20)
    engine = Engine(progress_interval=0.0)  # "auto"
    try:
        engine.load_sync(str(tiny_endless))
        expected = learn(engine, oracle, PROMPTS, params)
        alone = engine.generate_sync([Message("user", PROMPTS[0])], params)
        together = await asyncio.gather(*(collect(engine, prompt, params) for prompt in PROMPTS))
    finally:
        engine.close()
    assert alone.tokens == expected[0] and alone.stats.accepted_tokens > 0
    assert [tokens(chunks) for chunks in together] == expected
    drafted = [chunks[-1].stats.draft_tokens for chunks in together]
    assert sum(drafted) < sum(len(a) for a in expected) // 2  # only while few rows decode


def test_serve_takes_the_mode_per_request_and_reports_the_counts(
    engine: Engine, oracle: Oracle
) -> None:
    import httpx
    from server_helpers import running_server

    from mlxchat.config import Settings
    from mlxchat.server.state import ServerConfig

    params = SamplingParams(max_tokens=20)
    (answer,) = learn(engine, oracle, [PROMPTS[1]], params)
    config = ServerConfig(
        max_queue=2,
        max_concurrency=2,
        max_body_bytes=64_000,
        keepalive_interval=15.0,
        defaults=Settings(temp=0.0, top_p=1.0, max_tokens=20),
    )
    body = {"model": engine.model_info.name, "messages": [{"role": "user", "content": PROMPTS[1]}]}
    with running_server(engine, config) as url:
        plain = httpx.post(f"{url}/v1/chat/completions", json=body | {"speculative": "off"})
        drafted = httpx.post(f"{url}/v1/chat/completions", json=body | {"speculative": "lookup"})
        bad = httpx.post(f"{url}/v1/chat/completions", json=body | {"speculative": "fast"})
    assert plain.status_code == drafted.status_code == 200
    assert "speculative" not in plain.json()["usage"]
    counts = drafted.json()["usage"]["speculative"]
    assert 0 < counts["accepted_tokens"] < counts["draft_tokens"]
    text = drafted.json()["choices"][0]["message"]["content"]
    assert text == plain.json()["choices"][0]["message"]["content"] != ""
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "speculative"
    assert "must be one of auto, off, lookup" in bad.json()["error"]["message"]
    assert answer


async def test_sampled_rows_verify_drafts_beside_greedy_ones(
    engine: Engine, oracle: Oracle
) -> None:
    greedy = SamplingParams(max_tokens=30)
    sampled = SamplingParams(temp=0.05, top_p=0.95, top_k=40, min_p=0.01, max_tokens=30, seed=7)
    expected = learn(engine, oracle, PROMPTS[:2], greedy)
    results = await asyncio.gather(
        collect(engine, PROMPTS[0], greedy), collect(engine, PROMPTS[1], sampled)
    )
    assert tokens(results[0]) == expected[0]  # beside a row with another sampler
    assert len(tokens(results[1])) == 30 and results[1][-1].finish_reason == "length"
    assert results[1][-1].stats.accepted_tokens > 0  # near-greedy: most guesses kept


def test_generate_verbose_line_shows_the_acceptance() -> None:
    from mlxchat.cli.app import stats_line

    plain = Stats(generation_tokens=10, generation_tps=5.0)
    assert "spec" not in stats_line(plain, "stop")
    drafted = Stats(generation_tokens=10, generation_tps=5.0, draft_tokens=8, accepted_tokens=5)
    assert "| spec 62 % | stop" in stats_line(drafted, "stop")


def test_an_end_token_inside_an_accepted_draft_ends_the_answer(
    tiny_llama: Path, oracle: Oracle
) -> None:
    params = SamplingParams(max_tokens=60)
    engine = Engine(progress_interval=0.0, speculative="lookup")
    try:
        engine.load_sync(str(tiny_llama))
        prompt = [Message("user", "Numbers: 1 2 3")]
        (answer,) = learn(engine, oracle, ["Numbers: 1 2 3"], params)
        key = next(iter(oracle.answers))
        oracle.answers[key] = [*answer, 2]  # the end token (<|im_end|>) drafted too
        oracle.exact = True
        drafted = engine.generate_sync(prompt, params)
    finally:
        engine.close()
    assert len(answer) < 60  # the plain answer ended by itself
    assert drafted.tokens == answer and drafted.finish_reason == "stop"
    assert drafted.stats.accepted_tokens > 0


async def test_answers_joining_and_leaving_drafting_rows_stay_exact(
    engine: Engine, oracle: Oracle
) -> None:
    lengths = [40, 12, 30, 25]
    params = [SamplingParams(max_tokens=n) for n in lengths]
    expected = learn(engine, oracle, PROMPTS, params)

    async def later(index: int, after: float) -> list[Chunk]:
        await asyncio.sleep(after)
        return await collect(engine, PROMPTS[index], params[index])

    results = await asyncio.gather(
        collect(engine, PROMPTS[0], params[0]),
        collect(engine, PROMPTS[1], params[1]),
        later(2, 0.15),
        later(3, 0.3),
    )
    assert [tokens(chunks) for chunks in results] == expected
    assert all(chunks[-1].stats.accepted_tokens > 0 for chunks in results)
