"""``softgrad bench``: softmax and cross-entropy measured against the limits of the machine.

Everything is measured in one run on one machine, and every comparison is a ratio of two
numbers from that run (COURSE_DESIGN section 7):

* **The limits.** A copy bandwidth (``np.copyto`` of the logits into another array, split
  over the same threads: bytes read plus bytes written, divided by the time) and two exp
  floors, each the time of one ``exp`` pass over the logits on the same threads: NumPy's
  ``np.exp``, and a vectorised ``exp``, the faster of PyTorch's ``torch.exp`` (SLEEF's
  vector functions) and the course's compiled :func:`softgrad.kernels.exp` (Numba), each
  where it is installed. Every ``exp`` pass is timed into a new array (what the kernels'
  times are divided by, since they too return a new array) and into an array already
  written once (which moves exactly the bytes of the copy, so its time against the copy's
  says whether computing ``exp`` or moving bytes is slower). The machine's limits are
  measured on logits of at least ``Preset.limits_bytes`` (64 MiB), larger than the caches
  of most CPUs, so that the copy runs at main memory's bandwidth; each table also has
  limits measured at its own size, which its ratios use. On a GPU, the bandwidth of
  ``Tensor.copy_``.
* **The accuracy of each exp** in float32, in units in the last place (ulps) against
  float64, on a sample of the whole range where ``exp`` is finite and not zero.
* **The implementations.** Softmax with its vector-Jacobian product, and softmax
  cross-entropy, each forward and backward: naive NumPy, stable NumPy, the course's fused
  NumPy version (:mod:`softgrad.scale`), the course's fused kernel compiled by Numba
  (:mod:`softgrad.kernels`, cross-entropy in float32), PyTorch eager on the CPU,
  ``torch.compile`` where it works, and the same PyTorch rows on every GPU PyTorch can see.
* **For each row:** the median time, the bytes a fused kernel must move divided by that
  time (and that as a fraction of the measured copy bandwidth), the time in units of each
  exp floor, and the speed-up over PyTorch eager.
* **The Jacobian against the VJP** as ``n`` grows (time and peak memory), and the peak
  memory of cross-entropy over a large vocabulary, naive against chunked.

Timings are medians over repeats after warm-up calls; the implementations of one table take
turns in every repeat (round robin), so a slow moment of the machine hits them all alike.
Nothing here asserts a time: the tests check the structure and the arithmetic of the report.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TextIO

import numpy as np

from softgrad import kernels, scale
from softgrad.measure import peak_memory
from softgrad.progress import Progress

__all__ = [
    "PRESETS",
    "Preset",
    "Progress",
    "exp_accuracy",
    "format_report",
    "measure_limits",
    "round_robin_medians",
    "run",
]


@dataclass(frozen=True)
class Preset:
    """The sizes and repeats of one benchmark run."""

    name: str
    rows: int  # N: rows of logits (CPU tables)
    classes: int  # C: classes per row
    repeats: int
    warmup: int
    jacobian_sizes: tuple[int, ...]
    vocabulary: int  # V of the large-vocabulary cross-entropy
    vocab_rows: int  # N there
    hidden: int  # D there
    chunk_sizes: tuple[int, ...]
    gpu_rows: int  # the GPU tables use a working set well above the L2 cache of any GPU
    gpu_classes: int
    compile: bool  # torch.compile rows (each costs tens of seconds of compilation on a CPU)
    # The machine's limits (copy bandwidth, exp pass) are measured on logits of at least this
    # many bytes: beyond the caches of most CPUs, so that the copy goes to main memory.
    limits_bytes: int = 64 * 2**20
    # float32 numbers on which the accuracy of each exp is measured
    exp_samples: int = 2**20


PRESETS = {
    # a few seconds: used by the book build and the tests
    "quick": Preset("quick", rows=1024, classes=1024, repeats=5, warmup=1, jacobian_sizes=(16, 64, 256, 1024),
                    vocabulary=32768, vocab_rows=128, hidden=64, chunk_sizes=(1024, 4096),
                    gpu_rows=4096, gpu_classes=16384, compile=False),
    # a few minutes on 2 vCPUs: the numbers the chapter's closing note reports
    "full": Preset("full", rows=4096, classes=4096, repeats=15, warmup=2,
                   jacobian_sizes=(16, 64, 256, 1024, 2048, 4096), vocabulary=131072, vocab_rows=256, hidden=128,
                   chunk_sizes=(1024, 4096, 16384), gpu_rows=16384, gpu_classes=16384, compile=True,
                   exp_samples=2**24),
}


def round_robin_medians(functions: dict[str, Callable[[], object]], *, repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds of each function; in every repeat each function runs once, in turn.

    ``warmup`` untimed calls of each come first. A function that must wait for a device
    (a GPU) does so itself, before it returns.
    """
    for function in functions.values():
        for _ in range(warmup):
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def measure_limits(shape: tuple[int, int], dtype: np.dtype | type, threads: int, *, repeats: int,
                   warmup: int) -> dict[str, float | str]:
    """The copy bandwidth and the exp floors of this machine, for an array of ``shape``.

    All run on ``threads`` threads over row ranges, like the fused kernels, and take turns
    in the same repeats:

    * ``copy_seconds``: ``np.copyto`` into an array written once before (its pages are
      mapped), the fastest a plain copy goes; ``copy_bandwidth`` is the bytes read plus
      the bytes written, ``copy_bytes``, divided by it.
    * ``exp_compute_seconds``: ``np.exp`` into such an array. It loads and stores exactly
      the bytes of the copy, so ``exp_compute_seconds / copy_seconds`` well above 1 means
      that computing ``exp``, not moving bytes, sets the time.
    * ``exp_seconds``: ``np.exp`` into a new array, as ``np.exp(z)`` does; it also pays
      for mapping the new pages (first-touch page faults). The kernels return a new
      gradient and pay the same, so their times are given in units of this pass.
    * ``torch_exp_seconds`` and ``torch_exp_compute_seconds``: the same two passes of
      ``torch.exp`` (where PyTorch is installed, on ``threads`` threads of its own), and
      ``compiled_exp_seconds`` and ``compiled_exp_compute_seconds`` of
      :func:`softgrad.kernels.exp` (where Numba is installed; float32 only).
    * ``vector_exp_seconds``: the faster of the two vectorised passes into a new array, the
      floor that a kernel with a vectorised ``exp`` is held against; ``vector_exp_name``
      says which it was. Both are absent when neither could run.
    """
    z = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    target = np.empty_like(z)
    target.fill(0)  # touch every page once, outside the timing
    touched = np.empty_like(z)
    touched.fill(0)

    def copy() -> None:
        scale._run_on_row_ranges(lambda a, b: np.copyto(target[a:b], z[a:b]), z.shape[0], threads)

    def exp_compute() -> None:
        scale._run_on_row_ranges(lambda a, b: np.exp(z[a:b], out=touched[a:b]), z.shape[0], threads)

    def exp_pass() -> np.ndarray:
        out = np.empty_like(z)
        scale._run_on_row_ranges(lambda a, b: np.exp(z[a:b], out=out[a:b]), z.shape[0], threads)
        return out

    passes: dict[str, Callable[[], object]] = {"copy": copy, "exp_compute": exp_compute, "exp": exp_pass}
    torch = _torch()
    if torch is not None:
        z_t, touched_t = torch.from_numpy(z), torch.from_numpy(touched)
        passes["torch_exp_compute"] = lambda: torch.exp(z_t, out=touched_t)
        passes["torch_exp"] = lambda: torch.exp(z_t)
    if not _compiled_unavailable(z.dtype):
        passes["compiled_exp_compute"] = lambda: kernels.exp(z, out=touched, threads=threads)
        passes["compiled_exp"] = lambda: kernels.exp(z, threads=threads)
    previous = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None:
            torch.set_num_threads(threads)
        medians = round_robin_medians(passes, repeats=repeats, warmup=warmup)
    finally:
        if torch is not None:
            torch.set_num_threads(previous)
    limits: dict[str, float | str] = {
        "array_bytes": z.nbytes, "copy_seconds": medians["copy"], "copy_bytes": 2 * z.nbytes,
        "copy_bandwidth": 2 * z.nbytes / medians["copy"], "exp_compute_seconds": medians["exp_compute"],
        "exp_seconds": medians["exp"]}
    vectorised = {}
    for key, name in (("torch_exp", "torch.exp"), ("compiled_exp", "softgrad.kernels.exp")):
        if key in medians:
            limits[f"{key}_seconds"] = medians[key]
            limits[f"{key}_compute_seconds"] = medians[f"{key}_compute"]
            vectorised[name] = medians[key]
    if vectorised:
        fastest = min(vectorised, key=vectorised.get)
        limits["vector_exp_seconds"] = vectorised[fastest]
        limits["vector_exp_name"] = fastest
    return limits


