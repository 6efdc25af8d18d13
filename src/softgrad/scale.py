"""Softmax at scale (chapter 8): fast kernels, online log-sum-exp, and chunked cross-entropy.

Three families of functions live here, each used by the book, by ``softgrad bench`` and by
the tests:

* **Softmax cross-entropy, forward and backward, on the CPU.** A naive version, the stable
  version of chapter 4, and the course's fastest NumPy version,
  :func:`softmax_cross_entropy_fused`: it works on blocks of rows small enough to stay in
  the processor's cache, does every pass over a block while it is there, and runs the
  blocks on several threads (NumPy's ufuncs release the GIL, so threads can run in
  parallel; whether they speed it up depends on the machine).
  The same three levels exist for softmax with its vector-Jacobian product.
* **Online log-sum-exp.** :func:`logsumexp_partial` summarises a chunk of columns by its
  maximum and its rescaled sum; :func:`logsumexp_combine` merges two summaries (the
  operation is associative, so chunks can be combined in any grouping, on any number of
  workers); :func:`online_logsumexp` reads a stream of chunks once (Milakov and
  Gimelshein, 2018).
* **Cross-entropy over a large vocabulary.** :func:`chunked_linear_cross_entropy` computes
  ``mean CE(h @ W, target)`` and its gradients without ever holding the ``(N, V)`` logits:
  one pass over the columns of ``W`` for the log-sum-exp of every row, a second pass that
  recomputes each chunk of logits and turns it into its share of the gradients.

PyTorch versions (:func:`torch_softmax_cross_entropy_fused`,
:func:`torch_chunked_linear_cross_entropy`) take tensors on any device: the device of the
inputs is the device of the work, so one ``device`` value chosen by the caller decides
where everything runs. PyTorch is imported lazily; the NumPy functions need only NumPy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "available_threads",
    "chunked_linear_cross_entropy",
    "linear_cross_entropy_naive",
    "logsumexp_combine",
    "logsumexp_partial",
    "online_logsumexp",
    "softmax_cross_entropy_fused",
    "softmax_cross_entropy_naive",
    "softmax_cross_entropy_stable",
    "softmax_forward_backward_fused",
    "softmax_forward_backward_naive",
    "softmax_forward_backward_stable",
    "torch_chunked_linear_cross_entropy",
    "torch_softmax_cross_entropy_fused",
]

BLOCK_BYTES = 2 * 1024 * 1024
"""The size of the block of rows that the fused kernels process at a time.

Every pass after the first reads the block from a cache instead of main memory, so it
must fit in a cache with its output; but every block costs a dozen NumPy calls, each of
which takes the GIL for a microsecond or two, and threads that queue for the GIL stall.
Measured on the course's 2-vCPU machine, blocks of 1 to 4 MB (which fit in the shared
L3 cache) were fastest, and blocks of 256 KB (which fit in L2) up to 20% slower."""


def available_threads() -> int:
    """The number of cores this process may run on (its CPU affinity, where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """One long-lived pool per thread count: starting threads on every call would cost more
    than the work on small inputs."""
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="softgrad")
    return _POOLS[threads]


