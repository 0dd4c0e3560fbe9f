"""Tools in a real terminal (tmux): the real MCP server `mcp-server-time` from PyPI, the
chat app on the scripted engine (tests/mcp_servers/scripted_chat.py; the demo model cannot
call tools), the whole flow: the call shown, approval asked and given, the result folded,
the answer going on, the chat resumed with the call in it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from terminal_harness import Terminal

from mlxchat.store.history import HISTORY_FILE, History

pytestmark = [
    pytest.mark.terminal,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

SCRIPT = Path(__file__).parent / "mcp_servers" / "scripted_chat.py"
TIME_SERVER = Path(sys.executable).parent / "mcp-server-time"


def command(tmp_path: Path, *args: str) -> str:
    env = {
        "MLXCHAT_DATA_DIR": str(tmp_path / "data"),
        "MLXCHAT_CONFIG_DIR": str(tmp_path / "config"),
        "MLXCHAT_CACHE_DIR": os.environ["MLXCHAT_CACHE_DIR"],
        "TERM": "xterm-256color",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    words = " ".join(shlex.quote(a) for a in (str(SCRIPT), str(tmp_path / "data"), *args))
    return f"env {exports} {shlex.quote(sys.executable)} {words}"


def flat(screen: str) -> str:
    """The screen's text without the transcript's bars, lines joined by spaces."""
    return " ".join(line.strip(" ▌▊▎") for line in screen.splitlines())


@pytest.mark.skipif(not TIME_SERVER.exists(), reason="mcp-server-time is not installed")
def test_a_real_mcp_server_called_approved_answered_and_resumed(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(
        f'[mcp.servers.time]\ncommand = "{TIME_SERVER}"\nargs = ["--local-timezone", "UTC"]\n'
    )
    term = Terminal(command(tmp_path), width=110, height=40)
    try:
        term.wait_for("● scripted │ idle", 60)
        server_ready(term)
        term.send("What time is it in Paris?", timing="burst")
        term.type("Enter")
        screen = term.wait_for("Run get_current_time (time)?", 30)
        assert "tool call time · get_current_time" in screen
        assert '"timezone": "Europe/Paris"' in screen
        assert "y/Enter once · a always · n refuse" in screen
        term.type("y")
        screen = term.wait_for("the time in Paris.", 60)
        assert "tool: get_current_time" in screen
        assert '"timezone": "Europe/Paris",' in screen and '"datetime": "' in screen
        assert "more line" in screen  # folded: its first lines
        term.type("C-q")
        assert term.wait_exit(30) == 0
    finally:
        term.close()
    with History.open(tmp_path / "data" / HISTORY_FILE) as history:
        [chat] = history.list_conversations()
        saved = history.get_conversation(chat.id)
    assert saved is not None
    assert [m.role for m in saved.messages] == ["user", "assistant", "tool", "assistant"]
    result = json.loads(saved.messages[2].content)
    assert result["timezone"] == "Europe/Paris" and result["datetime"]
    again = Terminal(command(tmp_path, str(chat.id)), width=110, height=40)
    try:
        screen = again.wait_for("the time in Paris.", 60)
        assert "get_current_time" in screen and '"timezone": "Europe/Paris",' in screen
        assert "tool: get_current_time" in screen
        again.type("C-q")
        assert again.wait_exit(30) == 0
    finally:
        again.close()


def server_ready(term: Terminal, attempts: int = 30) -> None:
    """/tools until it lists the time server ready (it starts in the background)."""
    for _ in range(attempts):
        term.send("/tools", timing="burst")
        term.type("Enter")
        try:
            term.wait_for("time: ready", 3)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the time server did not start:\n{term.screen()}")
