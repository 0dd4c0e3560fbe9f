"""A thinking model's reasoning as an answer shows it: one line under the header.

While the model thinks, the line is live ("thinking · 412 tokens · 18 s", updated a few
times a second by the answer, `LIVE_INTERVAL`); when the answer begins it folds to
"▸ thought for 18 s · 412 tokens". `t` on the message cursor, or a click on the line,
unfolds it ("▾ …" and the reasoning, dimmed, below) and folds it again. A resumed chat's
saved reasoning comes folded, without the numbers ("▸ thought").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from textual.content import Content

from mlxchat.text import sanitize

LIVE_INTERVAL = 0.25
"""Seconds between two updates of the live line."""

LINE_STYLE = "italic $text-muted"
TEXT_STYLE = "$text-muted"


def seconds_text(seconds: float) -> str:
    """ "4.2 s" under ten seconds, else "18 s"."""
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


@dataclass
class Thinking:
    """An answer's reasoning and how it is shown.

    Attributes:
        text: The reasoning so far.
        tokens: Reasoning tokens so far (0 with `known` False: not saved).
        started: `time.monotonic()` when it began.
        seconds: How long it took, once it ended (None: still thinking).
        unfolded: The reasoning is shown (else only the line).
        known: The numbers are known (False for reasoning from the history).
    """

    text: str = ""
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    unfolded: bool = False
    known: bool = True

    @classmethod
    def saved(cls, text: str, seconds: float | None = None, tokens: int = 0) -> Thinking:
        """Reasoning that ended earlier (a finished answer, a resumed chat), folded."""
        known = seconds is not None
        return cls(text, tokens, 0.0, seconds if known else 0.0, known=known)

    @property
    def done(self) -> bool:
        """Whether the thinking ended (the answer began, or the answer ended)."""
        return self.seconds is not None

    def add(self, text: str, tokens: int) -> None:
        """More reasoning: `text` and its `tokens`."""
        self.text += text
        self.tokens += tokens

    def end(self) -> None:
        """The thinking ended: the line folds."""
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started

    def summary(self) -> str:
        """The line's words."""
        if not self.done:
            elapsed = seconds_text(time.monotonic() - self.started)
            return f"thinking · {self.tokens} tokens · {elapsed}"
        if not self.known:
            return "thought"
        return f"thought for {seconds_text(self.seconds or 0.0)} · {self.tokens} tokens"

    def lines(self, width: int) -> list[Content]:
        """The line, and below it the reasoning when unfolded, wrapped to `width`."""
        if not self.done:
            return [Content.styled(self.summary(), LINE_STYLE)]
        mark = "▾" if self.unfolded else "▸"
        head = Content.styled(f"{mark} {self.summary()}", LINE_STYLE)
        if not self.unfolded:
            return [head]
        lines = [head]
        for paragraph in sanitize(self.text.strip()).replace("\t", "    ").split("\n"):
            text = Content.styled(paragraph, TEXT_STYLE)
            lines.extend(text.wrap(max(width, 1)) if paragraph else [Content("")])
        return lines


THINKING_KEYS = (
    "↑↓ move · t thinking · c copy · y code · e edit · r regenerate · d delete · Esc back"
)
"""The transcript's keys line while the cursor is on a message that thought."""


def saved_thinking(reasoning: str | None) -> Thinking | None:
    """The folded line of a saved answer's reasoning (None: it has none)."""
    return Thinking.saved(reasoning) if reasoning else None


__all__ = [
    "LIVE_INTERVAL",
    "THINKING_KEYS",
    "Thinking",
    "saved_thinking",
    "seconds_text",
]
