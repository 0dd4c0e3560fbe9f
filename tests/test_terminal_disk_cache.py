"""A long chat resumed in a real terminal answers without prefilling its history again: the
prompt cache's disk tier, on the real program and the demo model."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from terminal_harness import Terminal, mlxchat_command
from test_terminal import pytestmark as pytestmark  # tmux and the demo model

LOAD_TIMEOUT = 90
LONG_PROMPT = " ".join(f"Sentence number {n} is about the sea and the sky." for n in range(25))


def idle(screen: str) -> bool:
    return "● demo │ idle" in screen


def cached(screen: str) -> int:
    found = re.search(r"cached (\d+) tokens", screen)
    return int(found.group(1)) if found else 0


def start(command: str) -> Terminal:
    """A new terminal; tried again once when tmux's server was just going away (the last
    session closed): "server exited unexpectedly"."""
    try:
        return Terminal(command, width=160, height=40)
    except subprocess.CalledProcessError:
        time.sleep(1)
        return Terminal(command, width=160, height=40)


def test_a_resumed_chat_answers_from_the_cache_on_disk(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text("max_tokens = 8\n")
    term = Terminal(mlxchat_command(tmp_path), width=160, height=40)
    try:
        term.wait_until(idle, LOAD_TIMEOUT, "the model loaded")
        term.send(LONG_PROMPT, "paste")
        term.type("Enter")
        term.wait_for("prefill", 60)
        term.wait_until(idle, 300, "the first answer")
        term.type("C-q")
        assert term.wait_exit(60) == 0
    finally:
        term.close()
    assert list((tmp_path / "prompts").glob("*/*.safetensors"))
    term = start(mlxchat_command(tmp_path, "-c"))
    try:
        term.wait_until(idle, LOAD_TIMEOUT, "the chat resumed")
        term.send("And then?", "burst")
        term.type("Enter")
        screen = term.wait_until(lambda s: idle(s) and cached(s) > 0, 120, "the answer")
        assert cached(screen) > 300, screen  # the whole first exchange came from disk
        term.type("C-q")
        assert term.wait_exit(60) == 0
    finally:
        term.close()
