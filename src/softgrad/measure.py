"""Measuring time and memory the same way everywhere: the book, the tests and the benchmarks.

Times are medians over repeats after a warm-up call (one slow run, from a page fault or
another process, does not move a median). Memory is the peak of what NumPy allocates
during one call, measured with :mod:`tracemalloc` (NumPy reports its array buffers to it),
so it counts the temporaries a function creates and not the memory of the process.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable

__all__ = ["median_time", "peak_memory"]


def median_time(function: Callable[..., object], *args: object, repeats: int = 5, warmup: int = 1,
                **kwargs: object) -> float:
    """Median wall-clock seconds of ``function(*args, **kwargs)`` over ``repeats`` calls.

    ``warmup`` calls run first and are not timed (they fill caches and allocate pages).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        function(*args, **kwargs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory(function: Callable[..., object], *args: object, **kwargs: object) -> tuple[object, int]:
    """``(result, peak_bytes)``: the result of one call and the peak memory it allocated.

    The peak counts memory allocated during the call and still held at its highest point,
    including the result; the arguments, allocated before, do not count.
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = function(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return result, max(0, peak - before)
