"""SimulEval latency metrics: the DESIGN.md check values and the edge cases."""

from __future__ import annotations

import math

import pytest

from mlxchat.translate.metrics import (
    latency_metrics,
    mean_word_wait,
    time_to_first_word,
)
from mlxchat.translate.policy import wait_k_delays


def _check(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == {"AL", "LAAL", "AP", "DAL"}
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=5e-4), name


def test_wait3_same_length_as_source() -> None:
    delays = wait_k_delays(3, 10, 10)
    assert delays == [3, 4, 5, 6, 7, 8, 9, 10, 10, 10]
    _check(latency_metrics(delays, 10), {"AL": 3.0, "LAAL": 3.0, "AP": 0.72, "DAL": 3.0})


def test_wait3_hypothesis_longer_than_reference() -> None:
    delays = wait_k_delays(3, 10, 12)
    got = latency_metrics(delays, 10, reference_length=10)
    _check(got, {"AL": 3.0, "LAAL": 3.583, "AP": 0.92, "DAL": 3.778})


def test_wait3_hypothesis_shorter_than_reference() -> None:
    delays = wait_k_delays(3, 10, 8)
    got = latency_metrics(delays, 10, reference_length=10)
    _check(got, {"AL": 3.0, "LAAL": 3.0, "AP": 0.52, "DAL": 3.0})


def test_reference_none_means_hypothesis_length() -> None:
    delays = wait_k_delays(2, 7, 9)
    assert latency_metrics(delays, 7) == latency_metrics(delays, 7, reference_length=9)


def test_offline_translation_lags_by_whole_source() -> None:
    # Reading everything first (wait-|x|) with |Y| = |X|: AL = |X| - mean((i-1)/gamma) over tau=1.
    got = latency_metrics([5, 5, 5, 5, 5], 5)
    assert got["AL"] == pytest.approx(5.0)
    assert got["AP"] == pytest.approx(1.0)
    assert got["DAL"] == pytest.approx(5.0)


def test_one_word_source() -> None:
    got = latency_metrics([1, 1, 1], 1)
    assert got["AL"] == pytest.approx(1.0)
    assert got["LAAL"] == pytest.approx(1.0)
    assert got["AP"] == pytest.approx(1.0)
    # gamma = 3: d' = 1, 4/3, 5/3; minus (i-1)/3 each: 1 + 1 + 1 -> 1.
    assert got["DAL"] == pytest.approx(1.0)


def test_first_delay_beyond_source_returns_it_for_al_and_laal() -> None:
    got = latency_metrics([12, 12], 10)
    assert got["AL"] == 12.0
    assert got["LAAL"] == 12.0
    assert got["AP"] == pytest.approx(24 / 20)
    # gamma = 0.2: d' = 12, max(12, 17) = 17; (12 - 0) + (17 - 5) over 2 -> 12.
    assert got["DAL"] == pytest.approx(12.0)


@pytest.mark.parametrize("source_length", [0, 5])
def test_empty_hypothesis_is_nan(source_length: int) -> None:
    got = latency_metrics([], source_length)
    assert all(math.isnan(v) for v in got.values())
    got = latency_metrics([], source_length, reference_length=4)
    assert all(math.isnan(v) for v in got.values())


def test_al_stops_at_first_delay_reaching_source_end() -> None:
    # tau = 2: only the first two delays count for AL, but every delay counts for AP and DAL.
    delays = [2, 3, 3, 3]
    got = latency_metrics(delays, 3)
    gamma = 4 / 3
    assert got["AL"] == pytest.approx(((2 - 0) + (3 - 1 / gamma)) / 2)
    assert got["AP"] == pytest.approx(11 / 12)


def test_wall_clock_helpers() -> None:
    read_times = [0.0, 1.0, 2.0, 3.0]
    write_times = [2.5, 3.25, 4.0]
    delays = [3, 4, 4]
    assert time_to_first_word(read_times, write_times) == pytest.approx(2.5)
    # waits: 2.5 - 2.0, 3.25 - 3.0, 4.0 - 3.0
    assert mean_word_wait(delays, read_times, write_times) == pytest.approx((0.5 + 0.25 + 1.0) / 3)
    assert math.isnan(time_to_first_word(read_times, []))
    assert math.isnan(mean_word_wait([], read_times, []))
