"""Small helpers for driving the chat app in Pilot tests."""

from __future__ import annotations

import asyncio
from typing import Any

from pilot_helpers import until
from textual.pilot import Pilot
from textual.widget import Widget

from mlxchat.ui.app import ChatApp
from mlxchat.ui.screens.chat import ChatScreen
from mlxchat.ui.screens.models import ModelChoice

SIZE = (100, 30)
"""The terminal size of the Pilot tests."""

MODELS = [
    ModelChoice("demo", "demo", 98_000_000, "~/.cache/mlxchat/models/demo"),
    ModelChoice(
        "mlx-community/Qwen2.5-0.5B-Instruct-4bit",
        "hf",
        278_000_000,
        "~/.cache/huggingface/hub/models--mlx-community--Qwen2.5-0.5B-Instruct-4bit",
    ),
    ModelChoice("tiny-llama", "mlx", 1_200_000, "/models/tiny-llama"),
]
"""A fixed model list for the picker (deterministic snapshots)."""

MARKDOWN_PIECES = [
    "Here is",
    " a first paragraph that is long enough to wrap over more than one line of the",
    " screen, and it keeps",
    " growing token by token",
    ".\n\n",
    "- one\n",
    "- two",
    "\n\n```python\n",
    "def add(a, b):\n",
    "    return a + b\n",
    "```\n\nThe end",
    ".",
]
"""A streamed answer: a paragraph growing over several pieces, a list, a code block."""


def model_settled(screen: ChatScreen) -> bool:
    """Whether no model is loading, as the status bar shows."""
    return screen.status.state != "loading"


async def ready(pilot: Pilot) -> ChatScreen:
    """Wait for the chat screen and its model; return the screen."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    await until(pilot, lambda: isinstance(app.screen, ChatScreen))
    screen = app.chat_screen
    engine = screen.engine
    await until(pilot, lambda: engine.model_info is not None and model_settled(screen))
    return screen


async def type_text(pilot: Pilot, text: str) -> None:
    """Put `text` in the prompt as if typed (fast: one edit, then a pause)."""
    screen = pilot.app.chat_screen  # type: ignore[attr-defined]
    screen.prompt.insert(text)
    await pilot.pause()


async def send(pilot: Pilot, text: str, *, wait: bool = True) -> ChatScreen:
    """Type `text`, press Enter, and (by default) wait until the answer ended."""
    screen = pilot.app.chat_screen  # type: ignore[attr-defined]
    await type_text(pilot, text)
    await pilot.press("enter")
    await pilot.pause()
    if wait:
        await until(pilot, lambda: not screen.answering)
        await pilot.pause()
    return screen


async def shown(pilot: Pilot) -> list[str]:
    """The text of every notification on screen now (title and message)."""
    await pilot.pause()
    return [f"{n.title}: {n.message}" for n in pilot.app._notifications]


async def settle(seconds: float = 0.05) -> None:
    """Give background tasks a moment."""
    await asyncio.sleep(seconds)


class CountsLayouts(Widget):
    """Counts the layouts a widget asks for (`layouts`); list it after the widget's class."""

    layouts = 0

    def refresh(self, *regions: Any, layout: bool = False, **options: Any) -> Any:
        self.layouts += layout
        return super().refresh(*regions, layout=layout, **options)
