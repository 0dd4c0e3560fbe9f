"""The one place where mlxchat reaches into Textual's private internals: the input loop.

Verified against Textual 8.2.8 (pyproject pins `textual>=8.2,<9`): check each reach below
before moving the pin. Ruff's TID251 rule keeps `textual._*` imports out of every other
module. What is used that is not public API:

- `LinuxDriver.run_input_thread` is replaced (its loop is the same as Textual's), to put
  `TerminalInput` between the terminal and the key parser. Textual's own loop decodes
  stdin strictly (3,000 bytes that are not UTF-8 ended the app with a traceback), lets
  the bytes after an ESC inside a bracketed paste out as keys (an embedded ^Q quit the
  app), sends a paste from a terminal without bracketed paste as one key per character
  (each newline an Enter), and spins on a stdin at end of file.
- `textual._xterm_parser.XTermParser` and `textual._parser.ParseError`: the key parser
  the replaced loop feeds, as Textual's loop does.

Drawing needs nothing private: the transcript is one `ScrollView` drawn through Textual's
line API (`widgets/transcript.py`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import sys

from textual import events
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.driver import Driver

from mlxchat.ui.terminal_input import Pasted, TerminalInput

__all__ = ["safe_input_driver"]

READ_SIZE = 4096
BATCH_SIZE = 1 << 20
"""Bytes already waiting that are read together (one paste event instead of hundreds)."""


def safe_input_driver(chosen: type[Driver]) -> type[Driver]:
    """The driver to run an app with: Textual's Linux/macOS one gets the safe input loop."""
    if sys.platform == "win32":
        return chosen
    from textual.drivers.linux_driver import LinuxDriver

    if chosen is not LinuxDriver:  # headless, web, or a driver asked for by name
        return chosen
    return _safe_linux_driver()


@functools.cache
def _safe_linux_driver() -> type[Driver]:
    from textual.drivers.linux_driver import LinuxDriver

    class SafeInputDriver(LinuxDriver):
        """Textual's Linux driver whose input thread reads pastes as text."""

        def run_input_thread(self) -> None:
            """Wait for input and dispatch keys and pastes (replaces Textual's loop)."""
            parser = XTermParser(self._debug)
            terminal_input = TerminalInput()
            selector = selectors.SelectSelector()
            selector.register(self.fileno, selectors.EVENT_READ)
            try:
                while not self.exit_event.is_set():
                    if selector.select(0.1):
                        data = os.read(self.fileno, READ_SIZE)
                        if not data:  # end of file: nothing more will come
                            self.exit_event.wait()
                            break
                        while (more := bool(selector.select(0))) and len(data) < BATCH_SIZE:
                            data += os.read(self.fileno, READ_SIZE)  # a paste: fewer, larger edits
                        for piece in terminal_input.feed(data, more):
                            if isinstance(piece, Pasted):
                                self.process_message(events.Paste(piece.text))
                            else:
                                for event in parser.feed(piece):
                                    self.process_message(event)
                    for event in parser.tick():
                        self.process_message(event)
            finally:
                selector.close()
                with contextlib.suppress(EOFError, ParseError):
                    for _event in parser.feed(""):
                        pass

    return SafeInputDriver
