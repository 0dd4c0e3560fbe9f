"""Speculative decoding with a draft model (tiny random pairs): greedy answers stay those of
plain decoding, alone and together; a draft model equal to the main model has its drafts
accepted; a pair whose tokenizers differ is refused at load with one line."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Chunk, Message, ModelLoadError, SamplingParams
from mlxchat.settings import SETTINGS, SettingError

PROMPTS = ["Hello there", "The quick brown fox", "Numbers: 1 2 3", "def add(a, b):"]
GREEDY = SamplingParams(max_tokens=32)


@pytest.fixture(scope="module")
def near_copy(tiny_endless: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A draft model: tiny_endless with one layer's MLP weights perturbed, so it agrees with
    the main model on some tokens and not on others."""
    import mlx.core as mx

    path = tmp_path_factory.mktemp("draft") / "near-copy"
    shutil.copytree(tiny_endless, path)
    weights = mx.load(str(path / "model.safetensors"))
    assert isinstance(weights, dict)
    mx.random.seed(7)
    name = "model.layers.1.mlp.down_proj.weight"
    weights[name] = weights[name] + 0.6 * mx.random.normal(weights[name].shape)
    mx.save_safetensors(str(path / "model.safetensors"), weights)
    return path


@pytest.fixture(scope="module")
def plain(tiny_endless: Path) -> Iterator[Engine]:
    engine = Engine(progress_interval=0.0, speculative="off")
    engine.load_sync(str(tiny_endless))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def drafting(tiny_endless: Path, near_copy: Path) -> Iterator[Engine]:
    engine = Engine(progress_interval=0.0, speculative="draft", draft_model=str(near_copy))
    engine.load_sync(str(tiny_endless))
    yield engine
    engine.close()


def answer(engine: Engine, prompt: str) -> tuple[list[int], int, int]:
    result = engine.generate_sync([Message("user", prompt)], GREEDY)
    return result.tokens, result.stats.draft_tokens, result.stats.accepted_tokens


def test_draft_model_answers_alone_are_the_plain_answers(plain: Engine, drafting: Engine) -> None:
    drafted = accepted = 0
    for prompt in PROMPTS:
        expected, _, _ = answer(plain, prompt)
        tokens, d, a = answer(drafting, prompt)
        assert tokens == expected
        drafted, accepted = drafted + d, accepted + a
    assert 0 < accepted < drafted  # some guesses kept, some rejected (the cache rewinds)


async def test_draft_model_answers_together_are_the_plain_answers(
    plain: Engine, drafting: Engine
) -> None:
    expected = [answer(plain, prompt)[0] for prompt in PROMPTS]

    async def collect(prompt: str) -> list[int]:
        return [
            event.token
            async for event in drafting.stream([Message("user", prompt)], GREEDY)
            if isinstance(event, Chunk) and event.token is not None
        ]

    results = await asyncio.gather(*(collect(prompt) for prompt in PROMPTS))
    assert results == expected


def test_a_draft_model_equal_to_the_main_model_is_almost_always_right(
    tiny_endless: Path,
) -> None:
    engine = Engine(progress_interval=0.0, speculative="draft", draft_model=str(tiny_endless))
    try:
        engine.load_sync(str(tiny_endless))
        params = SamplingParams(max_tokens=48)
        result = engine.generate_sync([Message("user", PROMPTS[1])], params)
    finally:
        engine.close()
    stats = result.stats
    assert stats.draft_tokens >= 20
    assert stats.accepted_tokens >= 0.9 * stats.draft_tokens  # an off-by-one would miss


def test_a_draft_model_with_another_tokenizer_is_refused_in_one_line(
    tiny_endless: Path, tiny_thinking: Path
) -> None:
    engine = Engine(progress_interval=0.0, draft_model=str(tiny_thinking))
    try:
        with pytest.raises(ModelLoadError) as caught:
            engine.load_sync(str(tiny_endless))
        assert engine.model_info is None
    finally:
        engine.close()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"draft model '{tiny_thinking}' does not share the tokenizer of")
    assert "(vocabulary 437 vs 435); pick a draft model of the same family" in message


def test_the_settings_take_draft() -> None:
    assert SETTINGS["speculative"].check("draft") == "draft"
    assert SETTINGS["draft_model"].default == ""
    with pytest.raises(SettingError, match="must be one of auto, off, lookup, draft, got 'x'"):
        SETTINGS["speculative"].check("x")


