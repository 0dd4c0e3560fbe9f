"""Latency metrics for simultaneous translation, computed exactly as SimulEval does.

Delays are counted in source words: ``delays[i]`` is the number of source words read when
target word ``i + 1`` was written. ``source_length`` is |X|; the hypothesis length |Y*| is
``len(delays)``; ``reference_length`` is |Y| (the hypothesis length when not given).

An empty hypothesis (no delays) or an empty source has no defined latency: every metric
is then ``nan`` (never an exception), so a caller averaging over a corpus must skip or
report them explicitly rather than silently counting a zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

METRICS = ("AL", "LAAL", "AP", "DAL")
"""The latency metrics reported for every segment, in the order they are shown."""


def _average_lagging(delays: Sequence[float], source_length: int, target_length: float) -> float:
    """SimulEval's AL core, shared by AL and LAAL (which differ only in `target_length`)."""
    if delays[0] > source_length:
        return float(delays[0])
    gamma = target_length / source_length
    total = 0.0
    tau = 0
    for i, d in enumerate(delays):
        total += d - i / gamma
        tau = i + 1
        if d >= source_length:
            break
    return total / tau


def average_lagging(
    delays: Sequence[float], source_length: int, reference_length: int | None = None
) -> float:
    """AL: gamma = |Y| / |X|, averaged up to the first target word written after all input."""
    if not delays or source_length <= 0:
        return math.nan
    target = len(delays) if reference_length is None else reference_length
    return _average_lagging(delays, source_length, target)


def length_adaptive_average_lagging(
    delays: Sequence[float], source_length: int, reference_length: int | None = None
) -> float:
    """LAAL: AL with gamma = max(|Y*|, |Y|) / |X|, so over-long output is not rewarded."""
    if not delays or source_length <= 0:
        return math.nan
    reference = len(delays) if reference_length is None else reference_length
    return _average_lagging(delays, source_length, max(len(delays), reference))


def average_proportion(
    delays: Sequence[float], source_length: int, reference_length: int | None = None
) -> float:
    """AP: sum of delays / (|X| * |Y|)."""
    if not delays or source_length <= 0:
        return math.nan
    target = len(delays) if reference_length is None else reference_length
    if target <= 0:
        return math.nan
    return sum(delays) / (source_length * target)


def differentiable_average_lagging(delays: Sequence[float], source_length: int) -> float:
    """DAL: gamma = |Y*| / |X|; d'_1 = d_1, d'_i = max(d_i, d'_{i-1} + 1/gamma)."""
    if not delays or source_length <= 0:
        return math.nan
    gamma = len(delays) / source_length
    total = 0.0
    previous = 0.0
    for i, d in enumerate(delays):
        current = float(d) if i == 0 else max(float(d), previous + 1 / gamma)
        total += current - i / gamma
        previous = current
    return total / len(delays)


def latency_metrics(
    delays: Sequence[float], source_length: int, reference_length: int | None = None
) -> dict[str, float]:
    """All four SimulEval latency metrics for one sentence.

    Args:
        delays: Source words read when each target word was written (d_1 .. d_|Y*|).
        source_length: Number of source words |X|.
        reference_length: Reference length |Y| in words; None uses the hypothesis length.

    Returns:
        ``{"AL", "LAAL", "AP", "DAL"}`` as floats; all ``nan`` for an empty hypothesis.
    """
    return {
        "AL": average_lagging(delays, source_length, reference_length),
        "LAAL": length_adaptive_average_lagging(delays, source_length, reference_length),
        "AP": average_proportion(delays, source_length, reference_length),
        "DAL": differentiable_average_lagging(delays, source_length),
    }


def time_to_first_word(read_times: Sequence[float], write_times: Sequence[float]) -> float:
    """Seconds from the first source word arriving to the first target word being shown.

    Args:
        read_times: Clock time (e.g. ``time.perf_counter()``) each source word arrived.
        write_times: Clock time each target word was completed and shown.

    Returns:
        The wait in seconds, or ``nan`` if nothing was read or written.
    """
    if not read_times or not write_times:
        return math.nan
    return write_times[0] - read_times[0]


def mean_word_wait(
    delays: Sequence[int], read_times: Sequence[float], write_times: Sequence[float]
) -> float:
    """Mean seconds between reading the source word a target word waited for and showing it.

    Target word ``i`` waited for source word ``delays[i]`` (1-based), so its wait is
    ``write_times[i] - read_times[delays[i] - 1]``.

    Returns:
        The mean wait in seconds, or ``nan`` when there are no target words.
    """
    waits = [
        write - read_times[d - 1]
        for d, write in zip(delays, write_times, strict=False)
        if 0 < d <= len(read_times)
    ]
    if not waits:
        return math.nan
    return sum(waits) / len(waits)
