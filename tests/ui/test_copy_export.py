"""/copy, /copy code, /export and where notices show, driven by the scripted engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import screen_rows
from textual.widgets import Label

from mlxchat.ui.commands import COMMANDS, completions
from mlxchat.ui.screens.help import help_markdown
from mlxchat.ui.screens.history import HistoryScreen

from .fake_engine import DEFAULT_ANSWER, FakeEngine
from .helpers import SIZE, ready, send, shown, until

ANSWER = "".join(DEFAULT_ANSWER)

CODE_ANSWER = [
    "Two ways:\n\n",
    "```python\n",
    "def add(a, b):\n",
    "    return a + b\n",
    "```\n\n",
    "or in the shell:\n\n",
    "```sh\n",
    "echo $((1 + 2))\n",
    "```\n",
]


async def test_copy_says_it_sent_osc52_and_how_it_can_fail(make_app, monkeypatch) -> None:
    """The notice says what was sent where (OSC 52), not that it surely arrived; in tmux,
    how to let it through."""
    monkeypatch.delenv("TMUX", raising=False)
    copied: list[str] = []
    app = make_app()
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hi")
        app.clear_notifications()
        assert await screen.submit("/copy")
        assert copied == [ANSWER]
        [notice] = await shown(pilot)
        assert f"Sent the last answer ({len(ANSWER)} characters)" in notice
        assert "clipboard (OSC 52)" in notice and "some terminals ignore it" in notice
        assert "Copied" not in notice and "tmux" not in notice

        monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,1234,0")
        app.clear_notifications()
        assert await screen.submit("/copy")
        [notice] = await shown(pilot)
        assert "OSC 52" in notice and "set -g set-clipboard on" in notice


async def test_copy_code_copies_one_block_of_the_last_answer(
    make_app, engine: FakeEngine, monkeypatch
) -> None:
    """/copy code: the last code block of the last answer; /copy code N: the N-th (from 1);
    an answer without code, or N past its blocks, is an error that copies nothing."""
    engine.answers = [CODE_ANSWER, list(DEFAULT_ANSWER)]
    copied: list[str] = []
    app = make_app()
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert not await screen.submit("/copy code")  # no answer yet
        await send(pilot, "Add two numbers")
        assert await screen.submit("/copy code")
        assert await screen.submit("/copy code 1")
        assert await screen.submit("/copy CODE 2")
        assert copied == ["echo $((1 + 2))", "def add(a, b):\n    return a + b", "echo $((1 + 2))"]
        assert any("code block 1 of 2" in n for n in await shown(pilot))

        app.clear_notifications()
        for wrong in ("/copy code 3", "/copy code 0", "/copy code two", "/copy codes"):
            assert not await screen.submit(wrong)
            screen.prompt.reset()
        errors = await shown(pilot)
        assert "The last answer has 2 code blocks, not 3." in errors[0]
        assert all("usage: /copy [code [N]]" in e for e in errors[1:])

        await send(pilot, "Hi")  # an answer without code: N counts in the last answer only
        app.clear_notifications()
        assert not await screen.submit("/copy code")
        assert any("The last answer has no code block." in n for n in await shown(pilot))
        assert len(copied) == 3


def test_copy_code_is_in_help_and_completion() -> None:
    """/help and completion show the code argument (they read the command table)."""
    assert "| `/copy [code [N]]` |" in help_markdown()
    assert ("/copy [code [N]]", COMMANDS["copy"].help) in completions(None, "/cop")  # type: ignore[arg-type]
    assert completions(None, "/copy c") == [("/copy code", "")]  # type: ignore[arg-type]


async def test_export_notice_shows_the_absolute_path(make_app, tmp_path: Path, monkeypatch) -> None:
    """The notice names the file written by its absolute path; by default it goes to the
    data dir's exports/ (not wherever the app was started), a relative PATH is from here."""
    work = tmp_path / "checkout"
    work.mkdir()
    monkeypatch.chdir(work)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Plan a trip to Paris!")
        exports = tmp_path / "data" / "exports"
        for command, written in (
            ("/export", exports / "plan-a-trip-to-paris.md"),
            ("/export", exports / "plan-a-trip-to-paris-2.md"),
            ("/export chat.md", work / "chat.md"),
        ):
            app.clear_notifications()
            assert await screen.submit(command)
            assert written.exists()
            [notice] = await shown(pilot)
            assert str(written) in notice
        assert sorted(p.name for p in work.iterdir()) == ["chat.md"]


@pytest.mark.parametrize("size", [SIZE, (80, 24)])
async def test_history_note_fits(make_app, size: tuple[int, int]) -> None:
    """The saved chats' note line (keys, the shell's --resume) is shown whole."""
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        await send(pilot, "Hi")
        await send(pilot, "/history")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.pause()
        note = str(app.screen.query_one(".history--note", Label).content)
        assert "Esc closes" in note and "--resume ID" in note
        assert any(note in row for row in screen_rows(app))


async def test_notices_leave_the_status_bar_visible(make_app) -> None:
    """A notice shows without hiding the status bar's numbers (nor the prompt)."""
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hi")
        assert await screen.submit("/temp 0.5")
        await pilot.pause(0.3)
        rows = screen_rows(app)
        assert any("temp = 0.5" in row for row in rows)  # the notice is on screen
        status = rows[screen.status.region.y]
        for number in ("18.4 tok/s", "ctx 49/2k", "mem 520/610 MB"):
            assert number in status
        assert "Message (/ for commands)" in rows[screen.prompt.region.y + 1]