@pytest.mark.parametrize(("mode", "used"), [("auto", True), ("lookup", False), ("off", False)])
def test_auto_drafts_with_the_draft_model_and_lookup_does_not(
    tiny_endless: Path, monkeypatch: pytest.MonkeyPatch, mode: str, used: bool
) -> None:
    from mlxchat.engine.draft_model import DraftModel

    calls: list[int] = []
    real = DraftModel.draft

    def counted(self: DraftModel, pending: int | None, limit: int | None = None) -> list[int]:
        calls.append(1)
        return real(self, pending, limit)

    monkeypatch.setattr(DraftModel, "draft", counted)
    engine = Engine(progress_interval=0.0, speculative=mode, draft_model=str(tiny_endless))
    try:
        engine.load_sync(str(tiny_endless))
        result = engine.generate_sync([Message("user", PROMPTS[0])], GREEDY)
    finally:
        engine.close()
    assert bool(calls) == used
    if mode != "lookup":  # (prompt lookup may find nothing to copy in this answer)
        assert (result.stats.draft_tokens > 0) == used


def test_the_draft_cache_follows_accepted_and_rejected_tokens(near_copy: Path) -> None:
    """Each draft, from the row's kept cache, is the draft of a fresh cache fed the whole
    sequence: rejected tails leave the cache, accepted tokens stay."""
    import mlx_lm

    from mlxchat.engine.draft_model import DraftModel

    model, _ = mlx_lm.load(str(near_copy))
    drafter = DraftModel(model, k_max=5)
    sequence = [5, 40, 41, 42, 100, 7, 8]
    drafter.extend(sequence)
    pending = 60
    for step in range(12):
        fresh = DraftModel(model, k_max=5)
        fresh.extend(sequence)
        fresh.k = drafter.k
        draft = drafter.draft(pending)
        assert draft == fresh.draft(pending)
        kept = step % (len(draft) + 1)  # the main model keeps 0, 1, … of them
        drafter.record(len(draft), kept)
        sequence += [pending, *draft[:kept]]
        drafter.extend([pending, *draft[:kept]])
        pending = (draft[kept] + 1) % 400 if kept < len(draft) else 61


def test_generate_takes_the_draft_model_flag(
    tiny_endless: Path, near_copy: Path, tiny_thinking: Path
) -> None:
    from typer.testing import CliRunner

    from mlxchat.cli import app

    def generate(*args: str) -> Any:
        command = ["generate", "-m", str(tiny_endless), "--max-tokens", "8", "-p", "hi"]
        return CliRunner().invoke(app, [*command, *args])

    result = generate("--draft-model", str(near_copy), "--speculative", "draft", "-v")
    assert result.exit_code == 0, result.stderr
    assert re.search(r"\| spec \d+ % \|", result.stderr), result.stderr
    result = generate("--draft-model", str(tiny_thinking))
    assert result.exit_code == 2 and result.exception is not None
    assert result.stderr.strip().splitlines()[-1] == (
        f"mlxchat: error: draft model '{tiny_thinking}' does not share the tokenizer of "
        f"'{tiny_endless}' (vocabulary 437 vs 435); pick a draft model of the same family"
    )


def test_a_long_prompt_reaches_the_draft_model_a_chunk_per_step(
    near_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlx_lm

    from mlxchat.engine import draft_model
    from mlxchat.engine.draft_model import DraftModel

    model, _ = mlx_lm.load(str(near_copy))
    drafter, fresh = DraftModel(model), DraftModel(model)
    prompt = [(i * 37) % 300 + 5 for i in range(30)]
    drafter.extend(prompt)
    fresh.extend(prompt)
    expected = fresh.draft(60)  # all at once
    monkeypatch.setattr(draft_model, "CATCH_UP", 8)
    assert not drafter.needs_pending  # no sync of the batch while it catches up
    steps = 0
    while not (draft := drafter.draft(None if steps < 2 else 60)):  # pending not needed yet
        steps += 1
        assert len(drafter._fed) == 8 * steps  # one chunk per step, no draft meanwhile
    assert steps == 3 and draft == expected  # 31 tokens: 8 + 8 + 8, then the last 7


def test_a_draft_model_that_keeps_missing_pauses(near_copy: Path) -> None:
    import mlx_lm

    from mlxchat.engine import speculative
    from mlxchat.engine.draft_model import DraftModel

    model, _ = mlx_lm.load(str(near_copy))
    drafter = DraftModel(model)
    drafter.extend([5, 6, 7])
    for _ in range(speculative.MISSES_BEFORE_PAUSE):
        drafter.record(len(drafter.draft(8)), 0)
    for _ in range(speculative.PAUSE_START):
        assert not drafter.needs_pending  # no sync of the batch for it
        assert drafter.draft(8) == []  # pauses: the row decodes plainly
    assert drafter.draft(8) != [] and drafter.k == 1