def _compiled_unavailable(dtype: np.dtype | type) -> str:
    """Why the compiled kernels of :mod:`softgrad.kernels` cannot run on ``dtype`` here ("" if they can)."""
    if not kernels.available():
        return kernels.UNAVAILABLE
    if np.dtype(dtype) != np.float32:
        return f"the compiled kernels compute float32 only, not {np.dtype(dtype).name}"
    return ""


def exp_accuracy(samples: int, *, threads: int | None = None) -> list[dict]:
    """The error of each float32 ``exp`` of this machine in ulps, against float64, on ``samples`` numbers.

    The numbers are :func:`softgrad.kernels.exp_sample`: half spread evenly over the values
    from about -104 to 88.7 (every ``exp`` from the smallest subnormal float32 to the
    largest finite one), half evenly over the bit patterns there (which favours small
    ``|x|``, where most float32 numbers are). The float64 ``exp`` of each number serves as
    the exact value: its own error is about ``2**-29`` float32 ulps. One entry per
    implementation: ``max_ulp``, ``mean_ulp``, the ``worst_x`` where the maximum was
    reached, and ``correctly_rounded`` (the fraction within half an ulp); or a ``note``
    saying why it is not available.
    """
    x = kernels.exp_sample(samples, np.random.default_rng(5))
    exact = np.exp(x.astype(np.float64))
    implementations: dict[str, Callable[[], np.ndarray] | str] = {"np.exp": lambda: np.exp(x)}
    torch = _torch()
    if torch is None:
        implementations["torch.exp"] = "not available: PyTorch is not installed (pip install torch)"
    else:
        implementations["torch.exp"] = lambda: torch.exp(torch.from_numpy(x)).numpy()
    why = _compiled_unavailable(np.float32)
    implementations["softgrad.kernels.exp"] = (f"not available: {why}" if why
                                               else lambda: kernels.exp(x, threads=threads))
    results = []
    for name, compute in implementations.items():
        if isinstance(compute, str):
            results.append({"name": name, "note": compute})
            continue
        with np.errstate(over="ignore", under="ignore"):
            error = kernels.ulp_error(compute(), exact)
        worst = int(np.argmax(error))
        results.append({"name": name, "samples": int(x.size), "max_ulp": float(error[worst]),
                        "mean_ulp": float(error.mean()), "worst_x": float(x[worst]),
                        "correctly_rounded": float(np.mean(error <= 0.5))})
    return results


