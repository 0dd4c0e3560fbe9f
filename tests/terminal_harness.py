"""Drive the real `mlxchat` in a real terminal (tmux): start it, wait on what the screen
shows, send keys the way terminals deliver them, read the screen.

Synchronisation is always on the screen (`wait_for`, `wait_until`), never a bare sleep;
the only sleeps are the pacing between keys that a timing scenario asks for.

Key timings (`Terminal.send`):
    burst: every character in one write (fast typing, SSH, a macro);
    paced: `chars` characters every `interval` seconds (a quick typist);
    paste: tmux's bracketed paste (the terminal wraps it in ESC[200~ … ESC[201~);
    raw_paste: a paste from a terminal without bracketed paste (plain keys in one write).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

SCREEN_POLL = 0.1
"""Seconds between two reads of the screen while waiting."""


class Terminal:
    """A detached tmux session running one command; keeps its pane after the command ends."""

    def __init__(self, command: str, width: int = 110, height: int = 36) -> None:
        self.name = f"mlxchat-test-{uuid.uuid4().hex[:8]}"
        self._status = Path(tempfile.mkdtemp(prefix="mlxchat-term-")) / "exit"
        wrapped = f"{command}; echo $? > {shlex.quote(str(self._status))}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height)]
            + ["sh", "-c", wrapped],
            check=True,
        )
        subprocess.run(
            ["tmux", "set-option", "-t", self.name, "remain-on-exit", "on"],
            capture_output=True,
            check=False,
        )

    # ----- reading ------------------------------------------------------------------------
    def screen(self) -> str:
        """The visible screen as text."""
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    def wait_until(self, test: Callable[[str], bool], timeout: float, what: str) -> str:
        """Wait until `test(screen)` holds; returns that screen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if test(screen):
                return screen
            if self.exit_code is not None:
                raise AssertionError(f"{what}: the program ended; screen:\n{self.screen()}")
            time.sleep(SCREEN_POLL)
        raise AssertionError(f"{what}: not within {timeout} s; screen:\n{self.screen()}")

    def wait_for(self, text: str, timeout: float) -> str:
        """Wait until `text` is on the screen; returns that screen."""
        return self.wait_until(lambda screen: text in screen, timeout, f"{text!r} on screen")

    @property
    def exit_code(self) -> int | None:
        """The program's exit code once it ended, else None."""
        try:
            return int(self._status.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def wait_exit(self, timeout: float) -> int:
        """Wait until the program ends; returns its exit code."""
        deadline = time.monotonic() + timeout
        while (code := self.exit_code) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the program did not end in {timeout} s:\n{self.screen()}")
            time.sleep(SCREEN_POLL)
        return code

    @property
    def alive(self) -> bool:
        """Whether the program is still running."""
        return self.exit_code is None

    # ----- keys ---------------------------------------------------------------------------
    def type(self, *keys: str) -> None:
        """tmux key names ("Enter", "C-q", "Up") or plain text, in one write."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def send(
        self, text: str, timing: str = "burst", *, chars: int = 2, interval: float = 0.1
    ) -> None:
        """Send literal `text` with the given timing (see the module docstring)."""
        if timing in ("burst", "raw_paste"):
            self._literal(text)
        elif timing == "paced":
            for start in range(0, len(text), chars):
                self._literal(text[start : start + chars])
                time.sleep(interval)
        elif timing == "paste":
            self.paste(text.encode(), bracketed=True)
        else:
            raise ValueError(f"unknown timing {timing!r}")

    def _literal(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)

    def paste(self, data: bytes, *, bracketed: bool) -> None:
        """Paste `data` as tmux does (newlines arrive as Enter), bracketed or not."""
        with tempfile.NamedTemporaryFile(suffix=".paste") as source:
            source.write(data)
            source.flush()
            subprocess.run(["tmux", "load-buffer", "-b", self.name, source.name], check=True)
        flags = ["-p"] if bracketed else []
        subprocess.run(
            ["tmux", "paste-buffer", *flags, "-d", "-b", self.name, "-t", self.name], check=True
        )

    def close(self) -> None:
        """End the session (and the program, if it still runs)."""
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, check=False)


def mlxchat_command(tmp_path: Path, *args: str) -> str:
    """The shell command that runs `mlxchat ARGS`, its config and data under `tmp_path`."""
    env = {
        "MLXCHAT_DATA_DIR": str(tmp_path / "data"),
        "MLXCHAT_CONFIG_DIR": str(tmp_path / "config"),
        "MLXCHAT_CACHE_DIR": os.environ["MLXCHAT_CACHE_DIR"],
        "MLXCHAT_PROMPTS_DIR": str(tmp_path / "prompts"),
        "TERM": "xterm-256color",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    words = " ".join(shlex.quote(arg) for arg in args)
    return f"env {exports} {shlex.quote(sys.executable)} -m mlxchat {words}".rstrip()
