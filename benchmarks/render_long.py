"""A very long chat: how long a resumed 10,000-message chat takes to open, and a page scroll.

The real `ChatApp` (scripted engine, headless, 120x40) resumes a saved chat of `--messages`
messages (Markdown answers with lists and code, as render_throughput.py writes them). It
prints: the time from asking for the chat to the end of the first paint of its bottom; the
time of each of `--pages` PageUp scrolls (from the key to the end of its paint) while the
rest of the chat is still being laid out, then once it is; the time to the top (Home) and
back; and how long laying out the whole chat took in the background.

MLXCHAT_CODE points it at another checkout (render_ab.py style): code before the one-widget
transcript mounts the newest messages only, and shows earlier ones a page at a time.

    python benchmarks/render_long.py [--messages 10000] [--pages 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("MLXCHAT_CODE") or str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_throughput import (  # noqa: E402
    ScriptedEngine,
    chat_opened,
    fill_history,
    machine,
    script_tokens,
    scripted_app,
    setup,
)


class Paints:
    """Records the end of every screen paint."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def install(self) -> None:
        from textual.screen import Screen

        original = Screen._compositor_refresh
        paints = self

        def refresh(screen: Screen) -> None:
            original(screen)
            paints.times.append(time.perf_counter())

        Screen._compositor_refresh = refresh  # type: ignore[method-assign]

    async def next_after(self, start: float, timeout: float = 30.0) -> float:
        """Seconds from `start` to the end of the first paint after it."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            later = [t for t in self.times if t > start]
            if later:
                return later[0] - start
            await asyncio.sleep(0.0005)
        raise TimeoutError("no paint")


def fully_laid_out(conversation: Any) -> bool:
    """Whether the transcript has laid out every message (code before it: always)."""
    return bool(getattr(conversation, "laid_out", True))


async def page_ups(pilot: Any, paints: Paints, count: int) -> list[float]:
    """Press PageUp in the transcript `count` times; each one's time to its paint."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await pilot.press("pageup")
        times.append(await paints.next_after(start))
        await pilot.pause(0.02)
    return times


def summary(times: list[float]) -> str:
    ms = [t * 1e3 for t in times]
    return f"median {statistics.median(ms):6.1f} ms, max {max(ms):6.1f} ms ({len(ms)} pages)"


async def long_chat(messages: int, pages: int) -> None:
    from mlxchat.store.history import History

    history = History.in_memory()
    start = time.perf_counter()
    cid = fill_history(history, messages)
    print(f"filled a saved chat of {messages:,} messages in {time.perf_counter() - start:.1f} s")
    engine = ScriptedEngine(script_tokens(10), 11.0)
    paints = Paints()
    paints.install()
    app = scripted_app(engine, history)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await chat_opened(app, engine)
        await pilot.pause(0.3)
        conversation = screen.conversation
        start = time.perf_counter()
        await screen.commands.resume_chat(cid)
        loaded = time.perf_counter() - start
        opened = await paints.next_after(start + loaded)
        laying_since = time.perf_counter()
        print(
            f"open: {loaded * 1e3:.0f} ms to load the chat, {(loaded + opened) * 1e3:.0f} ms"
            " to the end of its first paint"
        )
        conversation.focus()  # PageUp scrolls it (the prompt passes it on when short too)
        await pilot.pause()
        early = await page_ups(pilot, paints, pages)
        still = "" if fully_laid_out(conversation) else " (the rest still being laid out)"
        print(f"PageUp right after opening{still}: {summary(early)}")
        while not fully_laid_out(conversation):
            await asyncio.sleep(0.05)
        done = time.perf_counter() - laying_since
        if hasattr(conversation, "laid_out"):
            print(f"every message laid out {done:.1f} s after the first paint")
        later = await page_ups(pilot, paints, pages)
        print(f"PageUp once laid out: {summary(later)}")
        for key in ("home", "end"):
            start = time.perf_counter()
            await pilot.press(key)
            await pilot.pause(0.05)  # (code before: earlier messages come back meanwhile)
            moved = await paints.next_after(start)
            print(f"{key.capitalize()}: {moved * 1e3:.1f} ms to the paint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()
    setup()
    import textual

    print(f"machine: {machine()}; textual {textual.__version__}")
    asyncio.run(long_chat(args.messages, args.pages))


if __name__ == "__main__":
    main()