def _run_on_row_ranges(work: Callable[[int, int], None], rows: int, threads: int | None) -> None:
    """Call ``work(start, stop)`` on ``threads`` contiguous row ranges in parallel, and wait."""
    threads = max(1, min(threads or available_threads(), rows))
    bounds = np.linspace(0, rows, threads + 1).astype(int)
    if threads == 1:
        work(0, rows)
        return
    futures = [_pool(threads).submit(work, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for future in futures:
        future.result()  # re-raises an exception from a worker


def _float_dtype(x: np.ndarray) -> np.dtype:
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)


def _exp_rows(z: np.ndarray, out: np.ndarray, always_shift: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Write ``exp(z - shift)`` into ``out`` row by row; return the row sums and the shifts
    (None when no row was shifted).

    Softmax is shift invariant (chapter 1), so any shift gives the same probabilities; the
    shift by the row maximum only has to keep ``exp`` finite and the largest term near 1.
    Most rows of real logits need no shift at all. The unshifted sum ``s`` of a row is safe
    when ``1 <= s <= sqrt(largest float)``:

    * ``s >= 1``: the terms that matter did not underflow (a term that did is below the
      smallest normal number even after dividing by the sum);
    * ``s <= sqrt(largest float)``: nothing overflowed, and the scale factors the callers
      multiply by, ``1 / s`` and ``1 / (N s)``, stay normal numbers (for any ``N`` up to
      ``1 / (sqrt(largest float) * smallest normal)``, about 5e18 in float32). Without this
      bound, a row with a logit near the overflow threshold (87 in float32) has a finite
      sum near 1e38, ``1 / (N s)`` is subnormal, and the gradient loses up to four digits.

    So the kernel first exponentiates unshifted and checks the sums; only the rows that
    fail the check are recomputed with the max shift. That saves a pass for the maximum and
    a pass for the subtraction. ``always_shift=True`` shifts every row, to measure what
    those passes cost.
    """
    if always_shift:
        shift = z.max(axis=1)
        np.subtract(z, shift[:, None], out=out)
        np.exp(out, out=out)
        return out.sum(axis=1), shift
    with np.errstate(over="ignore"):  # an overflow is detected below and repaired
        np.exp(z, out=out)
    sums = out.sum(axis=1)
    largest_safe = np.sqrt(np.finfo(out.dtype).max)
    unsafe = np.flatnonzero(~((sums >= 1) & (sums <= largest_safe)))  # nan fails both tests
    if unsafe.size == 0:
        return sums, None
    shift = np.zeros(z.shape[0], dtype=z.dtype)
    shift[unsafe] = z[unsafe].max(axis=1)
    out[unsafe] = np.exp(z[unsafe] - shift[unsafe, None])
    sums[unsafe] = out[unsafe].sum(axis=1)
    return sums, shift


# ---------------------------------------------------------------------------------------
# Softmax cross-entropy, forward and backward
# ---------------------------------------------------------------------------------------

def _labels(target: np.ndarray, rows: int) -> np.ndarray:
    target = np.asarray(target)
    if target.shape != (rows,) or not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"target must hold one integer class index per row, shape ({rows},); got "
                         f"{target.dtype} of shape {target.shape}")
    return target


def softmax_cross_entropy_naive(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """``(mean loss, gradient)`` straight from the formulas: ``exp``, normalise, ``log``.

    Overflows for logits above about 88 (float32) and takes the log of probabilities that
    may have underflowed: the version chapter 1 warns against, kept as a baseline.
    """
    n = logits.shape[0]
    target = _labels(target, n)
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(-np.mean(np.log(p[rows, target]), dtype=np.float64))
    onehot = np.zeros_like(p)
    onehot[rows, target] = 1
    return loss, (p - onehot) / n


def softmax_cross_entropy_stable(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """``(mean loss, gradient)`` as chapter 4 writes it: max shift, log-sum-exp, ``(P - Y) / N``.

    Every step makes a new array of the size of the logits: clear, stable, and about six
    passes over memory.
    """
    n = logits.shape[0]
    target = _labels(target, n)
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean((m[:, 0] + np.log(s[:, 0])) - logits[rows, target], dtype=np.float64))
    grad = e / s
    grad[rows, target] -= 1
    return loss, grad / n


def _block_rows(classes: int, itemsize: int, block_rows: int | None) -> int:
    return block_rows or max(1, BLOCK_BYTES // max(1, classes * itemsize))


def softmax_cross_entropy_fused(
    logits: np.ndarray,
    target: np.ndarray,
    *,
    threads: int | None = None,
    block_rows: int | None = None,
    always_shift: bool = False,
) -> tuple[float, np.ndarray]:
    """``(mean loss, gradient)`` of softmax cross-entropy, fast: the course's
    fastest NumPy version.

    ``logits`` is ``(N, C)`` (any float dtype, kept in the gradient),
    ``target`` integer class indices ``(N,)``. The result equals
    :func:`softmax_cross_entropy_stable` to rounding; three things make it
    fast:

    1. **One block at a time.** The rows are processed in blocks of about
       :data:`BLOCK_BYTES`, small enough to stay in the core's cache: the
       logits are read from memory once, the gradient is written once, and
       the passes in between (maximum, ``exp``, sum, scaling) hit the cache.
       No temporary of the size of the logits exists.
    2. **In place.** ``exp`` writes straight into the gradient's buffer,
       which is then scaled by ``1 / (N * sum)`` and has ``1 / N``
       subtracted at the target.
    3. **Threads.** Row ranges run on ``threads`` threads (default: every
       available core). NumPy's ufuncs release the GIL while they loop, so
       the threads can run in parallel (how much that gains depends on the
       machine: measure it with ``softgrad bench``).

    The row maximum is computed and subtracted only for rows that need it
    (see ``_exp_rows``; ``always_shift=True`` does it for every row, as
    chapter 1 teaches, to measure what the two extra passes cost). Inputs
    are never modified.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(
            f"logits must have shape (N, C); got shape {logits.shape}")
    if not np.issubdtype(logits.dtype, np.floating):
        logits = logits.astype(np.float64)
    n, c = logits.shape
    target = _labels(target, n)
    grad = np.empty_like(logits)
    row_loss = np.empty(n, dtype=np.float64)
    step = _block_rows(c, logits.itemsize, block_rows)
    inv_n = logits.dtype.type(1.0 / n)

    def work(first: int, last: int) -> None:
        for start in range(first, last, step):
            stop = min(start + step, last)
            z, g = logits[start:stop], grad[start:stop]
            y = target[start:stop]
            rows = np.arange(stop - start)
            s, shift = _exp_rows(z, g, always_shift)
            # loss of a row, in float64:
            # logsumexp(z) - z[target] = shift + log(sum) - z[target]
            row_loss[start:stop] = np.log(s, dtype=np.float64) - z[rows, y]
            if shift is not None:
                row_loss[start:stop] += shift
            g *= (inv_n / s)[:, None]
            g[rows, y] -= inv_n

    _run_on_row_ranges(work, n, threads)
    return float(row_loss.mean()), grad


def softmax_forward_backward_naive(z: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(p, dz)``: softmax of the rows of ``z`` and its VJP with ``g``, without the max shift."""
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    return p, p * (g - np.sum(g * p, axis=1, keepdims=True))


def softmax_forward_backward_stable(z: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(p, dz)`` as chapters 1 and 3 write them: shifted softmax, then ``p * (g - <g, p>)``."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return p, p * (g - np.sum(g * p, axis=1, keepdims=True))


def softmax_forward_backward_fused(z: np.ndarray, g: np.ndarray, *, threads: int | None = None,
                                   block_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(p, dz)``: softmax of the rows of ``z`` and its VJP ``p * (g - <g, p>)``, blocked and threaded.

    The same three techniques as :func:`softmax_cross_entropy_fused`; the memory that must
    move is ``z`` and ``g`` read once, ``p`` and ``dz`` written once.
    """
    z, g = np.asarray(z), np.asarray(g)
    if z.ndim != 2 or g.shape != z.shape:
        raise ValueError(f"z and g must have the same shape (N, C); got {z.shape} and {g.shape}")
    n, c = z.shape
    p, dz = np.empty_like(z), np.empty_like(z)
    step = _block_rows(c, z.itemsize, block_rows)

    def work(first: int, last: int) -> None:
        for start in range(first, last, step):
            stop = min(start + step, last)
            zb, gb, pb, db = z[start:stop], g[start:stop], p[start:stop], dz[start:stop]
            sums, _ = _exp_rows(zb, pb, always_shift=False)
            pb *= (1 / sums)[:, None]
            np.multiply(gb, pb, out=db)
            inner = db.sum(axis=1)  # <g, p> of every row
            np.subtract(gb, inner[:, None], out=db)
            db *= pb

    _run_on_row_ranges(work, n, threads)
    return p, dz


# ---------------------------------------------------------------------------------------
# Online log-sum-exp
# ---------------------------------------------------------------------------------------

def logsumexp_partial(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The summary ``(m, s)`` of a chunk of columns: its row maxima ``m`` and
    ``s = sum(exp(chunk - m))`` along the last axis, so that ``logsumexp = m + log(s)``."""
    chunk = np.asarray(chunk)
    if not np.issubdtype(chunk.dtype, np.floating):
        chunk = chunk.astype(np.float64)
    m = chunk.max(axis=-1)
    # A row whose entries are all -inf (masked) has m = -inf and an empty sum: s = 0, not
    # exp(-inf - (-inf)) = nan. Shifting such a row by 0 instead gives exactly that.
    shift = np.where(m == -np.inf, 0.0, m).astype(m.dtype, copy=False)
    return m, np.exp(chunk - shift[..., None]).sum(axis=-1)


def logsumexp_combine(a: tuple[np.ndarray, np.ndarray],
                      b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Merge two summaries of disjoint sets of columns into the summary of their union.

    ``m = max(m_a, m_b)``, and each sum is rescaled to the new maximum before adding:
    ``s = s_a * exp(m_a - m) + s_b * exp(m_b - m)``. The factors are at most 1, so nothing
    overflows; a factor whose maximum is -inf (a summary of no finite entry) is 0. The
    operation is commutative (exactly, even in floating point) and associative (exactly in
    real arithmetic, to rounding in floating point), which is what lets a GPU, or a
    FlashAttention kernel, combine partial results in any order.
    """
    (m_a, s_a), (m_b, s_b) = a, b
    m = np.maximum(m_a, m_b)
    return m, s_a * _rescale(m_a, m) + s_b * _rescale(m_b, m)


def _rescale(m_old: np.ndarray, m_new: np.ndarray) -> np.ndarray:
    """``exp(m_old - m_new)``, defined as 0 when ``m_old`` is -inf (a summary of no finite entry).

    Without that definition, combining two fully masked rows (every entry -inf, as in a
    masked attention row) would evaluate exp(-inf - (-inf)) = exp(nan) = nan; with it, the
    empty state (-inf, 0) is a neutral element: combining it with any summary changes nothing.
    """
    with np.errstate(invalid="ignore"):
        factor = np.where(m_old == -np.inf, 0.0, np.exp(m_old - m_new))
    return factor.astype(np.result_type(m_old, m_new), copy=False)


def online_logsumexp(chunks: Iterable[np.ndarray]) -> np.ndarray:
    """Row-wise log-sum-exp of logits that arrive as chunks of columns, in one pass.

    ``chunks`` yields arrays of shape ``(..., c_i)`` that together form the columns of the
    logits; it is read exactly once (a one-shot generator is fine) and no chunk is kept
    after it has been summarised, so the extra memory is that of one chunk.
    """
    state = None
    dtype = None
    for chunk in chunks:
        partial = logsumexp_partial(chunk)
        dtype = partial[0].dtype
        state = partial if state is None else logsumexp_combine(state, partial)
    if state is None:
        raise ValueError("online_logsumexp needs at least one chunk")
    m, s = state
    with np.errstate(divide="ignore"):  # a fully masked row: m = -inf, s = 0, log-sum-exp -inf
        return (m + np.log(s)).astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------
# Cross-entropy over a large vocabulary
# ---------------------------------------------------------------------------------------

def linear_cross_entropy_naive(h: np.ndarray, W: np.ndarray,
                               target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(loss, dh, dW)`` of ``mean CE(h @ W, target)``, materialising the ``(N, V)`` logits
    (and their gradient): the baseline whose memory the chunked version avoids."""
    logits = h @ W
    loss, dlogits = softmax_cross_entropy_stable(logits, target)
    return loss, dlogits @ W.T, h.T @ dlogits


def _chunks(vocabulary: int, chunk_size: int) -> range:
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size}")
    return range(0, vocabulary, int(chunk_size))


def chunked_linear_cross_entropy(h: np.ndarray, W: np.ndarray, target: np.ndarray,
                                 chunk_size: int) -> tuple[float, np.ndarray, np.ndarray]:
    """``(loss, dh, dW)`` of ``mean CE(h @ W, target)`` without holding the ``(N, V)`` logits.

    ``h`` is ``(N, D)`` (the last hidden states), ``W`` is ``(D, V)`` (the output layer),
    ``target`` integer class indices ``(N,)``. The columns of ``W`` are visited in chunks
    of ``chunk_size``, twice:

    1. **The normaliser.** Each chunk of logits ``h @ W[:, chunk]`` is summarised by
       :func:`logsumexp_partial` and merged into a running summary
       (:func:`logsumexp_combine`); the logit of each row's target is picked up when its
       chunk passes. After the pass, ``lse = m + log(s)`` and the loss is
       ``mean(lse - z[target])``.
    2. **The gradients.** Each chunk of logits is computed again and turned into its
       gradient ``G = (exp(z - lse) - onehot) / N``, which gives ``dW[:, chunk] = h.T @ G``
       directly and adds ``G @ W[:, chunk].T`` to ``dh``.

    Recomputing the logits costs a second matrix product; in exchange the extra memory is
    ``O(N * chunk_size)`` instead of ``O(N * V)``. Fused GPU kernels (Liger Kernel, Cut
    Cross-Entropy) make the same trade.
    """
    h, W = np.asarray(h), np.asarray(W)
    n, d = h.shape
    if W.ndim != 2 or W.shape[0] != d:
        raise ValueError(f"W must have shape (D, V) with D = {d} (the columns of h); got shape {W.shape}")
    vocabulary = W.shape[1]
    target = _labels(target, n)
    rows = np.arange(n)

    state = None
    target_logit = np.empty(n, dtype=np.result_type(h, W, np.float32))
    for start in _chunks(vocabulary, chunk_size):
        stop = min(start + int(chunk_size), vocabulary)
        z = h @ W[:, start:stop]
        partial = logsumexp_partial(z)
        state = partial if state is None else logsumexp_combine(state, partial)
        here = (target >= start) & (target < stop)
        target_logit[here] = z[rows[here], target[here] - start]
    m, s = state
    lse = m + np.log(s)
    loss = float(np.mean(lse - target_logit, dtype=np.float64))

    dh = np.zeros_like(h, dtype=_float_dtype(h))
    dW = np.empty_like(W, dtype=_float_dtype(W))
    for start in _chunks(vocabulary, chunk_size):
        stop = min(start + int(chunk_size), vocabulary)
        W_chunk = W[:, start:stop]
        G = h @ W_chunk
        G -= lse[:, None]
        np.exp(G, out=G)  # the probabilities of this chunk's classes, in place
        here = (target >= start) & (target < stop)
        G[rows[here], target[here] - start] -= 1
        G /= n
        dW[:, start:stop] = h.T @ G
        dh += G @ W_chunk.T
    return loss, dh, dW


# ---------------------------------------------------------------------------------------
# PyTorch, on any device
# ---------------------------------------------------------------------------------------

def torch_softmax_cross_entropy_fused(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean loss, gradient)`` of softmax cross-entropy written out by hand, without autograd.

    Runs on the device of ``logits``. Eager PyTorch launches one kernel per line; compiled
    with ``torch.compile`` the lines fuse into kernels that read the logits once and write
    the gradient once, which is how the benchmark reaches the memory bandwidth on a GPU.
    """
    import torch

    n = logits.shape[0]
    m = logits.amax(dim=1, keepdim=True)
    e = torch.exp(logits - m)
    s = e.sum(dim=1, keepdim=True)
    rows = torch.arange(n, device=logits.device)
    loss = (m[:, 0] + torch.log(s[:, 0]) - logits[rows, target]).float().mean()
    grad = e / (s * n)
    grad[rows, target] -= 1.0 / n
    return loss, grad


def torch_chunked_linear_cross_entropy(h: torch.Tensor, W: torch.Tensor, target: torch.Tensor,
                                       chunk_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The PyTorch twin of :func:`chunked_linear_cross_entropy`, on the device of ``h``."""
    import torch

    n, vocabulary = h.shape[0], W.shape[1]
    rows = torch.arange(n, device=h.device)
    m = torch.full((n,), -torch.inf, dtype=h.dtype, device=h.device)
    s = torch.zeros(n, dtype=h.dtype, device=h.device)
    target_logit = torch.empty(n, dtype=h.dtype, device=h.device)
    for start in _chunks(vocabulary, chunk_size):
        stop = min(start + int(chunk_size), vocabulary)
        z = h @ W[:, start:stop]
        m_new = torch.maximum(m, z.amax(dim=1))
        s = s * torch.exp(m - m_new) + torch.exp(z - m_new[:, None]).sum(dim=1)
        m = m_new
        here = (target >= start) & (target < stop)
        target_logit[here] = z[rows[here], target[here] - start]
    lse = m + torch.log(s)
    loss = (lse - target_logit).mean()
    dh, dW = torch.zeros_like(h), torch.empty_like(W)
    for start in _chunks(vocabulary, chunk_size):
        stop = min(start + int(chunk_size), vocabulary)
        G = torch.exp(h @ W[:, start:stop] - lse[:, None])
        here = (target >= start) & (target < stop)
        G[rows[here], target[here] - start] -= 1
        G /= n
        dW[:, start:stop] = h.T @ G
        dh += G @ W[:, start:stop].T
    return loss, dh, dW
