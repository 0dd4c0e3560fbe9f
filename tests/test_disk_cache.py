"""The prompt cache's disk tier on the real engine and a tiny model: a conversation's cache
outlives the engine, a resumed conversation prefills only its new tokens and answers what
an engine without the disk tier answers, and a bad file is ignored, removed and logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxchat.engine import disk_cache
from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Message, Result, SamplingParams

GREEDY = SamplingParams(max_tokens=12)
FIRST = [
    Message("system", "You are a helpful assistant. " * 6),
    Message("user", "Tell me about the sea and the waves and the fox " * 8),
]
MB = 10**6


def start(model: Path, folder: Path | None, budget: int = 100 * MB) -> Engine:
    engine = Engine(prompt_cache_disk_bytes=budget if folder else 0, prompt_cache_dir=folder)
    engine.load_sync(str(model))
    return engine


def ask(model: Path, folder: Path | None, messages: list[Message]) -> Result:
    """One answer from a fresh engine, closed after (its caches written)."""
    engine = start(model, folder)
    try:
        return engine.generate_sync(messages, GREEDY)
    finally:
        engine.close()


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.safetensors"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "prompts"


@pytest.fixture
def second(tiny_llama: Path, folder: Path) -> Iterator[list[Message]]:
    """The conversation's second turn, after its first was answered and written to disk."""
    first = ask(tiny_llama, folder, FIRST)
    assert len(files(folder)) == 1
    yield [*FIRST, Message("assistant", first.text), Message("user", "And the tides?")]


def test_a_resumed_conversation_prefills_only_its_new_tokens_and_answers_the_same(
    tiny_llama: Path, folder: Path, second: list[Message]
) -> None:
    resumed = ask(tiny_llama, folder, second)
    cold = ask(tiny_llama, None, second)
    first = ask(tiny_llama, None, FIRST).stats.prompt_tokens
    # the whole first turn came from disk (a random model's answer may not re-tokenize
    # the same, so its tokens may be prefilled again)
    assert resumed.stats.cached_tokens >= first
    assert resumed.stats.cached_tokens + resumed.stats.prompt_tokens == cold.stats.prompt_tokens
    assert cold.stats.cached_tokens == 0
    assert resumed.tokens == cold.tokens and resumed.text == cold.text
    # the longer conversation supersedes the first turn's file
    assert len(files(folder)) == 1


def test_an_edit_or_a_branch_answers_as_without_the_disk_tier(
    tiny_llama: Path, folder: Path, second: list[Message]
) -> None:
    edited = [FIRST[0], Message("user", "Tell me about numbers " * 8)]
    branched = [*second[:-1], Message("user", "And the fish in it?")]
    for messages in (edited, branched):
        assert ask(tiny_llama, folder, messages).tokens == ask(tiny_llama, None, messages).tokens


def test_the_report_shows_the_disk_tier(tiny_llama: Path, folder: Path) -> None:
    engine = start(tiny_llama, folder)
    try:
        engine.generate_sync(FIRST, GREEDY)
        engine.close()  # waits for the write
        engine.load_sync(str(tiny_llama))
        report = engine.prompt_cache_report()
        assert report is not None
        assert report["disk_entries"] == 1
        assert report["disk_bytes"] == files(folder)[0].stat().st_size
        assert report["disk_budget"] == 100 * MB
    finally:
        engine.close()


def _truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 100])


def _flip_a_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[-50] ^= 0x55
    file.write_bytes(bytes(data))


def _garbage(file: Path) -> None:
    file.write_bytes(b"not a cache at all")


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte, _garbage])
def test_a_damaged_file_is_ignored_and_removed_with_one_line(
    tiny_llama: Path,
    folder: Path,
    second: list[Message],
    damage: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (file,) = files(folder)
    damage(file)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, "mlxchat.engine"):
        resumed = ask(tiny_llama, folder, second)
    assert resumed.stats.cached_tokens == 0
    assert resumed.tokens == ask(tiny_llama, None, second).tokens
    lines = [r.getMessage() for r in caplog.records if "ignored and removed" in r.getMessage()]
    assert len(lines) == 1 and file.name in lines[0]
    assert not file.exists()


def test_a_file_of_another_version_is_ignored_and_removed(
    tiny_llama: Path,
    folder: Path,
    second: list[Message],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (file,) = files(folder)
    monkeypatch.setattr(disk_cache, "__version__", "99.0")
    with caplog.at_level(logging.WARNING, "mlxchat.engine"):
        resumed = ask(tiny_llama, folder, second)
    assert resumed.stats.cached_tokens == 0
    assert any("another version" in r.getMessage() for r in caplog.records)
    assert not file.exists()


def test_a_file_of_another_model_is_ignored_and_removed(
    tiny_llama: Path,
    tiny_qwen: Path,
    folder: Path,
    second: list[Message],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (file,) = files(folder)
    engine = start(tiny_qwen, folder)
    try:
        other = folder / engine._loaded.cache.disk.folder.name  # type: ignore[union-attr]
        engine.close()
        moved = other / file.name
        file.rename(moved)  # as if the other model had written it
        with caplog.at_level(logging.WARNING, "mlxchat.engine"):
            engine.load_sync(str(tiny_qwen))
            answer = engine.generate_sync(second, GREEDY)
        assert answer.stats.cached_tokens == 0
        assert any("another model" in r.getMessage() for r in caplog.records)
        assert not moved.exists()
    finally:
        engine.close()


def test_the_disk_budget_keeps_the_most_recent_files(tiny_llama: Path, folder: Path) -> None:
    def topic(n: int) -> list[Message]:
        return [Message("user", f"{n} tell me about it " * 8)]  # nothing shared

    ask(tiny_llama, folder, topic(1))
    (oldest,) = files(folder)
    size = oldest.stat().st_size
    engine = start(tiny_llama, folder, budget=int(size * 2.5))
    try:
        for n in (2, 3, 4):
            engine.generate_sync(topic(n), GREEDY)
            engine.close()  # waits for the write
            engine.load_sync(str(tiny_llama))
        kept = files(folder)
        assert len(kept) == 2 and oldest not in kept
        assert sum(f.stat().st_size for f in kept) <= size * 2.5
    finally:
        engine.close()


def test_no_disk_tier_writes_nothing(tiny_llama: Path, folder: Path) -> None:
    ask(tiny_llama, None, FIRST)
    assert not folder.exists()


def test_no_copy_to_disk_stalls_another_answer(
    tiny_endless: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved: list[int] = []
    save = disk_cache.DiskCache.save

    def spy(self: disk_cache.DiskCache, cache: list[object], tokens: list[int]) -> None:
        saved.append(len(tokens))
        save(self, cache, tokens)

    monkeypatch.setattr(disk_cache.DiskCache, "save", spy)
    engine = start(tiny_endless, folder)
    try:
        long = engine.iterate(
            [Message("user", "Count to a thousand.")], SamplingParams(max_tokens=400)
        )
        next(long)  # the long answer is being written
        engine.generate_sync(FIRST, SamplingParams(max_tokens=2))
        assert saved == []  # the short one ended while the long one went on: not copied yet
        for _ in long:
            pass
        assert len(saved) == 2  # both, once the batch was empty
    finally:
        engine.close()
    assert len(files(folder)) == 2
