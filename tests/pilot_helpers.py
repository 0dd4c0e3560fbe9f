"""What the chat and the translate Pilot tests share."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds (fails the test after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.01)


def screen_rows(app: Any) -> list[str]:
    """The characters of every row the terminal would show now (Textual's full repaint),
    trailing spaces left out. (Textual has no public call for the screen's rows: this asks
    its compositor, as `App.export_screenshot` does.)"""
    strips = app.screen._compositor.render_strips()
    return [strip.text.rstrip() for strip in strips]


def screenshot_text(app: Any) -> str:
    """The text of the app's screenshot (SVG), spaces as plain spaces."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")
