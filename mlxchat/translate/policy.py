"""The wait-k policy (STACL): write target word t after reading g(t) = min(k + t - 1, |x|).

The source may be known up front (|x| given) or still arriving (|x| unknown until the
speaker finishes); the same decision function serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum


class Action(Enum):
    """What a simultaneous translator does next."""

    READ = "read"
    """Read one more source word (or wait for one, if none has arrived)."""
    WRITE = "write"
    """Write the next target word."""


def wait_k_schedule(t: int, k: int, source_length: int | None = None) -> int:
    """g(t): source words that must be read before writing target word t (1-based).

    Args:
        t: Index of the target word, starting at 1.
        k: The wait-k lag, at least 1.
        source_length: |x| when known; None while the source is still arriving.
    """
    if k < 1:
        raise ValueError(f"wait-k needs k >= 1, got {k}")
    if t < 1:
        raise ValueError(f"target word index starts at 1, got {t}")
    needed = k + t - 1
    return needed if source_length is None else min(needed, source_length)


def next_action(k: int, words_read: int, words_written: int, source_length: int | None) -> Action:
    """READ while fewer than g(words_written + 1) source words are read, else WRITE.

    Args:
        k: The wait-k lag.
        words_read: Source words read so far.
        words_written: Target words written (completed) so far.
        source_length: |x| once the source is finished; None while it is still arriving.
    """
    if words_read < wait_k_schedule(words_written + 1, k, source_length):
        return Action.READ
    return Action.WRITE


def source_finished(words_read: int, source_length: int | None) -> bool:
    """True when the whole source has been read (end-of-sequence may then be written)."""
    return source_length is not None and words_read >= source_length


def wait_k_delays(k: int, source_length: int, target_length: int) -> list[int]:
    """The delays a wait-k translator produces: [g(1), ..., g(target_length)]."""
    return [wait_k_schedule(t, k, source_length) for t in range(1, target_length + 1)]


def obeys_wait_k(delays: Sequence[int], k: int, source_length: int) -> bool:
    """Whether every delay equals the wait-k schedule g(t) for its target word."""
    return list(delays) == wait_k_delays(k, source_length, len(delays))
