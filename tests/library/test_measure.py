"""softgrad.measure: medians of times, and peak memory of NumPy allocations."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from softgrad.measure import median_time, peak_memory


def test_median_time_ignores_one_slow_outlier_and_runs_the_warmup():
    calls = []

    def sometimes_slow():
        calls.append(None)
        if len(calls) == 3:  # the second timed call
            time.sleep(0.2)

    seconds = median_time(sometimes_slow, repeats=5, warmup=1)
    assert len(calls) == 6
    assert seconds < 0.05


def test_median_time_rejects_no_repeats():
    with pytest.raises(ValueError, match="repeats"):
        median_time(lambda: None, repeats=0)


def test_peak_memory_sees_numpy_temporaries_and_not_the_arguments():
    big = np.ones(1_000_000)  # 8 MB allocated before the call: not counted

    def with_temporary(x):
        temporary = x * 2.0  # 8 MB
        return float(temporary.sum())

    result, peak = peak_memory(with_temporary, big)
    assert result == 2_000_000.0
    assert 7_500_000 < peak < 9_000_000
    _, small = peak_memory(lambda x: float(x.sum()), big)
    assert small < 100_000


def test_peak_memory_leaves_tracing_as_it_found_it():
    assert not tracemalloc.is_tracing()
    peak_memory(lambda: np.ones(10))
    assert not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        peak_memory(lambda: np.ones(10))
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
