"""Fixtures for the translate screen tests: a real engine on a tiny model, scripted fakes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxchat.translate.settings import WaitKSettings

from .fake_translation import FakeFactory


@pytest.fixture(scope="module")
def tiny_engine(tiny_llama: Path) -> Iterator[object]:
    """A real engine with the tiny random llama loaded (shared by a module's tests)."""
    from mlxchat.engine.engine import Engine

    engine = Engine(progress_interval=0.05)
    engine.load_sync(str(tiny_llama))
    yield engine
    engine.close()


@pytest.fixture
def quick() -> WaitKSettings:
    """Wait-k settings that keep the tiny model's answers short (a word cut at 3 tokens does
    not end the sentence: the random model rarely writes a space)."""
    return WaitKSettings(wait_k=2, max_new_words=5, max_tokens_per_word=3, cut_ends_segment=False)


@pytest.fixture
def factory() -> FakeFactory:
    """Scripted translations."""
    return FakeFactory()
