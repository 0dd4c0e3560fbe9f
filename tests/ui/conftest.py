"""Fixtures for the chat UI tests: settings, a history file, a scripted engine, the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlxchat.config import Settings
from mlxchat.store.history import History
from mlxchat.ui.app import ChatApp

from .fake_engine import FakeEngine
from .helpers import MODELS


@pytest.fixture
def settings() -> Settings:
    """Chat settings for a model called "fake"."""
    return Settings(model="fake", theme="mlxchat-dark", temp=0.0, max_tokens=256)


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
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
