"""Chapter 9, softmax as a GPU kernel: masks, blocks, strides and launches in Triton.

A kernel goes wrong in the ways every softmax does (no shift, the batch's maximum, the log of a
probability, a gradient without 1/N) and in ways of its own: lanes past the row's end loaded
without a mask or padded with 0, the maximum of one block used as the row's, the running sum
not rescaled, a store past the row's end, rows assumed to lie ``n`` entries apart in memory, the
work left to PyTorch in the launcher, more than one launch.

The wrong implementations here imitate the graded launchers of problem set 7 in NumPy:
``triton_softmax(z, block_size=...)`` returns the probabilities, and
``fused_cross_entropy(logits, target, block_size=...)`` returns ``(loss, grad)``. ``z`` arrives
in the kernel's arithmetic (float32, or float64), and each reproduction walks the rows block by
block as a kernel does, so that a mistake that depends on the block (the last block's mask, a
block's maximum, a missed rescaling) gives what the kernel gives. The checks
(:mod:`softgrad.testing.kernels`) place every input in a buffer followed by :data:`GUARD_VALUE`,
so that a load past the end of the last row reads a known number, here as there.

Mistakes that no value shows (a store past the row's end, ignored strides, forbidden calls, the
number of launches, a widened dtype) are named by the checks directly, from what they watch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from softgrad.i18n import N_
from softgrad.mistakes.at_scale import MASKED_ROW_NAN, ONLINE_SUM_NOT_RESCALED, TARGET_NOT_OFFSET
from softgrad.mistakes.catalogue import mistake, reproduces
from softgrad.mistakes.cross_entropy import (
    CE_GRAD_NO_BATCH_MEAN,
    CE_GRAD_SIGN_FLIPPED,
    CE_INTEGER_LABELS_AS_ONEHOT,
    CE_SUM_NOT_MEAN,
    LOG_OF_PROBABILITY,
)
from softgrad.mistakes.softmax import CLIP_BOUNDS, SOFTMAX_CLIP, SOFTMAX_GLOBAL_MAX, SOFTMAX_NO_MAX_SHIFT

__all__ = [
    "GUARD_VALUE", "KERNEL_UNMASKED_LOAD", "KERNEL_PADDING_ZERO", "KERNEL_STORE_PAST_END", "KERNEL_BLOCK_MAX",
    "KERNEL_ROW_STRIDE", "KERNEL_WORK_OUTSIDE", "KERNEL_LAUNCHES",
]

_CHAPTER = "09_triton"

GUARD_VALUE = 30.0
"""What lies after the last row of every input the checks pass to a kernel. A load past the row's
end reads it, and it outweighs ordinary logits (``e^30`` is ten million million times ``e^0``), so a
missing mask shows in the last row's probabilities."""

KERNEL_UNMASKED_LOAD = mistake(
    "kernel-unmasked-load",
    N_("a load without a mask on the last block of a row"),
    N_("""A block has BLOCK lanes, and a row of n entries ends inside its last block unless BLOCK
    divides n. tl.load(row + cols) without mask=cols < n reads the lanes past the row's end
    anyway: the next row's first entries, and past the last row whatever memory follows (on a
    GPU, possibly an illegal address). Those numbers enter the row's maximum and sum. Load with
    mask=cols < n_cols and other=float("-inf"), so that the lanes past the end are -inf, which
    the maximum ignores and exp turns into 0."""),
    _CHAPTER, N_("Loads and stores with masks"),
)

KERNEL_PADDING_ZERO = mistake(
    "kernel-padding-zero",
    N_("the lanes past the row's end loaded as 0 instead of -inf"),
    N_("""With mask=cols < n but other=0.0 (or no other at all), every lane past the row's end
    holds 0: exp(0 - m) adds to the row's sum once per such lane, and 0 becomes the row's
    maximum when all its logits are negative. The padding must be the number that changes
    neither the maximum nor the sum: other=float("-inf"), since max(m, -inf) = m and
    exp(-inf) = 0."""),
    _CHAPTER, N_("Loads and stores with masks"),
)

