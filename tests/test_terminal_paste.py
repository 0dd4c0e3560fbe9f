"""Pastes into the real `mlxchat` in tmux: bytes that are not UTF-8, escape sequences and
^Q inside a bracketed paste, and hundreds of lines without bracketed paste while an answer
streams. The app must stay up and responsive, show the bytes as text, and save the chat."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_terminal import Terminal, chat_command
from test_terminal import pytestmark as pytestmark  # tmux and the demo model

ESCAPES = b"red \x1b[31mtext\x1b[0m, quit \x11, palette \x10, end of paste"


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[Terminal]:
    """The chat on the demo model in tmux."""
    term = Terminal(chat_command(tmp_path))
    yield term
    term.close()


def paste(term: Terminal, data: bytes, tmp_path: Path, *, bracketed: bool) -> None:
    """Paste `data` as tmux does (newlines arrive as Enter), bracketed or not."""
    source = tmp_path / "paste.bin"
    source.write_bytes(data)
    subprocess.run(["tmux", "load-buffer", "-b", term.name, str(source)], check=True)
    flags = ["-p"] if bracketed else []
    subprocess.run(["tmux", "paste-buffer", *flags, "-d", "-b", term.name, "-t", term.name])


def quit_app(term: Terminal) -> None:
    term.type("C-q")
    deadline = time.monotonic() + 15
    while term.alive and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not term.alive, "the app did not quit on Ctrl+Q"


def test_bytes_that_are_not_utf8_are_pasted_as_replacement_characters(
    chat: Terminal, tmp_path: Path
) -> None:
    chat.wait_for("Message (/ for commands)", timeout=30)
    paste(chat, b"\xff\xfe\x98" * 1000 + b"<- not UTF-8", tmp_path, bracketed=False)
    screen = chat.wait_for("<- not UTF-8", timeout=20)
    assert "\ufffd" * 20 in screen
    quit_app(chat)


def test_escape_sequences_and_control_keys_in_a_paste_are_text(
    chat: Terminal, tmp_path: Path
) -> None:
    chat.wait_for("Message (/ for commands)", timeout=30)
    paste(chat, ESCAPES, tmp_path, bracketed=True)
    screen = chat.wait_for("end of paste", timeout=20)
    assert r"red \x1b[31mtext\x1b[0m, quit \x11, palette \x10, end of paste" in screen
    time.sleep(1)
    assert chat.alive, "the paste ended the app"
    assert "Search for commands" not in chat.screen(), "^P opened the command palette"
    quit_app(chat)


def test_a_long_paste_while_an_answer_streams(chat: Terminal, tmp_path: Path) -> None:
    chat.wait_for("Message (/ for commands)", timeout=30)
    chat.type("Tell me a long story about a dragon.", "Enter")
    chat.wait_for("generating", timeout=240)
    lines = "".join(f"pasted line {i} of a text that is long enough to wrap\n" for i in range(400))
    started = time.monotonic()
    paste(chat, lines.encode(), tmp_path, bracketed=False)
    chat.type("Escape")
    screen = chat.wait_for("stopped", timeout=10)
    assert time.monotonic() - started < 10
    assert "pasted line 399" in chat.wait_for("pasted line 399", timeout=10)
    assert screen.count("Busy") <= 1, screen
    quit_app(chat)
    with sqlite3.connect(tmp_path / "data" / "history.sqlite3") as db:
        rows = db.execute("SELECT role, content, finish_reason FROM messages ORDER BY id")
        rows = rows.fetchall()
    assert rows[0][:2] == ("user", "Tell me a long story about a dragon.")
    assert rows[1][0] == "assistant" and rows[1][1] and rows[1][2] == "cancelled"
    assert len(rows) == 2, "a pasted line was sent as a message"
