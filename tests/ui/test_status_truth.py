"""The status bar tells the truth: live prefill progress, speeds only once measured, the
context the next request holds, "messages left out" only while it is so."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxchat.config import Settings
from mlxchat.engine.blas_hint import SLOW_BLAS_HINT
from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Progress, Stats
from mlxchat.store.history import History
from mlxchat.ui.app import ChatApp
from mlxchat.ui.model_notice import base_model_notice
from mlxchat.ui.screens.chat import ChatScreen

from .fake_engine import FakeEngine
from .helpers import SIZE, model_settled, ready, send, shown, until


def line(screen: ChatScreen) -> str:
    """The status bar's text as painted now."""
    return str(screen.status.render())


async def test_speeds_and_memory_only_once_measured(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        screen.status.set_state("generating")
        first = Stats(generation_tokens=1, generation_tps=8623.0, prompt_tokens=1, prompt_tps=6.4)
        screen.status.set_stats(first)
        assert "tok/s" not in line(screen)  # one token: no speed, no prompt speed
        assert "mem" not in line(screen)  # active memory not known yet
        quick = Stats(generation_tokens=12, generation_tps=400.0, peak_memory=0.6)
        screen.status.set_stats(quick)
        assert "tok/s" not in line(screen)  # 12 tokens in 0.03 s
        measured = Stats(
            generation_tokens=12,
            generation_tps=18.4,
            prompt_tokens=300,
            prompt_tps=250.0,
            active_memory=0.52,
            peak_memory=0.61,
        )
        screen.status.set_stats(measured)
        text = line(screen)
        assert "18.4 tok/s" in text and "prompt 250 tok/s" in text and "mem 520/610 MB" in text


async def test_context_after_resume_and_system_prompt(make_app, history: History) -> None:
    cid = history.new_conversation()
    history.add_message(cid, "user", "one two three four")
    history.add_message(cid, "assistant", "five six seven", finish_reason="stop")
    app = make_app(resume=cid)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await until(pilot, lambda: "ctx 7/2k" in line(screen))  # the fake counts words
        await send(pilot, "/system Be brief and kind.")
        await until(pilot, lambda: "ctx 11/2k" in line(screen))
        await send(pilot, "/clear")
        await until(pilot, lambda: "ctx 4/2k" in line(screen))  # the system prompt stays


async def test_dropped_messages_shown_only_while_true(make_app, engine: FakeEngine) -> None:
    engine.dropped = 2
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "A long chat")
        assert "context full: 2 old messages left out" in line(screen)
        await send(pilot, "/system Short.")
        await until(pilot, lambda: "context full" not in line(screen))
        engine.dropped = 0
        await send(pilot, "Next")
        assert "context full" not in line(screen)


async def test_slow_blas_hint_is_shown_once(make_app, engine: FakeEngine) -> None:
    engine.notice = SLOW_BLAS_HINT
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "/model other")
        await until(pilot, lambda: engine.loads == ["fake", "other"] and model_settled(screen))
        hints = [n for n in await shown(pilot) if SLOW_BLAS_HINT in n]
        assert hints == [f"Slow CPU path: {SLOW_BLAS_HINT}"]


async def test_a_base_model_is_named_once_in_the_chat(make_app, engine: FakeEngine) -> None:
    engine.base_models = {"gemma-base"}
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert not [n for n in await shown(pilot) if "base model" in n]  # "fake" has a template
        for name in ("gemma-base", "fake", "gemma-base"):
            await send(pilot, f"/model {name}")
            await until(pilot, lambda n=name: engine.loads[-1] == n and model_settled(screen))
        notes = [n for n in await shown(pilot) if "base model" in n]
        assert notes == [f"Base model: {base_model_notice('gemma-base')}"]


@pytest.fixture
def slow_prefill_engine() -> Engine:
    """A real engine with a progress event at every prefill step of 16 tokens."""
    engine = Engine(progress_interval=0.0, prefill_step_size=16)
    yield engine
    engine.close()


async def test_prefill_progress_in_the_status_bar(
    slow_prefill_engine: Engine, tiny_llama: Path, history: History
) -> None:
    settings = Settings(model=str(tiny_llama), theme="mlxchat-dark", temp=0.0, max_tokens=4)
    app = ChatApp(slow_prefill_engine, settings, history, list_models=lambda: [])
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        shown: list[str] = []
        take = screen.status.set_progress

        def record(progress: Progress) -> None:
            take(progress)
            if progress.phase == "prefill":
                shown.append(line(screen))

        screen.status.set_progress = record  # type: ignore[method-assign]
        await send(pilot, "The quick brown fox jumps over the lazy dog. " * 20)
        assert len(shown) > 5
        assert "prefill 0/" in shown[0]
        assert any("prefill 16/" in text for text in shown)
        assert any("prefill 128/" in text for text in shown)
        total = shown[0].split("prefill 0/")[1].split()[0]
        assert all(f"/{total}" in text for text in shown)
        assert f"ctx {total}/" in shown[0]  # the context is the prompt's, not 0


def test_a_long_prefill_says_about_how_long_is_left() -> None:
    from mlxchat.engine.types import Stats
    from mlxchat.ui.rates import prefill_detail

    def at(done: int, total: int, tps: float) -> str:
        return prefill_detail(
            Progress("prefill", Stats(prompt_tokens=done, prompt_tps=tps), done, total)
        )

    assert at(500, 5540, 42.0) == "500/5540 at 42.0 tok/s, ~2 min left"
    assert at(500, 1000, 50.0) == "500/1000 at 50.0 tok/s, ~10 s left"
    assert at(500, 550, 50.0) == "500/550 at 50.0 tok/s"  # a second left: no estimate
