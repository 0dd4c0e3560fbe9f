"""Fixtures for the chat UI tests: settings, a history file, a scripted engine, the app."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_engine import FakeEngine  # noqa: E402

from mlxchat.config import Settings  # noqa: E402
from mlxchat.store.history import History  # noqa: E402
from mlxchat.ui.app import ChatApp  # noqa: E402
from mlxchat.ui.screens.models import ModelChoice  # noqa: E402

SIZE = (100, 30)
"""The terminal size of the Pilot tests."""

MODELS = [
    ModelChoice("demo", "demo", 98_000_000, "~/.cache/mlxchat/models/demo"),
    ModelChoice("mlx-community/Qwen2.5-0.5B-Instruct-4bit", "hf", 278_000_000,
                "~/.cache/huggingface/hub/models--mlx-community--Qwen2.5-0.5B-Instruct-4bit"),
    ModelChoice("tiny-llama", "mlx", 1_200_000, "/models/tiny-llama"),
]
"""A fixed model list for the picker (deterministic snapshots)."""


@pytest.fixture
def settings() -> Settings:
    """Chat settings for a model called "fake"."""
    return Settings(model="fake", theme="mlxchat-dark", temp=0.0, max_tokens=256)


@pytest.fixture
def history(tmp_path: Path) -> History:
    """A fresh history database file."""
    store = History.open(tmp_path / "history.sqlite3")
    yield store
    store.close()


@pytest.fixture
def engine() -> FakeEngine:
    """A scripted engine that answers at once."""
    return FakeEngine()


@pytest.fixture
def make_app(settings: Settings, history: History, engine: FakeEngine) -> Callable[..., ChatApp]:
    """Build a ChatApp around the fake engine (keyword arguments override the defaults)."""

    def build(**kw: Any) -> ChatApp:
        kw.setdefault("list_models", lambda: list(MODELS))
        return ChatApp(
            kw.pop("engine", engine),
            kw.pop("settings", settings),
            kw.pop("history", history),
            **kw,
        )

    return build