@dataclass
class Row:
    """One implementation in a table: its median time and what that time means."""

    name: str
    seconds: float | None
    note: str = ""
    bandwidth: float | None = None  # bytes that must move / seconds
    copy_fraction: float | None = None  # bandwidth / the measured copy bandwidth
    exp_ratio: float | None = None  # seconds / the np.exp pass
    vector_exp_ratio: float | None = None  # seconds / the vectorised exp pass
    speedup_vs_torch: float | None = None  # PyTorch eager's seconds / seconds


@dataclass
class Table:
    """Implementations of one computation on one device, with the limits they are held against."""

    title: str
    operation: str  # "cross_entropy" or "softmax"
    device: str
    shape: tuple[int, int]
    dtype: str
    threads: int
    bytes_moved: int  # what a fused kernel must read and write
    limits: dict[str, float | str]
    rows: list[Row] = field(default_factory=list)

    def finish(self) -> None:
        """Fill in every row's derived numbers from its time and the table's limits."""
        eager = next((r.seconds for r in self.rows if r.name.startswith("PyTorch eager") and r.seconds), None)
        for row in self.rows:
            if row.seconds is None:
                continue
            row.bandwidth = self.bytes_moved / row.seconds
            row.copy_fraction = row.bandwidth / self.limits["copy_bandwidth"]
            if "exp_seconds" in self.limits:
                row.exp_ratio = row.seconds / self.limits["exp_seconds"]
            if "vector_exp_seconds" in self.limits:
                row.vector_exp_ratio = row.seconds / self.limits["vector_exp_seconds"]
            if eager is not None:
                row.speedup_vs_torch = eager / row.seconds


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _compiled(torch, function: Callable[..., object]) -> tuple[Callable[..., object] | None, str]:
    """``torch.compile(function)``, or None and the reason it is not available."""
    try:
        return torch.compile(function), ""
    except Exception as error:  # compile is optional: any failure is reported, not raised
        return None, f"not available: {type(error).__name__}: {str(error).splitlines()[0][:120]}"


