"""When a speed means something, and how speeds and prefill progress are written.

No textual here: the status bar and `mlxchat generate -v` write the same text.
"""

from __future__ import annotations

from mlxchat.engine.types import Progress
from mlxchat.models.hub_progress import duration

RATE_MIN_TOKENS = 4
RATE_MIN_SECONDS = 0.2
"""A speed is shown only once measured over at least this many tokens and seconds: the
first tokens of an answer (and a 1-token prompt) take too little time to time them."""


def measured_rate(tokens: int, tps: float) -> float | None:
    """`tps` if it was measured over enough tokens and time to mean something, else None."""
    if tokens < RATE_MIN_TOKENS or tps <= 0 or tokens / tps < RATE_MIN_SECONDS:
        return None
    return tps


def format_tps(value: float) -> str:
    """A speed in tokens per second, with sensible precision."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


ETA_FROM = 3.0
"""Seconds of prefill left from which the status bar says about how long."""


def prefill_detail(progress: Progress) -> str:
    """ "128/435" while a prompt is prefilled, with its speed once measured and, for a
    long one, about how long is left at that speed ("at 45.2 tok/s, ~7 s left")."""
    if not progress.prompt_total:
        return ""
    detail = f"{progress.prompt_done}/{progress.prompt_total}"
    speed = measured_rate(progress.stats.prompt_tokens, progress.stats.prompt_tps)
    if speed is None:
        return detail
    detail = f"{detail} at {format_tps(speed)} tok/s"
    left = (progress.prompt_total - progress.prompt_done) / speed
    if left >= ETA_FROM:
        detail += f", ~{duration(left)} left"
    return detail
