"""Softmax and cross-entropy as GPU kernels, written in Triton (chapter 9).

Triton (Tillet, Kung and Cox, 2019) is a language for GPU kernels embedded in Python: a
function decorated with ``@triton.jit`` is one *program*, launched once for every point of a
*grid*, and each program works on *blocks* of numbers (``tl.arange(0, BLOCK)``) that live in
registers, loading them from memory and storing them back with masks. This module holds the
course's kernels, each with a launcher that takes PyTorch tensors:

* :func:`softmax_one_block`: softmax along the last axis, one program per row, the whole row in
  one block (rows up to :data:`MAX_BLOCK` entries). Each entry is loaded once and stored once.
* :func:`softmax`: the same for rows of any length, read in blocks with chapter 8's online
  recurrence (a running maximum and a running sum rescaled to it): two loads and one store
  per entry.
* :func:`cross_entropy`: the mean softmax cross-entropy of ``(N, C)`` logits against integer
  targets, and its gradient ``(softmax - onehot) / N``, forward and backward in one launch.
  The kernel also saves each row's log-sum-exp, which is all a separate backward pass would
  need to recompute the probabilities (FlashAttention saves the same statistic).

Every kernel computes in float32 (float64 for float64 inputs), whatever the storage dtype, and
stores its results in the input's dtype. A fully masked row (every entry ``-inf``) follows
chapter 8's convention: its log-sum-exp is ``-inf``, its softmax a row of zeros (as
FlashAttention's output), and in :func:`cross_entropy` it is padding: loss 0, gradient 0, and
it still counts in the ``N`` of the mean.

**Where the kernels run.** With a CUDA GPU, Triton compiles them for it. Without one, this
module sets ``TRITON_INTERPRET=1`` when it is imported (unless the variable is already set),
and Triton's interpreter runs every program one after another on the CPU, with NumPy: the
results are the kernels' results, the times say nothing about a GPU (:func:`mode` says which).
Set the variable before ``triton`` is imported, as this module does, for your own kernels too.

:func:`bench_rows` gives ``softgrad bench`` the Triton rows of its GPU table, and
:func:`bytes_moved` the bytes a kernel must move, which turn a time into a bandwidth.

Triton and PyTorch are optional (``pip install "softgrad[triton]"``; on a CUDA machine, PyTorch's
own wheel brings a matching Triton). Without them this module still imports: :data:`UNAVAILABLE`
says why, and the launchers raise ``ModuleNotFoundError``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np

__all__ = [
    "MAX_BLOCK",
    "UNAVAILABLE",
    "available",
    "block_size_for",
    "bench_rows",
    "bytes_moved",
    "cross_entropy",
    "interpreted",
    "mode",
    "softmax",
    "softmax_one_block",
]

MAX_BLOCK = 4096
"""The largest block a launcher chooses by itself: 4096 float32 numbers are 16 KiB of registers
per program, spread over the threads of 8 warps (16 numbers each)."""

INTERPRET = "TRITON_INTERPRET"
"""The environment variable that makes Triton interpret kernels on the CPU instead of compiling them."""

UNAVAILABLE = ""
"""Why the kernels cannot run here (PyTorch or Triton missing); empty when they can."""

try:
    import torch
except ImportError as error:  # optional: the rest of the course works without it
    torch = None
    UNAVAILABLE = f"PyTorch is not installed ({error}; pip install torch)"

_TOO_LATE = False  # Triton was imported, compiling, before the interpreter could be chosen
if torch is not None and INTERPRET not in os.environ and not torch.cuda.is_available():
    # No GPU: interpret the kernels on the CPU. Triton reads the variable when a function is
    # decorated, the functions of its own library included, so it must be set before the first
    # `import triton` of the process.
    _TOO_LATE = "triton" in sys.modules
    os.environ[INTERPRET] = "1"

triton = tl = None
if torch is not None:
    try:
        import triton
        import triton.language as tl
    except ImportError as error:
        UNAVAILABLE = f"Triton is not installed ({error}; pip install triton)"
    else:
        if _TOO_LATE:
            UNAVAILABLE = ("there is no GPU, and Triton was imported before TRITON_INTERPRET=1 was set: set it "
                           "before the first `import triton` (restart the kernel), or import softgrad.gpu first")


def available() -> bool:
    """Whether the kernels can run here (compiled on a GPU, or interpreted on the CPU)."""
    return not UNAVAILABLE


def interpreted() -> bool:
    """Whether Triton interprets the kernels on the CPU (``TRITON_INTERPRET=1``) instead of compiling them."""
    return os.environ.get(INTERPRET, "0").strip().lower() in ("1", "true", "on", "yes")


def mode() -> str:
    """Where the kernels run, in words (for printing)."""
    if UNAVAILABLE:
        return f"nowhere: {UNAVAILABLE}"
    if interpreted():
        return ("interpreted on the CPU (TRITON_INTERPRET=1): the results are the kernels' own, "
                "their times say nothing about a GPU")
    return f"compiled for the GPU ({torch.cuda.get_device_name()})"


def _require() -> None:
    if UNAVAILABLE:
        raise ModuleNotFoundError(UNAVAILABLE)


def _patch_each_grid_once() -> bool:
    """Make Triton's interpreter patch ``triton.language`` once per launch instead of once per call.

    Under the interpreter, every call of a ``@triton.jit`` function from inside a kernel (``tl.max``,
    ``tl.sum``, a helper of your own) runs ``triton.runtime.interpreter._patch_lang`` again: it walks
    the members of ``triton.language`` and its tensor class and replaces each operation by its
    interpreted twin (Triton 3.x). The launch did that already; the repetitions replace nothing
    (a replaced member is no longer a builtin) and cost about a third of the interpreter's time on
    the course's kernels, which the grader runs twice per submission. Within one launch, this
    skips the repetitions whose modules the launch has patched already; outside a launch, and in a
    Triton whose interpreter is laid out otherwise (then this returns False), nothing changes.
    """
    try:
        from triton.runtime import interpreter
    except ImportError:  # pragma: no cover - Triton without an interpreter
        return False
    launch, original = getattr(interpreter, "GridExecutor", None), getattr(interpreter, "_patch_lang", None)
    if launch is None or original is None:
        return False
    if getattr(original, "_softgrad_once", False):
        return True
    languages = (interpreter.tl, interpreter.tl.core)
    patched: list[set[int]] = []  # per running launch: the language modules patched so far

    class _Nothing:
        def restore(self) -> None:
            pass

    def patch_lang(fn):
        visible = {id(value) for value in fn.__globals__.values() if any(value is lang for lang in languages)}
        if patched and visible and visible <= patched[-1]:
            return _Nothing()
        if patched:
            patched[-1] |= visible
        return original(fn)

    run_grid = launch.__call__

    def call(self, *args, **kwargs):
        patched.append(set())
        try:
            return run_grid(self, *args, **kwargs)
        finally:
            patched.pop()

    patch_lang._softgrad_once = True
    patch_lang.original, call.original = original, run_grid  # for the tests, which compare the two
    interpreter._patch_lang = patch_lang
    launch.__call__ = call
    return True


if triton is not None and interpreted():
    _patch_each_grid_once()


def block_size_for(n_cols: int, limit: int = MAX_BLOCK) -> int:
    """The block a launcher uses for rows of ``n_cols`` entries: the smallest power of two that
    holds a row, at most ``limit``. ``tl.arange`` needs a power of two: Triton lays a block out
    over warps, the threads of a warp (32 on NVIDIA GPUs) and registers per thread, all powers
    of two, and reduces it by trees over that layout. A block with fewer lanes than the program
    has threads is replicated; a longer one gives each thread an equal share."""
    if n_cols < 1:
        raise ValueError(f"n_cols must be at least 1, got {n_cols}")
    return min(1 << (int(n_cols) - 1).bit_length(), int(limit))


def bytes_moved(operation: str, shape: tuple[int, int], itemsize: int = 4) -> int:
    """The bytes a kernel must move at least: every input number loaded once, every output stored once.

    ``"softmax"``: read the ``(N, C)`` input and write the ``(N, C)`` probabilities.
    ``"cross_entropy"``: read the logits and the ``N`` int64 targets, write the gradient and, per row,
    the loss and the log-sum-exp (float32). A kernel that reads a row twice (the online softmax,
    whose second pass reads it again) moves more unless the second read hits a cache.
    """
    n, c = (int(d) for d in shape)
    if operation == "softmax":
        return 2 * n * c * itemsize
    if operation == "cross_entropy":
        return 2 * n * c * itemsize + n * 8 + 2 * n * 4
    raise ValueError(f"operation must be 'softmax' or 'cross_entropy', got {operation!r}")


# ---- the kernels -----------------------------------------------------------------------------
# Defined only when Triton can be imported; the launchers below check first.

if triton is not None:

    @triton.jit
    def softmax_one_block_kernel(x_ptr, y_ptr, n_cols, x_row_stride,
                                 y_row_stride, BLOCK: tl.constexpr,
                                 COMPUTE: tl.constexpr):
        """One program per row; the whole row fits in one block."""
        row = tl.program_id(0).to(tl.int64)  # row * stride may pass 2**31
        cols = tl.arange(0, BLOCK)
        inside = cols < n_cols  # the lanes past the row's end do nothing
        x = tl.load(x_ptr + row * x_row_stride + cols, mask=inside,
                    other=float("-inf")).to(COMPUTE)
        m = tl.max(x, axis=0)
        shift = tl.where(m == float("-inf"), 0.0, m)  # masked row: by 0
        e = tl.exp(x - shift)  # 0 past the row's end: exp(-inf) = 0
        s = tl.sum(e, axis=0)
        p = e / tl.where(s > 0.0, s, 1.0)  # masked row: 0 / 1, not 0 / 0
        tl.store(y_ptr + row * y_row_stride + cols, p, mask=inside)

    @triton.jit
    def softmax_kernel(x_ptr, y_ptr, n_cols, x_row_stride, y_row_stride,
                       BLOCK: tl.constexpr, COMPUTE: tl.constexpr):
        """One program per row, read in blocks: the online maximum and
        sum, then the probabilities."""
        row = tl.program_id(0).to(tl.int64)
        x_row = x_ptr + row * x_row_stride
        y_row = y_ptr + row * y_row_stride
        offsets = tl.arange(0, BLOCK)
        m = tl.full([], float("-inf"), COMPUTE)  # the empty state: the
        s = tl.full([], 0.0, COMPUTE)  # maximum and the sum of nothing
        # pass 1: the running maximum, and the sum rescaled to it
        for start in range(0, n_cols, BLOCK):
            cols = start + offsets
            x = tl.load(x_row + cols, mask=cols < n_cols,
                        other=float("-inf")).to(COMPUTE)
            m_new = tl.maximum(m, tl.max(x, axis=0))
            shift = tl.where(m_new == float("-inf"), 0.0, m_new)
            # exp(m - shift) rescales the old sum; it is 0 while m = -inf
            s = s * tl.exp(m - shift) + tl.sum(tl.exp(x - shift), axis=0)
            m = m_new
        shift = tl.where(m == float("-inf"), 0.0, m)
        scale = 1.0 / tl.where(s > 0.0, s, 1.0)
        # pass 2: every probability, stored once
        for start in range(0, n_cols, BLOCK):
            cols = start + offsets
            x = tl.load(x_row + cols, mask=cols < n_cols,
                        other=float("-inf")).to(COMPUTE)
            p = tl.exp(x - shift) * scale
            tl.store(y_row + cols, p, mask=cols < n_cols)

    @triton.jit
    def cross_entropy_kernel(z_ptr, target_ptr, grad_ptr, loss_ptr,
                             lse_ptr, n_rows, n_cols, z_row_stride,
                             grad_row_stride, BLOCK: tl.constexpr,
                             COMPUTE: tl.constexpr):
        """One program per row: its loss, its log-sum-exp and its row
        of the gradient, in one launch."""
        row = tl.program_id(0).to(tl.int64)
        z_row = z_ptr + row * z_row_stride
        g_row = grad_ptr + row * grad_row_stride
        offsets = tl.arange(0, BLOCK)
        target = tl.load(target_ptr + row)
        z_target = tl.load(z_row + target).to(COMPUTE)  # one number
        m = tl.full([], float("-inf"), COMPUTE)
        s = tl.full([], 0.0, COMPUTE)
        # pass 1: the online log-sum-exp (chapter 8)
        for start in range(0, n_cols, BLOCK):
            cols = start + offsets
            z = tl.load(z_row + cols, mask=cols < n_cols,
                        other=float("-inf")).to(COMPUTE)
            m_new = tl.maximum(m, tl.max(z, axis=0))
            shift = tl.where(m_new == float("-inf"), 0.0, m_new)
            s = s * tl.exp(m - shift) + tl.sum(tl.exp(z - shift), axis=0)
            m = m_new
        # every logit -inf: a padding row, with loss 0 and gradient 0
        masked = m == float("-inf")
        lse = tl.where(masked, 0.0, m) + tl.log(tl.where(masked, 1.0, s))
        tl.store(lse_ptr + row, tl.where(masked, float("-inf"), lse))
        tl.store(loss_ptr + row, tl.where(masked, 0.0, lse - z_target))
        # pass 2: (softmax - onehot) / N, stored once
        for start in range(0, n_cols, BLOCK):
            cols = start + offsets
            z = tl.load(z_row + cols, mask=cols < n_cols,
                        other=float("-inf")).to(COMPUTE)
            p = tl.exp(z - lse)  # 0 in a masked row: exp(-inf - 0)
            g = (p - tl.where(cols == target, 1.0, 0.0)) / n_rows
            g = tl.where(masked, 0.0, g)
            tl.store(g_row + cols, g, mask=cols < n_cols)


# ---- the launchers ---------------------------------------------------------------------------

def _compute_type(dtype: torch.dtype):
    """The kernels' arithmetic: float64 for float64 data, float32 for everything narrower."""
    if not dtype.is_floating_point:
        raise TypeError(f"the kernels take floating tensors, not {dtype}")
    return tl.float64 if dtype == torch.float64 else tl.float32


