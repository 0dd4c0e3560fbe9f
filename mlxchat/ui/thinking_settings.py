"""What the chat says when a thinking setting changes (/think, /thinking-budget)."""

from __future__ import annotations

from typing import Any


def describe_thinking(name: str, value: Any) -> str:
    """One line for the notice, e.g. "thinking on" or "thinking budget = 512 tokens"."""
    if name == "enable_thinking":
        return "thinking on" if value else "thinking off"
    if value is None:
        return "thinking budget off"
    return f"thinking budget = {value} tokens"
