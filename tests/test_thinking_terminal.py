"""A thinking model in the real chat, in a real terminal (tmux): the reasoning folds into
one line when the answer begins, and `t` on the message cursor unfolds and folds it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from terminal_harness import Terminal, mlxchat_command

pytestmark = [
    pytest.mark.terminal,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def test_thinking_folds_and_t_unfolds_it(tmp_path: Path, tiny_thinking: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text("thinking_budget = 6\nmax_tokens = 14\n")
    term = Terminal(mlxchat_command(tmp_path, "-m", str(tiny_thinking)), width=110, height=36)
    try:
        term.wait_until(lambda s: "│ idle" in s, 90, "the model loaded")
        term.send("Tell me about the fox.")
        term.type("Enter")
        screen = term.wait_for("▸ thought for", 60)
        assert "6 tokens" in screen and "think>" not in screen
        term.wait_until(lambda s: "│ idle" in s, 60, "the answer ended")
        term.type("C-Up")  # the message cursor, on the answer
        term.wait_for("t thinking", 10)
        term.type("t")
        term.wait_for("▾ thought for", 10)
        term.type("t")
        term.wait_for("▸ thought for", 10)
        term.type("Escape")
        term.type("C-q")
        assert term.wait_exit(30) == 0
    finally:
        term.close()
