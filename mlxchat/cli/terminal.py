"""What the commands check about their terminal, pipes and input bytes.

- The TUIs need a terminal: without one they print one line and exit 2 (never draw into a
  pipe).
- Input text must be UTF-8: anything else is one clear line naming where it is, exit 2 (a
  prompt silently changed by replacement characters would be answered as a different text).
- A reader that goes away (`| head`) ends the output quietly with exit 0, as Unix tools do.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from mlxchat.cli.errors import fail


def has_terminal() -> bool:
    """Whether stdin, stdout and stderr are all terminals (Textual draws on stderr)."""
    streams = (sys.stdin, sys.stdout, sys.stderr)
    try:
        return all(stream is not None and stream.isatty() for stream in streams)
    except ValueError:  # a closed stream
        return False


def require_terminal(message: str) -> None:
    """Exit 2 with `message` unless the program runs in a terminal."""
    if not has_terminal():
        fail(message)


def check_utf8(text: str, what: str) -> str:
    """`text` from the command line, or one clear line when it was not valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # undecodable argv bytes arrive as surrogates
        fail(f"{what} is not valid UTF-8 (character {error.start + 1})")
    return text


def read_utf8(path: Path | None, what: str) -> str:
    """The text of `path` (stdin when None), or one clear line naming the first bad line."""
    if path is None:
        data = sys.stdin.buffer.read()
        name = "stdin"
    else:
        if not path.is_file():
            fail(f"{what} file '{path}' does not exist")
        data = path.read_bytes()
        name = str(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        fail(
            f"{name}: line {line} is not valid UTF-8 (byte {column}); "
            "convert it to UTF-8 (e.g. with iconv)"
        )


@contextlib.contextmanager
def quiet_when_reader_leaves() -> Iterator[None]:
    """End the command with exit 0 and no traceback when stdout's reader has gone."""
    try:
        yield
    except BrokenPipeError:
        # Later writes and the flush at exit go nowhere instead of failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise typer.Exit(0) from None