def _torch_rows(torch, operation: str, logits_np: np.ndarray, extra_np: np.ndarray, device, *,
                compile: bool) -> dict[str, Callable[[], object] | str]:
    """The PyTorch implementations of ``operation`` on ``device``: callables that wait for the device,
    or a string saying why one is not available."""
    import torch.nn.functional as F

    from softgrad.torchtools import synchronize

    logits = torch.from_numpy(logits_np).to(device)
    if operation == "cross_entropy":
        target = torch.from_numpy(extra_np).to(device)

        def autograd_step(function):
            def step():
                z = logits.detach().requires_grad_(True)
                function(z, target).backward()
                synchronize(device)
                return z.grad
            return step

        def by_hand(function):
            def step():
                result = function(logits, target)
                synchronize(device)
                return result
            return step

        rows: dict[str, Callable[[], object] | str] = {
            "PyTorch eager F.cross_entropy": autograd_step(F.cross_entropy),
            "PyTorch eager, fused by hand": by_hand(scale.torch_softmax_cross_entropy_fused),
        }
        if compile:
            compiled, why = _compiled(torch, F.cross_entropy)
            rows["torch.compile F.cross_entropy"] = autograd_step(compiled) if compiled else why
            compiled, why = _compiled(torch, scale.torch_softmax_cross_entropy_fused)
            rows["torch.compile, fused by hand"] = by_hand(compiled) if compiled else why
        return rows

    upstream = torch.from_numpy(extra_np).to(device)

    def softmax_step(function):
        def step():
            z = logits.detach().requires_grad_(True)
            p = function(z)
            p.backward(upstream)
            synchronize(device)
            return p, z.grad
        return step

    def softmax(z):
        return torch.softmax(z, dim=1)

    rows = {"PyTorch eager softmax": softmax_step(softmax)}
    if compile:
        compiled, why = _compiled(torch, softmax)
        rows["torch.compile softmax"] = softmax_step(compiled) if compiled else why
    return rows


def _safe(function: Callable[[], object]) -> tuple[Callable[[], object] | None, str]:
    """Run ``function`` once; return it if it works, else None and the reason (reported in the table)."""
    try:
        function()
    except Exception as error:
        return None, f"not available: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
    return function, ""


def _cpu_table(operation: str, preset: Preset, dtype: np.dtype, threads: int, limits: dict[str, float],
               torch, progress: Progress) -> Table:
    rng = np.random.default_rng(1)
    n, c = preset.rows, preset.classes
    logits = (3 * rng.standard_normal((n, c))).astype(dtype)
    if operation == "cross_entropy":
        extra = rng.integers(0, c, size=n)
        numpy_rows: dict[str, Callable[[], object] | str] = {
            "naive NumPy": lambda: scale.softmax_cross_entropy_naive(logits, extra),
            "stable NumPy (chapter 4)": lambda: scale.softmax_cross_entropy_stable(logits, extra),
            "fused NumPy, 1 thread": lambda: scale.softmax_cross_entropy_fused(logits, extra, threads=1),
            "fused NumPy, always shifting": lambda: scale.softmax_cross_entropy_fused(
                logits, extra, threads=threads, always_shift=True),
        }
        if threads > 1:
            numpy_rows[f"fused NumPy, {threads} threads"] = lambda: scale.softmax_cross_entropy_fused(
                logits, extra, threads=threads)
        why = _compiled_unavailable(dtype)
        if why:
            numpy_rows["fused Numba"] = f"not available: {why}"
        else:
            numpy_rows["fused Numba, 1 thread"] = lambda: kernels.softmax_cross_entropy(logits, extra, threads=1)
            numpy_rows["fused Numba, always shifting"] = lambda: kernels.softmax_cross_entropy(
                logits, extra, threads=threads, always_shift=True)
            if threads > 1:
                numpy_rows[f"fused Numba, {threads} threads"] = lambda: kernels.softmax_cross_entropy(
                    logits, extra, threads=threads)
        bytes_moved = 2 * logits.nbytes + extra.nbytes  # read logits and targets, write the gradient
        title = "softmax cross-entropy, forward + backward"
    else:
        extra = rng.standard_normal((n, c)).astype(dtype)
        numpy_rows = {
            "naive NumPy": lambda: scale.softmax_forward_backward_naive(logits, extra),
            "stable NumPy (chapters 1, 3)": lambda: scale.softmax_forward_backward_stable(logits, extra),
            "fused NumPy, 1 thread": lambda: scale.softmax_forward_backward_fused(logits, extra, threads=1),
        }
        if threads > 1:
            numpy_rows[f"fused NumPy, {threads} threads"] = lambda: scale.softmax_forward_backward_fused(
                logits, extra, threads=threads)
        bytes_moved = 4 * logits.nbytes  # read z and g, write p and dz
        title = "softmax and its VJP, forward + backward"
    table = Table(title, operation, "cpu", (n, c), np.dtype(dtype).name, threads, bytes_moved, limits)
    runnable: dict[str, Callable[[], object]] = {}
    notes: dict[str, str] = {}
    candidates: dict[str, Callable[[], object] | str] = dict(numpy_rows)
    if torch is None:
        notes["PyTorch eager"] = "not available: PyTorch is not installed (pip install torch)"
    else:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        candidates.update(_torch_rows(torch, operation, logits, extra, torch.device("cpu"), compile=preset.compile))
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # the naive rows overflow on purpose elsewhere
            for name, candidate in candidates.items():
                if isinstance(candidate, str):
                    notes[name] = candidate
                    continue
                function, why = _safe(candidate)  # also the first compilation of torch.compile
                if function is None:
                    notes[name] = why
                else:
                    runnable[name] = function
            progress.step(f"{operation}: warming up")
            medians = round_robin_medians(runnable, repeats=preset.repeats, warmup=preset.warmup)
    finally:
        if torch is not None:
            torch.set_num_threads(previous)
    table.rows = [Row(name, medians.get(name), notes.get(name, ""))
                  for name in [*candidates, *(k for k in notes if k not in candidates)]]
    table.finish()
    progress.step(f"{operation}: measured")
    return table


