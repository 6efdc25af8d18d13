"""Compiled CPU kernels (chapter 8): an ``exp`` a compiler can vectorise, and a fused cross-entropy.

NumPy runs one compiled loop per call, so a formula of five NumPy calls makes five passes over
memory, and its ``exp`` is the one NumPy's developers compiled. This module writes the loops
itself and has Numba compile them to machine code (Numba is optional: ``pip install
"softgrad[kernels]"``). Three functions:

* :func:`exp32`: ``exp`` of one float32 number, written only with operations that a compiler
  can apply to a whole vector register of numbers at once (8 float32 with AVX2): range
  reduction to ``|r| <= ln(2)/2``, a polynomial, and a scaling by ``2**k`` built from the
  bits of a float. No branch, no table, no call into a library.
* :func:`exp`: :func:`exp32` over an array, on several threads: the vectorised ``exp`` pass
  that ``softgrad bench`` holds the kernels against.
* :func:`softmax_cross_entropy`: the mean softmax cross-entropy of float32 logits and its
  gradient, forward and backward in one pass per row (a row stays in the core's L1 or L2
  cache between its three loops), on several threads.

Without Numba the module still imports: :func:`available` returns False, :data:`UNAVAILABLE`
says why, :func:`exp32` runs as plain Python on NumPy scalars (slowly; the tests use that),
and :func:`exp` and :func:`softmax_cross_entropy` raise ``ModuleNotFoundError``.
"""

from __future__ import annotations

import math

import numpy as np

from softgrad.scale import _labels, _run_on_row_ranges

try:
    import numba
except ImportError as error:  # Numba is an optional extra: everything else works without it
    numba = None
    UNAVAILABLE = f"Numba is not installed ({error}; pip install numba)"
else:
    UNAVAILABLE = ""  # why the compiled kernels cannot run here; empty when they can

__all__ = ["UNAVAILABLE", "available", "exp", "exp32", "softmax_cross_entropy"]


def available() -> bool:
    """Whether Numba is installed, so that :func:`exp` and :func:`softmax_cross_entropy` can run."""
    return numba is not None


def _compiled(function=None, **options):
    """``numba.njit`` with the module's options (or the plain function when Numba is missing).

    ``nogil=True``: the compiled code runs without Python's global interpreter lock, so the
    threads of :func:`softgrad.scale._run_on_row_ranges` run it in parallel. ``cache=True``:
    the machine code is written next to this file, and later processes load it instead of
    compiling again. ``fastmath={"contract"}`` lets the compiler fuse ``a * b + c`` into one
    fused multiply-add, and nothing else: the other fast-math licences (reassociation, no
    NaN, no infinity) would let it rewrite the range reduction below and lose its accuracy.
    """
    settings = {"nogil": True, "cache": True, "fastmath": {"contract"}, **options}

    def decorate(f):
        return f if numba is None else numba.njit(**settings)(f)

    return decorate if function is None else decorate(function)


# ---------------------------------------------------------------------------------------
# exp of one float32, vectorisable
# ---------------------------------------------------------------------------------------

_F = np.float32
LOG2E = _F(1.4426950408889634)  # 1 / ln 2
LN2_HI = _F(0.693359375)  # ln 2 to 9 bits: k * LN2_HI is exact for every |k| <= 2**15
LN2_LO = _F(math.log(2) - 0.693359375)  # the rest of ln 2
ROUNDER = _F(1.5 * 2**23)  # adding it rounds a float32 below 2**22 to an integer
# Taylor coefficients 1/2!, 1/3!, ..., 1/7!: exp(r) = 1 + r + r**2 (C2 + r (C3 + ... + r C7))
C2, C3, C4, C5, C6, C7 = (_F(1 / math.factorial(j)) for j in range(2, 8))
X_MAX = _F(88.72283935546875)  # above it, exp overflows float32: inf
X_MIN = _F(-103.97208404541015625)  # below it, exp is below half the smallest subnormal: 0


@_compiled(inline="always")
def exp32(x):
    """``exp(x)`` for one float32 ``x``, within about one unit in the last place (ulp).

    1. **Range reduction.** ``k = round(x / ln 2)`` and ``r = x - k ln 2``, so that
       ``exp(x) = 2**k exp(r)`` with ``|r| <= ln(2)/2``. ``ln 2`` is split in two
       (Cody and Waite): ``k * LN2_HI`` is exact, so ``r`` is as accurate as if ``ln 2``
       had twice float32's digits.
    2. **Polynomial.** ``exp(r)`` by its Taylor polynomial of degree 7, evaluated by
       Horner's rule. The first term left out, ``r**8 / 8!``, is below 7e-9 relative to
       ``exp(r)``, an eighth of float32's half-ulp: the rounding of the arithmetic, not
       the polynomial, sets the error.
    3. **Scaling by 2**k** without a multiplication loop or a library call: an integer
       ``j`` shifted into the exponent bits of a float32 *is* the float ``2**j``. ``2**k``
       is built as ``2**(k//2) * 2**(k - k//2)``, two factors that are normal floats for
       every ``k`` from -150 to 128, so results near overflow and subnormal results are
       right too.

    Every step is arithmetic, comparison or bit manipulation on one number, the same for
    every number: a compiler turns a loop of it into vector instructions. Special values:
    ``exp(nan) = nan``, ``exp(-inf) = 0``, ``exp(inf) = inf``.
    """
    xc = x if x > X_MIN else X_MIN  # also maps nan to X_MIN, so that the integer k is defined
    xc = xc if xc < X_MAX else X_MAX
    k = (xc * LOG2E + ROUNDER) - ROUNDER  # round(x / ln 2), as a float
    r = (xc - k * LN2_HI) - k * LN2_LO
    p = C7 * r + C6
    p = p * r + C5
    p = p * r + C4
    p = p * r + C3
    p = p * r + C2
    e_r = p * (r * r) + r + _F(1.0)
    half = np.int32(k) >> 1
    rest = np.int32(k) - half
    # (j + 127) << 23 is the bit pattern of the float32 2**j (exponent bias 127, 23 mantissa bits)
    y = e_r * np.int32((half + 127) << 23).view(np.float32) * np.int32((rest + 127) << 23).view(np.float32)
    if x < X_MIN:
        y = _F(0.0)
    if x > X_MAX:
        y = _F(np.inf)
    if x != x:  # nan
        y = x
    return y


