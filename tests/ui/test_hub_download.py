"""The chat on the real engine while a model comes from the Hub (a slow loopback endpoint):
the download's progress on the status bar, Esc or another /model stops it, the old model stays."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import HubServer, model_repos
from textual.widgets import Label

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.store.history import History
from mlxchat.ui.app import ChatApp

from .helpers import SIZE, ready, send, until


@pytest.fixture
def server(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HubServer]:
    repos = model_repos(tiny_llama, random.Random(0).randbytes(16 << 20))
    with HubServer(repos, bytes_per_second=1e6) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_HOME"):
            monkeypatch.delenv(name, raising=False)
        yield srv


async def test_esc_or_another_model_stops_a_download(
    server: HubServer, tiny_llama: Path, history: History, tmp_path: Path
) -> None:
    engine = Engine(progress_interval=0.05)
    settings = Settings(model=str(tiny_llama), theme="mlxchat-dark", temp=0.0, max_tokens=8)
    app = ChatApp(engine, settings, history, list_models=lambda: [])
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await ready(pilot)
            screen.load_model("org/big")  # what /model org/big and the picker do
            await until(pilot, lambda: "MB/s" in screen.status.detail, timeout=60)
            assert screen.status.model == "org/big" and screen.status.state == "loading"
            assert " MB · " in screen.status.detail and "/2 files" in screen.status.detail
            # The download holds no engine thread: the model loaded before answers meanwhile.
            await send(pilot, "Hello")
            answer = screen.chat.turns[-1]
            assert answer.role == "assistant" and answer.content
            await until(pilot, lambda: "MB/s" in screen.status.detail)  # still downloading
            await pilot.press("escape")
            await until(pilot, lambda: screen.status.state != "loading", timeout=30)
            assert engine.model_info is not None and engine.model_info.name == str(tiny_llama)
            assert screen.status.model == str(tiny_llama)
            blobs = tmp_path / "hf" / "models--org--big" / "blobs"
            await until(pilot, lambda: _partial(blobs) > 0, timeout=30)
            kept = _partial(blobs)
            # Again: it resumes; then another model asked for stops it and loads.
            screen.load_model("org/big")
            await until(pilot, lambda: "MB/s" in screen.status.detail, timeout=60)
            screen.load_model("org/tiny")
            await until(
                pilot,
                lambda: engine.model_info is not None and engine.model_info.name == "org/tiny",
                timeout=60,
            )
            gets = [r for r in server.gets("model.safetensors") if r.path.startswith("/org/big/")]
            assert gets[0].headers.get("Range") is None
            assert gets[-1].headers.get("Range", "").startswith("bytes=")
            assert int(gets[-1].headers["Range"][6:-1]) >= kept
            assert not (blobs / "model.safetensors").exists()
    finally:
        engine.cancel()


def _partial(blobs: Path) -> int:
    return sum(p.stat().st_size for p in blobs.glob("*.incomplete"))


async def test_the_picker_takes_a_hub_id(
    server: HubServer, tiny_llama: Path, history: History
) -> None:
    engine = Engine(progress_interval=0.05)
    settings = Settings(model=str(tiny_llama), theme="mlxchat-dark", temp=0.0)
    app = ChatApp(engine, settings, history, list_models=lambda: [])
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await ready(pilot)
            await pilot.press("f2")
            await until(pilot, lambda: type(app.screen).__name__ == "ModelPicker")
            for key in "org/tiny":
                await pilot.press(key if key != "/" else "slash")
            note = app.screen.query_one(".picker--empty", Label)
            assert "Enter downloads org/tiny from the Hugging Face Hub" in str(note.content)
            await pilot.press("enter")
            await until(
                pilot,
                lambda: engine.model_info is not None and engine.model_info.name == "org/tiny",
                timeout=60,
            )
            assert screen.status.model == "org/tiny"
    finally:
        engine.cancel()


async def test_a_local_folder_named_like_a_repo_is_not_fetched(
    server: HubServer, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-m org/tiny` where ./org/tiny is a model folder: the folder, no request."""
    monkeypatch.chdir(tiny_llama.parent.parent)
    name = f"{tiny_llama.parent.name}/{tiny_llama.name}"
    engine = Engine()
    try:
        info = await engine.load(name)
        assert info.path == name and server.requests == []
    finally:
        engine.cancel()