def _rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` as 2-D rows (its last axis), each row's entries adjacent.

    A view when the layout allows it (a slice of columns keeps the
    row stride, which the kernels take as an argument); a contiguous
    copy otherwise (a transposed tensor).
    """
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"softmax needs a non-empty last axis, "
                         f"got shape {tuple(x.shape)}")
    if x.ndim == 2 and x.stride(1) == 1:
        return x
    if x.stride(-1) != 1:
        x = x.contiguous()
    return x.reshape(-1, x.shape[-1])


def _check_block(block_size: int | None, n_cols: int) -> int:
    if block_size is None:
        return block_size_for(n_cols)
    block = int(block_size)
    if block < 1 or block & (block - 1):
        raise ValueError(f"block_size must be a power of two (tl.arange needs one), got {block_size}")
    return block


def _warps(block: int) -> int:
    return 4 if block <= 1024 else (8 if block <= 4096 else 16)


def softmax_one_block(x: torch.Tensor) -> torch.Tensor:
    """Softmax along the last axis, one block per row (at most MAX_BLOCK
    entries), with softmax_one_block_kernel. Any leading shape."""
    _require()
    rows = _rows(x)
    n, c = rows.shape
    if c > MAX_BLOCK:
        raise ValueError(f"rows of {c} entries do not fit in one block "
                         f"of at most {MAX_BLOCK}: use softmax()")
    block = block_size_for(c)
    y = torch.empty((n, c), dtype=x.dtype, device=x.device)
    if n:
        softmax_one_block_kernel[(n,)](
            rows, y, c, rows.stride(0), y.stride(0), BLOCK=block,
            COMPUTE=_compute_type(x.dtype), num_warps=_warps(block))
    return y.reshape(x.shape)


def softmax(x: torch.Tensor, block_size: int | None = None) -> torch.Tensor:
    """Softmax along the last axis with :func:`softmax_kernel`, rows of any length read in blocks of
    ``block_size`` (a power of two; by default :func:`block_size_for` the row length). One launch;
    any leading shape; the result has the input's shape and dtype."""
    _require()
    rows = _rows(x)
    n, c = rows.shape
    block = _check_block(block_size, c)
    y = torch.empty((n, c), dtype=x.dtype, device=x.device)
    if n:
        softmax_kernel[(n,)](rows, y, c, rows.stride(0), y.stride(0), BLOCK=block,
                             COMPUTE=_compute_type(x.dtype), num_warps=_warps(block))
    return y.reshape(x.shape)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                  block_size: int | None = None):
    """``(loss, grad, lse)`` of logits (N, C) and class indices (N,),
    from one launch of cross_entropy_kernel.

    The mean loss (0-d) and the gradient (softmax - onehot) / N have
    the logits' dtype; lse, each row's log-sum-exp, the kernel's.
    A fully masked row has loss 0, gradient 0 and lse -inf.
    """
    _require()
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, C), got {tuple(logits.shape)}")
    n, c = logits.shape
    if target.shape != (n,) or target.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"target must hold {n} integer class indices")
    z = _rows(logits)
    block = _check_block(block_size, c)
    compute = _compute_type(logits.dtype)
    per_row = torch.float64 if compute == tl.float64 else torch.float32
    grad = torch.empty((n, c), dtype=logits.dtype, device=logits.device)
    losses = torch.empty(n, dtype=per_row, device=logits.device)
    lse = torch.empty(n, dtype=per_row, device=logits.device)
    if n:
        cross_entropy_kernel[(n,)](
            z, target.contiguous(), grad, losses, lse, n, c, z.stride(0),
            grad.stride(0), BLOCK=block, COMPUTE=compute,
            num_warps=_warps(block))
    # N per-row losses, against the N x C logits the kernel read
    loss = (losses.sum() / max(n, 1)).to(logits.dtype)
    return loss, grad, lse


# ---- softgrad bench ----------------------------------------------------------------------------

BENCH_ROW = "Triton fused kernel (softgrad.gpu)"
"""The name of the Triton row in the GPU table of ``softgrad bench``."""


def bench_rows(torch_module, logits: np.ndarray, target: np.ndarray, device
               ) -> dict[str, Callable[[], object] | str]:
    """The Triton rows of ``softgrad bench``'s GPU table for softmax cross-entropy, forward + backward.

    In the form of the PyTorch rows (``softgrad.bench``): a name mapped to a function that runs the
    kernel once on the table's logits and targets and waits for the device, or to a string that says
    why the row is not available (no Triton, a device Triton does not compile for, the interpreter,
    whose times would measure NumPy on the CPU).
    """
    from softgrad.torchtools import synchronize

    if UNAVAILABLE:
        return {BENCH_ROW: f"not available: {UNAVAILABLE}"}
    if device.type != "cuda":
        return {BENCH_ROW: f"not available: Triton compiles for CUDA and ROCm GPUs, not for {device.type}"}
    if interpreted():
        return {BENCH_ROW: "not available: TRITON_INTERPRET=1 is set, so Triton would interpret the kernel "
                           "on the CPU; unset it to time the compiled kernel"}
    z = torch_module.from_numpy(logits).to(device)
    t = torch_module.from_numpy(target).to(device)

    def step():
        result = cross_entropy(z, t)
        synchronize(device)
        return result

    return {BENCH_ROW: step}