KERNEL_STORE_PAST_END = mistake(
    "kernel-store-past-row-end",
    N_("a store without a mask, past the end of the row"),
    N_("""tl.store(out + cols, p) without mask=cols < n writes every lane of the last block, also
    those past the row's end: into the next row (which its own program may already have
    written: programs run in no fixed order on a GPU) and, for the last row, past the end of
    the output, into memory that belongs to another tensor or to nobody. The checks place a
    guard zone after every tensor your launcher allocates and find it overwritten. Store with
    the same mask as the load."""),
    _CHAPTER, N_("Loads and stores with masks"),
)

KERNEL_BLOCK_MAX = mistake(
    "kernel-block-max",
    N_("the maximum of a block used where the row's maximum is needed"),
    N_("""A one-block kernel can take tl.max(x) as the row's maximum because the block is the row.
    Once a row takes several blocks, tl.max(x) is only that block's maximum: exponentials
    shifted by it, or a sum that restarts from it in every block, are measured against
    different maxima in different blocks, and the probabilities no longer add up to one.
    Keep the running maximum m of the whole row in the first pass (rescaling the sum when it
    grows), and shift every block of the second pass by the final m."""),
    _CHAPTER, N_("Online softmax in a kernel"),
)

KERNEL_ROW_STRIDE = mistake(
    "kernel-ignores-row-stride",
    N_("rows assumed to lie n entries apart in memory"),
    N_("""row * n_cols is where row `row` starts only in a contiguous tensor. A slice of columns
    (x[:, :n]) keeps the row stride of the full tensor, a transposed tensor has column stride
    N, and x.reshape(-1, n) returns such a view whenever it can. Pass x.stride(0) to the kernel
    and use it (row * stride), with x.stride(-1) == 1, or make the tensor contiguous in the
    launcher (x.contiguous()), or refuse it with a clear error."""),
    _CHAPTER, N_("A row-wise softmax kernel"),
)

KERNEL_WORK_OUTSIDE = mistake(
    "kernel-work-outside",
    N_("the work done by PyTorch (or by the course's kernels) instead of your kernel"),
    N_("""The launcher's job is to allocate the outputs, choose the grid and launch the kernel.
    torch.softmax, F.cross_entropy, torch.logsumexp, a torch.exp or a maximum over the whole
    input, autograd, or the course's own kernels (softgrad.gpu) do the work in other kernels,
    each with its own pass over memory: the result may be right, but it is not your kernel's.
    Compute everything inside the kernel; the launcher may only combine the N per-row results
    into the mean loss."""),
    _CHAPTER, N_("A row-wise softmax kernel"),
)

KERNEL_LAUNCHES = mistake(
    "kernel-launch-count",
    N_("more (or fewer) than one kernel launch per call"),
    N_("""Every launch reads its inputs from GPU memory again and pays a fixed cost of several
    microseconds; a Python loop that launches one kernel per row pays it N times. One launch
    with a grid of one program per row does everything: the loss, the log-sum-exp and the
    gradient come out of the same program, which reads the row once for the statistics and
    once for the gradient."""),
    _CHAPTER, N_("Fused cross-entropy, forward and backward"),
)


# ---- the kernels, walked block by block in NumPy -----------------------------------------------

def _compute(z: np.ndarray) -> np.ndarray:
    """The kernel's arithmetic: float64 stays float64, everything else becomes float32."""
    z = np.asarray(z)
    return z.astype(np.float64 if z.dtype == np.float64 else np.float32)