def _gpu_candidates(torch, logits: np.ndarray, target: np.ndarray, device, *, compile: bool
                    ) -> dict[str, Callable[[], object] | str]:
    """The rows of a GPU table: PyTorch's (eager, compiled) and chapter 9's Triton kernel."""
    from softgrad import gpu

    candidates = _torch_rows(torch, "cross_entropy", logits, target, device, compile=compile)
    candidates.update(gpu.bench_rows(torch, logits, target, device))
    return candidates


def _gpu_tables(torch, preset: Preset, progress: Progress) -> tuple[list[Table], list[str]]:
    """The PyTorch rows on every GPU PyTorch can see, against a measured ``copy_`` bandwidth."""
    from softgrad.torchtools import describe_device, device_time

    devices = []
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    if torch.backends.mps.is_available():
        devices.append(torch.device("mps"))
    if not devices:
        return [], ["no GPU: PyTorch sees neither CUDA nor MPS, so the GPU tables (PyTorch and "
                    "chapter 9's Triton kernel) are empty"]
    tables = []
    rng = np.random.default_rng(2)
    n, c = preset.gpu_rows, preset.gpu_classes
    logits = (3 * rng.standard_normal((n, c))).astype(np.float32)
    target = rng.integers(0, c, size=n)
    for device in devices:
        source = torch.from_numpy(logits).to(device)
        destination = torch.empty_like(source)
        copy_seconds = device_time(lambda s=source, d=destination: d.copy_(s), device,
                                   repeats=preset.repeats, warmup=preset.warmup)
        # copy_ reads and writes every byte once: the bandwidth a memory-bound kernel can hope for
        limits = {"copy_seconds": copy_seconds, "copy_bytes": 2 * logits.nbytes,
                  "copy_bandwidth": 2 * logits.nbytes / copy_seconds}
        del source, destination
        table = Table("softmax cross-entropy, forward + backward", "cross_entropy", describe_device(device),
                      (n, c), "float32", 0, 2 * logits.nbytes + target.nbytes, limits)
        candidates = _gpu_candidates(torch, logits, target, device, compile=preset.compile)
        runnable, notes = {}, {}
        for name, candidate in candidates.items():
            if isinstance(candidate, str):
                notes[name] = candidate
                continue
            function, why = _safe(candidate)
            if function is None:
                notes[name] = why
            else:
                runnable[name] = function
        medians = round_robin_medians(runnable, repeats=preset.repeats, warmup=preset.warmup)
        table.rows = [Row(name, medians.get(name), notes.get(name, "")) for name in candidates]
        table.finish()
        tables.append(table)
        progress.step(f"{device.type}: measured")
    return tables, []