@_compiled
def _exp_range(x, out, first, last):
    for i in range(first, last):
        out[i] = exp32(x[i])


def _need_numba(what: str) -> None:
    if numba is None:
        raise ModuleNotFoundError(f"{what} needs Numba: {UNAVAILABLE}")


def exp(x: np.ndarray, *, out: np.ndarray | None = None, threads: int | None = None) -> np.ndarray:
    """``exp`` of every element of a float32 array, with :func:`exp32` compiled and vectorised.

    ``out`` (float32, of the shape of ``x``) receives the result if given; ``threads``
    contiguous ranges of the elements run in parallel (default: every available core).
    """
    _need_numba("softgrad.kernels.exp")
    x = np.ascontiguousarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"softgrad.kernels.exp computes float32 only; got {x.dtype}")
    if out is None:
        out = np.empty_like(x)
    elif out.shape != x.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {x.shape}")
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    _run_on_row_ranges(lambda a, b: _exp_range(flat_x, flat_out, a, b), flat_x.size, threads)
    return out


# ---------------------------------------------------------------------------------------
# Softmax cross-entropy, forward and backward, fused
# ---------------------------------------------------------------------------------------

@_compiled(fastmath={"contract", "reassoc", "nsz"})
def _row_sum(g):
    """The sum of a float32 row. ``reassoc`` lets the compiler keep several partial sums in a
    vector register (a different order of additions, so different rounding, never worse
    than a sequential sum by more than a few ulps); it is not allowed in :func:`exp32`."""
    total = _F(0.0)
    for j in range(g.shape[0]):
        total += g[j]
    return total


@_compiled
def _row_max(z):
    largest = z[0]
    for j in range(1, z.shape[0]):
        largest = max(largest, z[j])
    return largest


@_compiled
def _cross_entropy_rows(logits, target, grad, row_loss, first, last, inv_n):
    """Rows ``first`` to ``last - 1``: three loops over each row, which stays in the cache.

    1. ``m = max(z)``: the only loop that reads the row from main memory.
    2. ``g = exp(z - m)`` and ``s = sum(g)``: the ``exp`` of every logit, once.
    3. ``g *= 1 / (N s)``, and ``1 / N`` subtracted at the target: the gradient
       ``(p - y) / N``, written over ``g`` in place, the only write to main memory.

    The row's loss ``log-sum-exp(z) - z[target] = m + log(s) - z[target]`` is kept in
    float64. Shifting by ``m`` keeps every ``exp`` at most 1 and the sum between 1 and
    ``C``: no overflow, and no term that matters underflows.
    """
    for i in range(first, last):
        z = logits[i]
        g = grad[i]
        m = _row_max(z)
        for j in range(z.shape[0]):
            g[j] = exp32(z[j] - m)
        s = _row_sum(g)
        scale = inv_n / s
        for j in range(g.shape[0]):
            g[j] *= scale
        t = target[i]
        g[t] -= inv_n
        row_loss[i] = np.float64(m) + math.log(np.float64(s)) - np.float64(z[t])


def softmax_cross_entropy(logits: np.ndarray, target: np.ndarray, *, threads: int | None = None,
                          out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """``(mean loss, gradient)`` of softmax cross-entropy of float32 logits, compiled and fused.

    The same result as :func:`softgrad.scale.softmax_cross_entropy_stable` to float32
    rounding, from one pass over memory per row: the logits are read once and the gradient
    ``(P - Y) / N`` written once (see ``_cross_entropy_rows``). ``logits`` is ``(N, C)``
    float32, ``target`` integer class indices ``(N,)`` in ``0 .. C-1``; ``threads`` row
    ranges run in parallel (default: every available core); ``out`` (float32, the shape of
    the logits) receives the gradient if given, which saves allocating it in a training
    loop. A row whose maximum is not finite (inf or nan logits) gets a nan loss and
    gradient, as in the stable version.
    """
    _need_numba("softgrad.kernels.softmax_cross_entropy")
    logits = np.ascontiguousarray(logits)
    if logits.ndim != 2 or logits.dtype != np.float32:
        raise TypeError(f"logits must be a float32 array of shape (N, C); got {logits.dtype} of shape {logits.shape}")
    n, c = logits.shape
    if c == 0:
        raise ValueError("logits must have at least one class (C >= 1)")
    target = np.ascontiguousarray(_labels(target, n), dtype=np.int64)
    if n and (target.min() < 0 or target.max() >= c):
        raise ValueError(f"target must hold class indices from 0 to {c - 1}; got {target.min()} to {target.max()}")
    if out is None:
        out = np.empty_like(logits)
    elif out.shape != logits.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {logits.shape}")
    row_loss = np.empty(n, dtype=np.float64)
    inv_n = np.float32(1.0 / n) if n else np.float32(0.0)
    _run_on_row_ranges(lambda a, b: _cross_entropy_rows(logits, target, out, row_loss, a, b, inv_n), n, threads)
    return float(row_loss.mean()) if n else float("nan"), out
