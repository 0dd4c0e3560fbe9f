"""Short summaries of an answer's numbers, a long user message cut for display, file names.

Text is made safe to show by `mlxchat.text.sanitize` (the one escaping function).
"""

from __future__ import annotations

import re

from mlxchat.engine.types import FinishReason, Stats

USER_DISPLAY_LIMIT = 20_000
"""A user message longer than this is shown cut (it is sent and saved whole)."""


def clip_for_display(text: str, limit: int = USER_DISPLAY_LIMIT) -> str:
    """A very long text cut to `limit` characters, its middle folded with a note saying how
    much is left out: its end stays in view (the instruction typed after a long paste)."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    head, end = text[: limit - tail], text[-tail:]
    hidden = len(text) - limit
    return f"{head}\n\n… {hidden:,} more characters not shown (sent in full) …\n\n{end}"


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


def answer_footer(
    finish: FinishReason | str | None,
    summary: str,
    *,
    limit: int | None = None,
    empty: bool = False,
) -> str:
    """The line under an answer, live or saved: how it ended, then its numbers.

    Args:
        finish: Why it ended ("cancelled" and "length" are said; the rest shows `summary`).
        summary: The numbers (`stats_summary`).
        limit: The token limit it was cut at (named with how to change it), if known.
        empty: Whether it was stopped before any text.
    """
    if finish == "cancelled":
        return "stopped before any text" if empty else f"stopped · {summary}".rstrip(" ·")
    if finish == "length":
        cut = "cut at the token limit"
        if limit is not None:
            cut += f" ({limit}; /max-tokens N)"
        return f"{cut} · {summary}".rstrip(" ·")
    return summary


def safe_filename(title: str, fallback: str = "chat") -> str:
    """A file name (no extension) from a chat title: letters, digits, dashes."""
    name = re.sub(r"[^\w\-]+", "-", title, flags=re.ASCII).strip("-").lower()
    return name[:60].rstrip("-") or fallback
