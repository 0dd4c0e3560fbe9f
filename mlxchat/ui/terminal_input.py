"""What the terminal sends, split into keys and pasted text (no Textual here).

Pasted bytes are text, never keys: a `^Q` or an escape sequence inside a paste must not
quit the app or open a screen, and a newline inside a paste must not send a message.

- Bytes that are not UTF-8 become U+FFFD (they used to end the app with a traceback).
- Between the bracketed-paste markers everything is pasted text, whatever bytes it holds.
- A terminal without bracketed paste sends a paste as keys. One read that holds text, a
  line break and more text (or a line break after text with more input already waiting)
  is a paste: nobody types a word, Enter and the next word within one read. So is a long
  run of keys with no escape sequence in it. Keys that arrive together (over SSH, from a
  macro, while the app is busy) stay keys: a line break next to escape sequences (arrows,
  Home, End) or with no text before it (Enter first) is the Enter key. An Enter at the very
  end of the input stays a key (it sends), and so does what follows the last line break
  when it holds keys that are not text (Esc).
- Pasted text gets its line breaks as ``\\n`` and its control characters shown escaped.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from mlxchat.text import sanitize

PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"

LONG_RUN = 64
"""Characters in one read, with no escape sequence, taken as a paste rather than typing."""

_KEY_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1bO[@-~]")
"""A key's escape sequence (CSI, or SS3 as arrows are in application mode), or a mouse report."""
_LINE_BREAK = re.compile(r"\r\n?|\n")
_TEXT_BREAK_TEXT = re.compile(r"[^\x1b\r\n](?:\r\n?|\n)+[^\x1b\r\n]")
_TEXT_BREAK_AT_END = re.compile(r"[^\x1b\r\n](?:\r\n?|\n)+$")
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Pasted:
    """Text that was pasted: insert it, never act on it."""

    text: str


Piece = str | Pasted
"""A piece of input: a `str` of keys for the key parser, or `Pasted` text."""


def pasted_text(raw: str) -> str:
    """Pasted characters as text to insert: ``\\n`` line breaks, control characters escaped."""
    return sanitize(_LINE_BREAK.sub("\n", raw))


def _held_back(text: str, marker: str) -> int:
    """How many characters at the end of `text` could be the start of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


def looks_pasted(keys: str, more: bool) -> bool:
    """Whether keys that arrived in one read were pasted rather than typed.

    Args:
        keys: The characters of one read, outside any bracketed paste.
        more: Whether more input is already waiting after them.
    """
    plain = _KEY_SEQUENCE.sub("\x1b", keys)  # key sequences and mouse reports are not text
    if _TEXT_BREAK_TEXT.search(plain) or (more and _TEXT_BREAK_AT_END.search(plain)):
        return True
    return len(keys) >= LONG_RUN and "\x1b" not in keys


class TerminalInput:
    """Splits the bytes a terminal sends into keys and pasted text, read by read."""

    def __init__(self) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self._pasting = False
        self._paste: list[str] = []
        self._carry = ""

    def feed(self, data: bytes, more: bool = False) -> list[Piece]:
        """The pieces in one read of `data`, in order.

        Args:
            data: The bytes read.
            more: Whether more input is already waiting (the read was not the end).
        """
        text = self._carry + self._decode(data)
        self._carry = ""
        pieces: list[Piece] = []
        while text:
            if self._pasting:
                end = text.find(PASTE_END)
                if end < 0:
                    keep = _held_back(text, PASTE_END)
                    self._paste.append(text[: len(text) - keep])
                    self._carry = text[len(text) - keep :]
                    break
                self._paste.append(text[:end])
                pieces.append(Pasted(pasted_text("".join(self._paste))))
                self._paste.clear()
                self._pasting = False
                text = text[end + len(PASTE_END) :]
                continue
            start = text.find(PASTE_START)
            keys = text if start < 0 else text[:start]
            if start < 0 and more and (keep := _held_back(text, PASTE_START)):
                keys, self._carry = text[:-keep], text[-keep:]
            if keys:
                pieces.extend(self._keys(keys, more or start >= 0 or bool(self._carry)))
            if start < 0:
                break
            self._pasting = True
            text = text[start + len(PASTE_START) :]
        return pieces

    @staticmethod
    def _keys(keys: str, more: bool) -> list[Piece]:
        """Keys typed, or a paste from a terminal without bracketed paste."""
        if not looks_pasted(keys, more):
            return [keys]
        text, rest = keys, ""
        breaks = list(_LINE_BREAK.finditer(keys))
        if breaks and _NOT_TEXT.search(keys, breaks[-1].end()):
            # a key pressed right after the paste (Esc, an arrow): still a key
            text, rest = keys[: breaks[-1].end()], keys[breaks[-1].end() :]
        elif not more and keys.endswith("\r"):  # the paste's last Enter is a key: it sends
            text, rest = keys[:-1], "\r"
        return [Pasted(pasted_text(text)), rest] if rest else [Pasted(pasted_text(text))]
