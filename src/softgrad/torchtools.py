"""PyTorch helpers for chapter 5 and the benchmarks: one device value, and honest timing.

PyTorch is imported lazily (inside the functions), so that ``import softgrad`` needs only
NumPy; these helpers need the ``torch`` extra (``pip install torch==2.13.0`` for the CPU,
or PyTorch's own install command for a GPU).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["describe_device", "device_time", "pick_device", "synchronize"]


def pick_device() -> torch.device:
    """The best device this machine has: CUDA, else Apple's MPS, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """``"cuda (NVIDIA H100 80GB HBM3)"``, ``"mps (Apple GPU)"`` or ``"cpu (2 threads)"``, for printing."""
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    """Wait until every operation queued on ``device`` has finished.

    GPU operations are asynchronous: a call returns as soon as the work is queued, so a
    clock read right after it measures the queueing, not the work. CPU operations are
    synchronous and need no wait.
    """
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_time(function: Callable[[], object], device: torch.device, *, repeats: int = 10,
                warmup: int = 2) -> float:
    """Median seconds of ``function()`` on ``device``: after ``warmup`` untimed calls, each
    timed call is bracketed by :func:`synchronize`, so queued GPU work is counted.

    The warm-up calls absorb one-time costs (CUDA context creation, kernel selection,
    memory-pool growth) that would otherwise be charged to the first timed call.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be at least 1 and warmup at least 0, got {repeats} and {warmup}")
    for _ in range(warmup):
        function()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