def _jacobian_vjp(z: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The VJP through the explicit Jacobian: ``g @ (diag(p) - p p^T)``, n^2 memory."""
    p = np.exp(z - z.max())
    p /= p.sum()
    return g @ (np.diag(p) - np.outer(p, p))


def _vjp(z: np.ndarray, g: np.ndarray) -> np.ndarray:
    p = np.exp(z - z.max())
    p /= p.sum()
    return p * (g - g @ p)


def jacobian_against_vjp(sizes: tuple[int, ...], *, repeats: int, warmup: int,
                         progress: Progress | None = None) -> list[dict[str, float]]:
    """For each ``n``: time and peak memory of the VJP of one softmax row (float64), through the
    explicit ``n x n`` Jacobian and directly as ``p * (g - <g, p>)``; and their largest difference."""
    progress = progress or Progress(1)
    results = []
    rng = np.random.default_rng(3)
    for n in sizes:
        z, g = rng.standard_normal(n), rng.standard_normal(n)
        medians = round_robin_medians({"jacobian": lambda z=z, g=g: _jacobian_vjp(z, g),
                                       "vjp": lambda z=z, g=g: _vjp(z, g)}, repeats=repeats, warmup=warmup)
        through_jacobian, jacobian_peak = peak_memory(_jacobian_vjp, z, g)
        direct, vjp_peak = peak_memory(_vjp, z, g)
        results.append({"n": n, "jacobian_seconds": medians["jacobian"], "vjp_seconds": medians["vjp"],
                        "jacobian_peak_bytes": jacobian_peak, "vjp_peak_bytes": vjp_peak,
                        "max_difference": float(np.max(np.abs(through_jacobian - direct)))})
        progress.step(f"Jacobian against VJP, n = {n}")
    return results


def vocabulary_memory(rows: int, hidden: int, vocabulary: int, chunk_sizes: tuple[int, ...], *,
                      progress: Progress | None = None) -> list[dict[str, float]]:
    """Peak memory and time of ``mean CE(h @ W)`` with its gradients (float32): the naive version
    that materialises the ``(N, V)`` logits, and the chunked one for each chunk size."""
    progress = progress or Progress(1)
    rng = np.random.default_rng(4)
    h = rng.standard_normal((rows, hidden)).astype(np.float32)
    W = (rng.standard_normal((hidden, vocabulary)) / np.sqrt(hidden)).astype(np.float32)
    target = rng.integers(0, vocabulary, size=rows)
    candidates: list[tuple[str, int | None, Callable[..., object]]] = [
        ("naive", None, scale.linear_cross_entropy_naive)]
    candidates += [(f"chunked, {k}", k, lambda h, W, t, k=k: scale.chunked_linear_cross_entropy(h, W, t, k))
                   for k in chunk_sizes]
    results, baseline = [], None
    for name, chunk, function in candidates:
        (loss, dh, dW), peak = peak_memory(function, h, W, target)
        # timed apart from the memory measurement, which slows every allocation down
        seconds = round_robin_medians({name: lambda f=function: f(h, W, target)}, repeats=3, warmup=1)[name]
        if baseline is None:
            baseline = (loss, dh, dW)
        results.append({
            "name": name, "chunk_size": chunk, "peak_bytes": peak, "seconds": seconds,
            "logits_bytes": rows * vocabulary * 4, "outputs_bytes": dh.nbytes + dW.nbytes,
            "max_difference": max(abs(loss - baseline[0]), float(np.max(np.abs(dh - baseline[1]))),
                                  float(np.max(np.abs(dW - baseline[2])))),
        })
        progress.step(f"large vocabulary: {name}")
    return results


def run(preset: str | Preset = "quick", *, threads: int | None = None, dtype: str = "float32",
        compile: bool | None = None, gpu: bool = True, progress: TextIO | None = None) -> dict:
    """Run the benchmark and return its report as a dict (what ``--json`` writes).

    ``preset`` is ``"quick"`` (seconds; the book and the tests) or ``"full"`` (minutes);
    ``threads`` defaults to every available core; ``compile`` overrides the preset's
    ``torch.compile`` rows; ``progress`` is a stream for the progress bar (None: silent).
    """
    chosen = PRESETS[preset] if isinstance(preset, str) else preset
    if compile is not None:
        chosen = Preset(**{**asdict(chosen), "compile": compile})
    threads = threads or scale.available_threads()
    float_type = np.dtype(dtype)
    torch = _torch()
    item = float_type.itemsize
    separate_limits = chosen.rows * chosen.classes * item < chosen.limits_bytes
    steps = 1 + int(separate_limits) + 1 + 2 * 2 + len(chosen.jacobian_sizes) + 1 + len(chosen.chunk_sizes)
    if torch is not None and gpu:
        steps += int(torch.cuda.is_available()) + int(torch.backends.mps.is_available())
    bar = Progress(steps, progress)

    # The limits at the tables' size (their ratios use them), and the machine's limits on
    # logits of at least limits_bytes (main memory; the same measurement when the tables are that large).
    table_limits = measure_limits((chosen.rows, chosen.classes), float_type, threads, repeats=chosen.repeats,
                                  warmup=chosen.warmup)
    bar.step("limits at the tables' size: copy bandwidth and exp pass")
    limits = table_limits
    if separate_limits:
        memory_rows = -(-chosen.limits_bytes // (chosen.classes * item))
        limits = measure_limits((memory_rows, chosen.classes), float_type, threads, repeats=chosen.repeats,
                                warmup=chosen.warmup)
        bar.step("limits in main memory: copy bandwidth and exp pass")
    accuracy = exp_accuracy(chosen.exp_samples, threads=threads)
    bar.step("accuracy of each exp in ulps")
    tables = [_cpu_table(op, chosen, float_type, threads, table_limits, torch, bar)
              for op in ("cross_entropy", "softmax")]
    notes = []
    if torch is None:
        notes.append("PyTorch is not installed: the PyTorch rows are skipped (pip install torch)")
    elif gpu:
        gpu_tables, gpu_notes = _gpu_tables(torch, chosen, bar)
        tables += gpu_tables
        notes += gpu_notes
    jacobian = jacobian_against_vjp(chosen.jacobian_sizes, repeats=chosen.repeats, warmup=chosen.warmup,
                                    progress=bar)
    vocabulary = vocabulary_memory(chosen.vocab_rows, chosen.hidden, chosen.vocabulary, chosen.chunk_sizes,
                                   progress=bar)
    report = {
        "preset": asdict(chosen),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "torch": getattr(torch, "__version__", None), "threads": threads,
                    "numba": getattr(kernels.numba, "__version__", None),
                    "torch_cpu_capability": _torch_cpu_capability(torch)},
        "limits": limits,
        "exp_accuracy": accuracy,
        "tables": [asdict(t) for t in tables],
        "jacobian": jacobian,
        "vocabulary": vocabulary,
        "notes": notes,
    }
    return json.loads(json.dumps(report))  # plain JSON values (lists, not tuples): what --json writes


def _torch_cpu_capability(torch) -> str | None:
    """The instruction set PyTorch's CPU kernels were dispatched to here ("AVX2", "AVX512", ...)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # no PyTorch, or a PyTorch too old to say
        return None


def _number(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _limits_lines(label: str, limits: dict, indent: str = "") -> list[str]:
    """The copy and every exp floor, one line each::

        limits: copy 14.0 GB/s (64.0 MiB of logits: 128.0 MiB in 9.55 ms)
          one np.exp pass: 35.43 ms into a new array, 30.10 ms into a written one
          ...
          vectorised exp floor: softgrad.kernels.exp, 12.02 ms
    """
    size = f"{_bytes(limits['array_bytes'])} of logits: " if "array_bytes" in limits else ""
    lines = [f"{indent}{label}: copy {limits['copy_bandwidth'] / 1e9:.1f} GB/s ({size}"
             f"{_bytes(limits['copy_bytes'])} in {1e3 * limits['copy_seconds']:.2f} ms)"]
    for name, key in (("np.exp", "exp"), ("torch.exp", "torch_exp"), ("softgrad.kernels.exp", "compiled_exp")):
        if f"{key}_seconds" in limits:
            text = f"{indent}  one {name} pass: {1e3 * limits[f'{key}_seconds']:.2f} ms into a new array"
            if f"{key}_compute_seconds" in limits:
                text += f", {1e3 * limits[f'{key}_compute_seconds']:.2f} ms into a written one"
            lines.append(text)
    if "vector_exp_seconds" in limits:
        lines.append(f"{indent}  vectorised exp floor: {limits['vector_exp_name']}, "
                     f"{1e3 * limits['vector_exp_seconds']:.2f} ms")
    return lines


def format_report(report: dict) -> str:
    """The report as plain-text tables, for a terminal."""
    out = []
    limits = report["limits"]
    machine = report["machine"]
    out.append(f"softgrad bench ({report['preset']['name']}): {machine['processor']}, {machine['threads']} threads, "
               f"NumPy {machine['numpy']}, PyTorch {machine['torch'] or 'not installed'}, "
               f"Numba {machine.get('numba') or 'not installed'}")
    out += _limits_lines("limits", limits)
    if report.get("exp_accuracy"):
        out.append("")
        first = next((e for e in report["exp_accuracy"] if "samples" in e), None)
        count = f" on {first['samples']} numbers" if first else ""
        out.append(f"float32 exp against float64{count}, in ulps (units in the last place)")
        out.append(f"  {'exp':22s} {'max ulp':>8s} {'mean ulp':>9s} {'within 0.5':>11s} {'worst x':>14s}")
        for entry in report["exp_accuracy"]:
            if "note" in entry:
                out.append(f"  {entry['name']:22s} {entry['note']}")
                continue
            out.append(f"  {entry['name']:22s} {entry['max_ulp']:8.2f} {entry['mean_ulp']:9.3f} "
                       f"{entry['correctly_rounded']:11.1%} {entry['worst_x']:14.7g}")
    for table in report["tables"]:
        n, c = table["shape"]
        out.append("")
        out.append(f"{table['title']}, {table['dtype']} {n} x {c}, on {table['device']}"
                   + (f", {table['threads']} threads" if table["threads"] else "")
                   + f": a fused kernel moves {_bytes(table['bytes_moved'])}")
        if table["device"] != "cpu":
            out.append(f"  copy_ bandwidth {table['limits']['copy_bandwidth'] / 1e9:.0f} GB/s")
        elif table["limits"] != limits:
            out += _limits_lines("against the limits at this size", table["limits"], indent="  ")
        out.append(f"  {'implementation':34s} {'median ms':>10s} {'GB/s':>7s} {'of copy':>8s} {'x np.exp':>9s} "
                   f"{'x vec exp':>10s} {'vs eager':>9s}")
        for row in table["rows"]:
            if row["seconds"] is None:
                out.append(f"  {row['name']:34s} {row['note']}")
                continue
            out.append(f"  {row['name']:34s} {1e3 * row['seconds']:10.2f} {row['bandwidth'] / 1e9:7.1f} "
                       f"{_number(row['copy_fraction'], '8.0%')} {_number(row['exp_ratio'], '9.2f')} "
                       f"{_number(row.get('vector_exp_ratio'), '10.2f')} {_number(row['speedup_vs_torch'], '8.2f')}x")
    out.append("")
    out.append("softmax VJP of one row (float64): through the n x n Jacobian against p * (g - <g, p>)")
    out.append(f"  {'n':>6s} {'Jacobian ms':>12s} {'VJP ms':>9s} {'ratio':>8s} {'Jacobian peak':>14s} "
               f"{'VJP peak':>10s}")
    for entry in report["jacobian"]:
        out.append(f"  {entry['n']:6d} {1e3 * entry['jacobian_seconds']:12.3f} {1e3 * entry['vjp_seconds']:9.4f} "
                   f"{entry['jacobian_seconds'] / entry['vjp_seconds']:8.0f} "
                   f"{_bytes(entry['jacobian_peak_bytes']):>14s} {_bytes(entry['vjp_peak_bytes']):>10s}")
    if report["vocabulary"]:
        first = report["vocabulary"][0]
        out.append("")
        out.append(f"cross-entropy over a large vocabulary with gradients (float32): logits "
                   f"{_bytes(first['logits_bytes'])}, outputs dh and dW {_bytes(first['outputs_bytes'])}")
        out.append(f"  {'version':18s} {'peak memory':>12s} {'seconds':>8s} {'max difference':>15s}")
        for entry in report["vocabulary"]:
            out.append(f"  {entry['name']:18s} {_bytes(entry['peak_bytes']):>12s} {entry['seconds']:8.3f} "
                       f"{entry['max_difference']:15.1e}")
    for note in report["notes"]:
        out.append(f"note: {note}")
    return "\n".join(out)


def main(arguments: list[str] | None = None) -> int:
    """``softgrad bench [--quick | --full] [--threads N] [--json PATH] [--no-compile] [--no-gpu]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="softgrad bench",
        description="Measure softmax and cross-entropy, forward and backward, against this machine's own "
                    "limits (copy bandwidth and exp passes, measured in the same run); chapter 8 explains the table.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="preset",
                      help="small sizes, a few seconds (what the book and the tests run)")
    size.add_argument("--full", action="store_const", const="full", dest="preset",
                      help="4096 x 4096 logits, a few minutes (the default)")
    parser.add_argument("--threads", type=int, default=None, help="threads for the CPU rows (default: every core)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="the logits' floating type (default float32; the compiled rows run in float32 only)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    parser.add_argument("--compile", dest="compile", action="store_true", default=None,
                        help="include torch.compile rows (default: in --full only)")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile rows")
    parser.add_argument("--no-gpu", dest="gpu", action="store_false", help="skip the GPU tables")
    options = parser.parse_args(arguments)
    report = run(options.preset or "full", threads=options.threads, dtype=options.dtype, compile=options.compile,
                 gpu=options.gpu, progress=sys.stderr)
    print(format_report(report))
    if options.json:
        with open(options.json, "w") as file:
            json.dump(report, file, indent=2)
            file.write("\n")
        print(f"wrote {options.json}")
    return 0
