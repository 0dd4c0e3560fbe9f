"""SVG snapshots of the chat screen, driven by the scripted engine (stable output).

Deterministic: fixed stats from the fake engine, a fixed model list, no cursor blink, the
status bar's timer given time to paint. Update them after a deliberate change with
``pytest tests/ui/test_snapshots.py --snapshot-update`` and look at the SVGs under
``__snapshots__/`` before committing.
"""

from __future__ import annotations

from textual.pilot import Pilot

from .fake_engine import FakeEngine
from .helpers import ready, send, until

SIZE = (100, 30)

ANSWER = [
    "Here",
    " is",
    " a",
    " **quick**",
    " example",
    ":\n\n",
    "```python\n",
    "def add(a, b):\n",
    "    return a + b\n",
    "```\n\n",
    "- it",
    " adds",
    " two",
    " numbers\n",
    "- it",
    " returns",
    " the",
    " sum\n\n",
    "Use",
    " it",
    " like",
    " `add(1, 2)`",
    ".",
]


async def settle(pilot: Pilot) -> None:
    """No cursor blink; let the status bar's timer paint the latest numbers."""
    for screen in pilot.app.screen_stack:
        for widget in screen.query("*"):
            if hasattr(widget, "cursor_blink"):
                widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause(0.35)
    await pilot.pause()


def test_empty_chat(snap_compare, make_app) -> None:
    """The welcome text, the prompt, the status bar (model loaded, idle) and the footer."""

    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_answer_mid_stream(snap_compare, make_app, engine: FakeEngine) -> None:
    """An answer being written: Markdown so far (code, list), the live status bar."""
    engine.answers = [ANSWER]
    engine.hold_after(14)

    async def run_before(pilot: Pilot) -> None:
        screen = await ready(pilot)
        await send(pilot, "Show me a Python function that adds numbers.", wait=False)
        await until(pilot, lambda: engine.current is not None and engine.current.held.is_set())
        await until(pilot, lambda: screen.conversation.messages[-1].source.endswith("numbers\n"))
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_finished_answer_and_status_bar(snap_compare, make_app, engine: FakeEngine) -> None:
    """A finished answer with its numbers; the status bar says old messages were left out."""
    engine.answers = [ANSWER]
    engine.dropped = 3

    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        await send(pilot, "Show me a Python function that adds numbers.")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_narrow_status_bar(snap_compare, make_app, engine: FakeEngine) -> None:
    """On a narrow terminal the status bar keeps the most useful numbers."""

    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        await send(pilot, "Hi")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(60, 20), run_before=run_before)


def test_help_screen(snap_compare, make_app) -> None:
    """/help lists every command (from the command table) and the keys."""

    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        await send(pilot, "/help")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(100, 40), run_before=run_before)


def test_model_picker(snap_compare, make_app) -> None:
    """/models: the local models (a fixed list here), the one in use marked."""

    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        await send(pilot, "/models")
        await pilot.pause()
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_error_notification(snap_compare, make_app) -> None:
    """A wrong argument: an error notification with the usage; the text stays, selected."""

    async def run_before(pilot: Pilot) -> None:
        screen = await ready(pilot)
        screen.prompt.insert("/temp hot")
        await pilot.press("escape", "enter")  # close the completion list, then run it
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_command_completion(snap_compare, make_app) -> None:
    """Typing "/t" lists the matching commands above the prompt."""

    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        await pilot.press("/", "t")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
