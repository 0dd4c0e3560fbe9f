"""Making any text safe to show, and short summaries of an answer's numbers.

Model output and pasted text may hold terminal control characters, bidi overrides or lone
surrogates. They are shown escaped (`\\x1b`, `\\u202e`) rather than written raw, the same way
the CLI shows them; carriage returns are dropped. The mapping works character by character,
so streamed pieces give exactly the text of the whole.
"""

from __future__ import annotations

import re

from mlxchat.engine.types import Stats

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)

USER_DISPLAY_LIMIT = 20_000
"""A user message longer than this is shown cut (it is sent and saved whole)."""


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\r":
        return ""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def displayable(text: str) -> str:
    """`text` with control characters and invisible direction marks escaped, CR dropped."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(_escape, text)


def clip_for_display(text: str, limit: int = USER_DISPLAY_LIMIT) -> str:
    """A very long text cut to `limit` characters with a note saying how much is left out."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    fence_open = cut.count("```") % 2 == 1
    note = f"\n\n*… {len(text) - limit:,} more characters not shown (sent in full)*"
    return cut + ("\n```" if fence_open else "") + note


def stats_summary(stats: Stats | None, model: str = "") -> str:
    """One line under an answer: tokens, speed, time to first token, model."""
    parts: list[str] = []
    if stats is not None:
        parts.append(f"{stats.generation_tokens} tok")
        if stats.generation_tps:
            parts.append(f"{stats.generation_tps:.1f} tok/s")
        if stats.ttft:
            parts.append(f"ttft {stats.ttft:.2f}s")
        if stats.dropped_messages:
            parts.append(f"{stats.dropped_messages} old messages left out")
    if model:
        parts.append(model)
    return " · ".join(parts)


def safe_filename(title: str, fallback: str = "chat") -> str:
    """A file name (no extension) from a chat title: letters, digits, dashes."""
    name = re.sub(r"[^\w\-]+", "-", title, flags=re.ASCII).strip("-").lower()
    return name[:60].rstrip("-") or fallback
