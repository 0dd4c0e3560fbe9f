"""Shared fixtures: isolated config/data dirs, tiny random models, the demo model."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_models import make_tiny_model

from mlxchat.engine.cpu import setup_process

setup_process()  # the fast BLAS before anything imports MLX, as every entry point does
# the programs the tests start keep mlxchat's compiled bytecode, as an installed mlxchat
# does (some shells set this; each start then compiled every module again)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    # started in the background by a shell (`pytest &`): the programs the tests start, and
    # send Ctrl+C to, take it as they do in a terminal
    signal.signal(signal.SIGINT, signal.default_int_handler)

TEST_CACHE = Path(os.environ.get("MLXCHAT_TEST_CACHE", Path.home() / ".cache" / "mlxchat-test"))


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config and history go to a fresh temp dir; converted models to a shared test cache."""
    monkeypatch.setenv("MLXCHAT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MLXCHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLXCHAT_CACHE_DIR", str(TEST_CACHE))
    monkeypatch.setenv("MLXCHAT_PROMPTS_DIR", str(tmp_path / "prompts"))  # no cache between tests


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random llama model directory (loads in milliseconds)."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random qwen2 model directory, different weights from tiny_llama."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen", "qwen2", seed=1)


@pytest.fixture(scope="session")
def tiny_endless(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama whose greedy answers never end by themselves (for interrupt tests)."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-endless", endless=True)


@pytest.fixture(scope="session")
def tiny_thinking(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama with think tokens and a template that opens the think span; it never
    writes the think tags itself (only a thinking budget ends its reasoning)."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-thinking", thinking=True)


@pytest.fixture(scope="session")
def demo_engine() -> Iterator[object]:
    """An engine with the real demo model (SmolLM2-135M-Instruct) loaded, shared by tests."""
    from mlxchat.engine.engine import Engine

    os.environ["MLXCHAT_CACHE_DIR"] = str(TEST_CACHE)
    engine = Engine()
    engine.load_sync("demo")
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tiny_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama whose chat template takes tools (mlx-lm picks its `json_tools` parser)."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-tools", tools=True, seed=2)