def _blocks(z: np.ndarray, block: int, load: str, clip: float | None = None
            ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For every block of every row (rows at once): the columns, which lie inside the row, and what
    the kernel loads. ``load``: "masked" (-inf past the end), "zero" (0 past the end) or "unmasked"
    (past the end: the next row's entries, and :data:`GUARD_VALUE` after the last row). ``clip``: the
    kernel clips what it loaded to [-clip, clip], the lanes past the end included."""
    rows, n = z.shape
    flat = np.concatenate([z.ravel(), np.full(block, GUARD_VALUE, dtype=z.dtype)])
    for start in range(0, n, block):
        cols = start + np.arange(block)
        inside = cols < n
        if load == "unmasked":
            x = flat[np.arange(rows)[:, None] * n + cols[None, :]]
        else:
            x = np.where(inside, z[:, np.minimum(cols, n - 1)], -np.inf if load == "masked" else 0.0)
        if clip is not None:
            x = np.clip(x, -clip, clip)
        yield cols, inside, x.astype(z.dtype)


def _statistics(z: np.ndarray, block: int, *, load: str = "masked", rescale: bool = True, guard: bool = True,
                running: bool = True, shift: str = "row", clip: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pass 1: each row's (m, s), as a kernel's loop computes them.

    ``rescale=False``: the old sum is not multiplied by exp(m_old - m_new). ``guard=False``: the
    factor and the shift are taken literally when the maximum is -inf (nan for a masked row).
    ``running=False``: m is each block's own maximum, and the sum restarts from it without a
    rescaling (the block's maximum used as the row's). ``shift``: "row" (the running maximum),
    "none" (no shift: s = sum(exp(z)), m = 0), "global" (the maximum of the whole input). ``clip``:
    see :func:`_blocks`.
    """
    rows = z.shape[0]
    m = np.full(rows, -np.inf, dtype=z.dtype)
    s = np.zeros(rows, dtype=z.dtype)
    top = np.max(z) if z.size else 0.0
    for _, _, x in _blocks(z, block, load, clip):
        if shift == "none":
            m, s = np.zeros(rows, dtype=z.dtype), s + np.sum(np.exp(x), axis=1)
            continue
        if shift == "global":
            m, s = np.full(rows, top, dtype=z.dtype), s + np.sum(np.exp(x - top), axis=1)
            continue
        block_max = np.max(x, axis=1)
        new = np.maximum(m, block_max) if running else block_max
        by = np.where(new == -np.inf, 0.0, new).astype(z.dtype) if guard else new
        factor = np.exp(m - by) if (rescale and running) else 1.0
        s = s * factor + np.sum(np.exp(x - by[:, None]), axis=1)
        m = new
    return m, s


def _softmax(z, block_size, *, second: str = "row", **options) -> np.ndarray:
    """The online softmax kernel with one deliberate change (see :func:`_statistics`); ``second``:
    "row" (pass 2 shifts by the row's m), "block" (by each block's own maximum), "local" (each
    block normalised by its own maximum and sum)."""
    z = _compute(z)
    shape = z.shape
    z = z.reshape(-1, shape[-1])
    block = int(block_size)
    m, s = _statistics(z, block, **options)
    guard = options.get("guard", True)
    by = np.where(m == -np.inf, 0.0, m).astype(z.dtype) if guard else m
    scale = 1.0 / (np.where(s > 0, s, 1.0).astype(z.dtype) if guard else s)
    out = np.empty_like(z)
    for cols, inside, x in _blocks(z, block, options.get("load", "masked"), options.get("clip")):
        if second == "block":
            p = np.exp(x - np.max(x, axis=1, keepdims=True)) * scale[:, None]
        elif second == "local":
            e = np.exp(x - np.max(x, axis=1, keepdims=True))
            p = e / np.sum(e, axis=1, keepdims=True)
        else:
            p = np.exp(x - by[:, None]) * scale[:, None]
        out[:, cols[inside]] = p[:, inside]
    return out.reshape(shape)


def _cross_entropy(logits, target, block_size, *, loss: str = "mean", grad: str = "mean", onehot: str = "global",
                   probabilities: str = "lse", **options) -> tuple[float, np.ndarray]:
    """The fused cross-entropy kernel with one deliberate change: ``loss`` "mean", "sum" or "log-p" (the
    log of the target's probability); ``grad`` "mean", "sum" (no 1/N) or "flipped"; ``onehot``
    "global", "local" (the target compared with the block's lane numbers) or "labels" (the label
    subtracted from every entry); ``probabilities`` "lse" (exp(z - lse)) or "ratio" (exp(z) / s,
    without a shift); the rest as :func:`_statistics` (a kernel's ``clip`` applies to every logit it
    loads, the target's included)."""
    z = _compute(logits)
    target = np.asarray(target).astype(np.int64)
    rows, n = z.shape
    m, s = _statistics(z, int(block_size), **options)
    if options.get("clip") is not None:
        z = np.clip(z, -options["clip"], options["clip"])
    picked = z[np.arange(rows), target]
    if options.get("guard", True):
        masked = m == -np.inf
        lse = np.where(masked, 0.0, m) + np.log(np.where(masked, 1.0, s))
    else:
        masked = np.zeros(rows, dtype=bool)
        lse = m + np.log(s)
    lse = lse.astype(z.dtype)
    row_loss = -np.log(np.exp(picked - lse)) if loss == "log-p" else lse - picked
    row_loss = np.where(masked, 0.0, row_loss)
    total = float(np.sum(row_loss, dtype=np.float64))
    p = np.exp(z) / s[:, None] if probabilities == "ratio" else np.exp(z - lse[:, None])
    cols = np.arange(n)
    if onehot == "labels":
        y = target[:, None].astype(z.dtype)
    elif onehot == "local":
        y = ((cols % int(block_size))[None, :] == target[:, None]).astype(z.dtype)
    else:
        y = (cols[None, :] == target[:, None]).astype(z.dtype)
    g = (y - p) if grad == "flipped" else (p - y)
    g = g if grad == "sum" else g / rows
    g = np.where(masked[:, None], 0.0, g).astype(z.dtype)
    return (total if loss == "sum" else total / rows), g


def _softmax_variant(**options) -> Callable[..., np.ndarray]:
    def triton_softmax(z, block_size=1024):
        return _softmax(z, block_size, **options)

    return triton_softmax


def _cross_entropy_variant(**options) -> Callable[..., tuple[float, np.ndarray]]:
    def fused_cross_entropy(logits, target, block_size=1024):
        return _cross_entropy(logits, target, block_size, **options)

    return fused_cross_entropy


def _both(entry, also=(), **options) -> None:
    """Register the same change in both graded functions."""
    reproduces(entry, "triton_softmax", also=also)(_softmax_variant(**options))
    reproduces(entry, "fused_cross_entropy", also=also)(_cross_entropy_variant(**options))


# ---- the kernel's own mistakes -------------------------------------------------------------------

_both(KERNEL_UNMASKED_LOAD, load="unmasked")
_both(KERNEL_PADDING_ZERO, load="zero")
_both(ONLINE_SUM_NOT_RESCALED, rescale=False)
_both(MASKED_ROW_NAN, guard=False)
_both(KERNEL_BLOCK_MAX, running=False)  # the maximum restarts in every block, and so does the scale of the sum
for _second in ("block", "local"):
    reproduces(KERNEL_BLOCK_MAX, "triton_softmax")(_softmax_variant(second=_second))
reproduces(KERNEL_BLOCK_MAX, "triton_softmax")(_softmax_variant(running=False, second="block"))

# ---- chapter 1's and chapter 4's mistakes, made inside the kernel ----------------------------------

_both(SOFTMAX_NO_MAX_SHIFT, shift="none")
reproduces(SOFTMAX_NO_MAX_SHIFT, "fused_cross_entropy")(_cross_entropy_variant(shift="none", probabilities="ratio"))
_both(SOFTMAX_GLOBAL_MAX, shift="global")
for _bound in CLIP_BOUNDS:  # in the kernel (the lanes past the end too), or in the launcher before it
    _both(SOFTMAX_CLIP, clip=float(_bound))
    reproduces(SOFTMAX_CLIP, "triton_softmax")(
        lambda z, block_size=1024, bound=_bound: _softmax(np.clip(_compute(z), -bound, bound), block_size))
    reproduces(SOFTMAX_CLIP, "fused_cross_entropy")(
        lambda logits, target, block_size=1024, bound=_bound: _cross_entropy(
            np.clip(_compute(logits), -bound, bound), target, block_size))

reproduces(LOG_OF_PROBABILITY, "fused_cross_entropy")(_cross_entropy_variant(loss="log-p"))
reproduces(CE_SUM_NOT_MEAN, "fused_cross_entropy", also=(CE_GRAD_NO_BATCH_MEAN,))(
    _cross_entropy_variant(loss="sum", grad="sum"))
reproduces(CE_SUM_NOT_MEAN, "fused_cross_entropy")(_cross_entropy_variant(loss="sum"))
reproduces(CE_GRAD_NO_BATCH_MEAN, "fused_cross_entropy")(_cross_entropy_variant(grad="sum"))
reproduces(CE_GRAD_SIGN_FLIPPED, "fused_cross_entropy")(_cross_entropy_variant(grad="flipped"))
reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "fused_cross_entropy")(_cross_entropy_variant(onehot="labels"))
reproduces(TARGET_NOT_OFFSET, "fused_cross_entropy")(_cross_entropy_variant(onehot="local"))
