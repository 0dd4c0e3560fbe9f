"""The real `mlxchat` in a real terminal (tmux): type a question, read the answer off the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.terminal,
    pytest.mark.demo,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Terminal:
    """A detached tmux session running one command."""

    def __init__(self, command: str, width: int = 110, height: int = 36) -> None:
        self.name = f"mlxchat-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                command,
            ],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    def type(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.25)
        raise AssertionError(
            f"{text!r} did not appear within {timeout} s; screen:\n{self.screen()}"
        )

    @property
    def alive(self) -> bool:
        return (
            subprocess.run(
                ["tmux", "has-session", "-t", self.name], capture_output=True, check=False
            ).returncode
            == 0
        )

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, check=False)


def chat_command(tmp_path: Path) -> str:
    """The shell command that runs the chat on the demo model, its data under `tmp_path`."""
    env = {
        "MLXCHAT_DATA_DIR": str(tmp_path / "data"),
        "MLXCHAT_CONFIG_DIR": str(tmp_path / "config"),
        "MLXCHAT_CACHE_DIR": os.environ["MLXCHAT_CACHE_DIR"],
        "TERM": "xterm-256color",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {exports} {shlex.quote(sys.executable)} -m mlxchat"  # default settings


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
