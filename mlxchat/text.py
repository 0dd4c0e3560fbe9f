"""Making stored, typed or model text safe to show: the one escaping function.

Every place that shows such text (the chat, history titles, the status bar, exports, CLI
output) goes through `sanitize`. It escapes, in Python's notation, what would act on
the terminal or silently reorder other text instead of being seen:

- C0 controls other than newline and tab (ESC is shown as ``\\x1b``), DEL and C1 controls;
- bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, shown as
  ``\\u202e``), which would flip the text after them;
- lone surrogates (``\\udc80``), left by bytes that are not UTF-8, which no terminal can
  be sent.

Carriage returns are dropped (a CRLF line ending is a line ending). Other invisible
characters that scripts and emoji need (joiners, direction marks) are left alone. The
mapping works character by character, so streamed pieces give exactly the text of the
whole.
"""

from __future__ import annotations

import re

_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[{_CONTROLS}]")
_UNSAFE_IN_A_LINE = re.compile(f"[\t\n{_CONTROLS}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": ""}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sanitize(text: str, *, one_line: bool = False) -> str:
    """`text` with control characters and bidi overrides escaped, carriage returns dropped.

    Args:
        text: Any text (model output, a stored title, a pasted prompt, a file name).
        one_line: For a place that holds a single line (a title, a list row): newline and
            tab are escaped too (``\\n``, ``\\t``).
    """
    unsafe = _UNSAFE_IN_A_LINE if one_line else _UNSAFE
    if not unsafe.search(text):
        return text
    return unsafe.sub(_escape, text)
