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
    return f"env {exports} {shlex.quote(sys.executable)} -m mlxchat --model demo --temp 0"


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(chat_command(tmp_path))
    yield term
    term.close()


def test_ask_the_demo_model_in_a_real_terminal(terminal: Terminal, tmp_path: Path) -> None:
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
