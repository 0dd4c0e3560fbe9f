"""The real `mlxchat` in a real terminal (tmux): type a question, read the answer off the screen."""

from __future__ import annotations

import shlex
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from terminal_harness import Terminal, mlxchat_command

pytestmark = [
    pytest.mark.terminal,
    pytest.mark.demo,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def chat_command(tmp_path: Path) -> str:
    """The shell command that runs the chat on the demo model, its data under `tmp_path`."""
    return mlxchat_command(tmp_path)  # default settings


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(chat_command(tmp_path))
    yield term
    term.close()


def test_the_demo_answers_well_with_default_settings(terminal: Terminal, tmp_path: Path) -> None:
    terminal.wait_for("demo", timeout=30)  # the app painted before the model is ready
    terminal.type("What is the capital of France?", "Enter")
    screen = terminal.wait_for("Paris", timeout=240)
    assert "What is the capital of France?" in screen
    terminal.type("/quit", "Enter")
    deadline = time.monotonic() + 15
    while terminal.alive and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not terminal.alive, "the app did not quit on /quit"
    with sqlite3.connect(tmp_path / "data" / "history.sqlite3") as db:
        rows = db.execute("SELECT role, content FROM messages ORDER BY id").fetchall()
    assert rows[0] == ("user", "What is the capital of France?")
    assert rows[1][0] == "assistant" and "Paris" in rows[1][1]


@pytest.mark.parametrize("flag", ["--resume", "-c"])
def test_resume_without_an_id_opens_the_latest_chat(tmp_path: Path, flag: str) -> None:
    from mlxchat.store.history import HISTORY_FILE, History

    with History.open(tmp_path / "data" / HISTORY_FILE) as history:
        for text in ("An older chat", "The newest chat"):
            history.add_message(history.new_conversation(), "user", text)
    data, config = shlex.quote(str(tmp_path / "data")), shlex.quote(str(tmp_path / "config"))
    env = f"env MLXCHAT_DATA_DIR={data} MLXCHAT_CONFIG_DIR={config} TERM=xterm-256color"
    program = f"{shlex.quote(sys.executable)} -m mlxchat"
    term = Terminal(f"{env} {program} {flag} --model {shlex.quote(str(tmp_path / 'none'))}")
    try:
        screen = term.wait_for("The newest chat", timeout=60)
        assert "An older chat" not in screen
    finally:
        term.close()


def test_a_message_typed_on_three_lines_is_shown_on_three_lines(terminal: Terminal) -> None:
    terminal.wait_for("demo", timeout=30)
    terminal.type("first line", "C-j", "second line", "C-j", "third line", "Enter")
    deadline = time.monotonic() + 30
    while "first line" not in (screen := terminal.screen()) or "Message (/" not in screen:
        assert time.monotonic() < deadline, f"the message was not sent; screen:\n{screen}"
        time.sleep(0.25)
    rows = screen.splitlines()
    first = next(i for i, row in enumerate(rows) if "first line" in row)
    assert "you" in rows[first - 1], "\n".join(rows)
    assert "second line" in rows[first + 1], "\n".join(rows)
    assert "third line" in rows[first + 2], "\n".join(rows)
