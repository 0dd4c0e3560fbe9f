"""Helpers for driving the translate screen in Pilot tests."""

from __future__ import annotations

import re

from pilot_helpers import until
from textual.pilot import Pilot
from textual.widgets import Input
from ui.fake_engine import FakeEngine

from mlxchat.ui.translate.app import TranslateApp
from mlxchat.ui.translate.screen import TranslateScreen

SIZE = (120, 36)
"""The terminal size of the Pilot and snapshot tests."""


def loaded_engine() -> FakeEngine:
    """A scripted engine with "fake-model" loaded."""
    return FakeEngine(loaded="fake-model")


async def screen_of(pilot: Pilot) -> TranslateScreen:
    """Wait until the translate screen is up; return it."""
    app = pilot.app
    assert isinstance(app, TranslateApp)
    await until(pilot, lambda: isinstance(app.screen, TranslateScreen))
    await pilot.pause()
    return app.translate_screen


async def idle(pilot: Pilot, screen: TranslateScreen, timeout: float = 10.0) -> None:
    """Wait until nothing is queued, played or translated."""
    await until(pilot, lambda: screen.runner.ready and not screen.busy, timeout)
    await pilot.pause()


async def type_words(pilot: Pilot, text: str, *, keys: bool = False) -> None:
    """Type `text` into the source input: key by key with `keys` (slow: ~65 ms a key under
    Pilot), else a word (with the space after it) at a time, as if typed very fast."""
    if keys:
        for ch in text:
            await pilot.press(ch)
        return
    field = pilot.app.screen.query_one("#source-input", Input)
    for piece in re.findall(r"\S*\s*", text):
        if piece:
            field.insert_text_at_cursor(piece)
            await pilot.pause()
