"""Compiled CPU kernels (chapter 8): an ``exp`` a compiler can vectorise, and a fused cross-entropy.

NumPy runs one compiled loop per call, so a formula of five NumPy calls makes five passes over
memory, and its ``exp`` is the one NumPy's developers compiled. This module writes the loops
itself and has Numba compile them to machine code (Numba is optional: ``pip install
"softgrad[kernels]"``). Three functions:

* :func:`exp32`: ``exp`` of one float32 number, written only with operations that a compiler
  can apply to a whole vector register of numbers at once (8 float32 with AVX2): range
  reduction to ``|r| <= ln(2)/2``, a polynomial, and a scaling by ``2**k`` built from the
  bits of a float. No table, no call into a library, and its ``if``s only choose between
  values (the compiler makes them selects, not branches).
* :func:`exp`: :func:`exp32` over an array, on several threads: the vectorised ``exp`` pass
  that ``softgrad bench`` holds the kernels against.
* :func:`softmax_cross_entropy`: the mean softmax cross-entropy of float32 logits and its
  gradient, forward and backward, reading each row of logits from memory once and writing
  its gradient once (the row stays in the core's cache between the loops over it), on
  several threads.

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

__all__ = ["UNAVAILABLE", "available", "exp", "exp32", "exp_sample", "softmax_cross_entropy", "ulp_error"]


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
LN2_HI = _F(0.693359375)  # ln 2 to 9 bits: k * LN2_HI is exact for |k| < 2**15
LN2_LO = _F(math.log(2) - 0.693359375)  # the rest of ln 2
ROUNDER = _F(1.5 * 2**23)  # t + ROUNDER rounds t to an integer, |t| < 2**22
# Taylor coefficients 1/j! for j = 2, ..., 7:
# exp(r) = 1 + r + r**2 (C2 + r (C3 + r (C4 + r (C5 + r (C6 + r C7)))))
C2, C3, C4, C5, C6, C7 = (_F(1 / math.factorial(j)) for j in range(2, 8))
X_MAX = _F(88.72283935546875)  # above it, exp overflows float32: inf
X_MIN = _F(-103.97208404541015625)  # below it, exp rounds to 0 in float32


@_compiled(inline="always")
def exp32(x):
    """exp(x) for one float32 x, to about one unit in the last place (ulp).

    1. Range reduction: k = round(x / ln 2) and r = x - k ln 2, so that
       exp(x) = 2**k exp(r) with |r| <= ln(2) / 2. ln 2 is split in two
       (Cody and Waite): k * LN2_HI and x - k * LN2_HI are exact, so r is
       as accurate as if ln 2 had twice float32's digits.
    2. Polynomial: exp(r) by its Taylor polynomial of degree 7, evaluated
       by Horner's rule. The first term left out, r**8 / 8!, is at most
       about 7e-9 relative to exp(r), an eighth of float32's rounding
       error: the arithmetic's rounding, not the polynomial, sets the error.
    3. Scaling by 2**k without a library call: an integer j shifted into
       the exponent bits of a float32 is the float 2**j. 2**k is made as
       2**half * 2**(k - half), two normal floats for every k from -150 to
       128, so results near overflow and subnormal results are right too.

    Only arithmetic, comparisons and bit operations, the same for every x:
    a compiler turns a loop of it into vector instructions. Special values:
    exp(nan) = nan, exp(-inf) = 0, exp(inf) = inf.
    """
    xc = x if x > X_MIN else X_MIN  # nan -> X_MIN: k below is always defined
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
    # the bits (j + 127) << 23 are the float32 2**j: exponent bias 127,
    # 23 mantissa bits, all zero
    two_half = np.int32((half + 127) << 23).view(np.float32)
    two_rest = np.int32((rest + 127) << 23).view(np.float32)
    y = e_r * two_half * two_rest
    if x < X_MIN:
        y = _F(0.0)
    if x > X_MAX:
        y = _F(np.inf)
    if x != x:  # nan
        y = x
    return y


@_compiled
def _exp_range(x, out, first, last):
    """out[i] = exp32(x[i]) for the elements first to last - 1 of two flat arrays."""
    x, out = x[first:last], out[first:last]
    for i in range(x.shape[0]):  # indices from 0 up: vector loads, no wraparound check
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


def ulp_error(y: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """``|y - exact|`` in float32 ulps: units in the last place of float32 at ``exact``.

    The ulp of a number in ``[2**e, 2**(e+1))`` is the gap between the float32 numbers
    there, ``2**(e - 23)`` (23 stored mantissa bits); below the smallest normal float32 it
    is the gap between subnormals, ``2**-149``. A correctly rounded result is within 0.5
    ulp; ``exact`` should be computed in float64 or better.
    """
    exact = np.asarray(exact, dtype=np.float64)
    exponent = np.frexp(exact)[1]  # exact = m * 2**exponent with 0.5 <= |m| < 1
    ulp = np.ldexp(1.0, np.maximum(exponent - 24, -149))
    ulp = np.where(exact == 0, 2.0**-149, ulp)
    return np.abs(np.asarray(y, dtype=np.float64) - exact) / ulp


def exp_sample(count: int, rng: np.random.Generator) -> np.ndarray:
    """About ``count`` float32 numbers on which to measure an ``exp``: the whole range where the
    float32 ``exp`` is neither 0 nor infinite, ``X_MIN < x < log(largest float32)``.

    Half are spread evenly over the values (they test large ``|x|``, where the range
    reduction works hardest); half evenly over the bit patterns (they test the small ``|x|``
    where most float32 numbers lie, down to the subnormals).
    """
    top = float(np.log(np.float64(np.finfo(np.float32).max)))
    by_value = rng.uniform(float(X_MIN), top, size=count - count // 2).astype(np.float32)
    low_bits, high_bits = (int(np.array(v, dtype=np.float32).view(np.int32)) for v in (-X_MIN, _F(top)))
    bits = rng.integers(-low_bits, high_bits, size=count // 2, endpoint=True)
    by_bits = np.abs(bits).astype(np.int32).view(np.float32) * np.where(bits < 0, _F(-1), _F(1))
    x = np.concatenate([by_value, by_bits])
    return x[(x > X_MIN) & (x < _F(top))]


# ---------------------------------------------------------------------------------------
# Softmax cross-entropy, forward and backward, fused
# ---------------------------------------------------------------------------------------

@_compiled(fastmath={"contract", "reassoc", "nsz"})
def _row_sum(g):
    """The sum of a float32 row. ``reassoc`` lets the compiler keep several partial sums in a
    vector register (another order of additions, so another rounding, with an error bound
    no worse than the sequential sum's); it is not allowed in :func:`exp32`, whose range
    reduction it could rewrite."""
    total = _F(0.0)
    for j in range(g.shape[0]):
        total += g[j]
    return total


@_compiled
def _row_max(z):
    """The maximum of a row, nan if it has a nan. A compiler does not vectorise this loop (a
    maximum that must respect nan is no reduction it knows), so it is used only where needed."""
    largest = z[0]
    for j in range(z.shape[0]):
        if z[j] > largest or z[j] != z[j]:
            largest = z[j]
    return largest


SQRT_MAX = _F(np.sqrt(np.finfo(np.float32).max))


@_compiled
def _exp_row(z, shift, g):
    """g = exp(z - shift) for one row; returns sum(g)."""
    for j in range(z.shape[0]):
        g[j] = exp32(z[j] - shift)
    return _row_sum(g)


@_compiled
def _cross_entropy_rows(logits, target, grad, row_loss, first, last, inv_n,
                        always_shift):
    """Rows first to last - 1 of the gradient and the loss, a row at a time.

    A row of z is read from memory once, by the first loop over it; every
    later loop finds it in the core's cache:

    1. g = exp(z), s = sum(g). Softmax is shift invariant, and most rows
       need no shift: 1 <= s <= sqrt(largest float32) means that nothing
       overflowed, no term that matters underflowed, and 1 / (N s) is a
       normal number (see softgrad.scale._exp_rows). A row that fails the
       test (nan fails it too) is done again with its maximum m as shift.
    2. g *= 1 / (N s), and 1 / N subtracted at the target: the gradient
       (p - y) / N, written over g in place.

    The row's loss, logsumexp(z) - z[t] = m + log(s) - z[t], is in float64.
    """
    for i in range(first, last):
        z = logits[i]
        g = grad[i]
        m = _F(0.0)
        s = _F(0.0) if always_shift else _exp_row(z, m, g)
        if always_shift or not (s >= 1 and s <= SQRT_MAX):
            m = _row_max(z)
            s = _exp_row(z, m, g)
        scale = inv_n / s
        for j in range(g.shape[0]):
            g[j] *= scale
        t = target[i]
        g[t] -= inv_n
        row_loss[i] = (np.float64(m) + math.log(np.float64(s))
                       - np.float64(z[t]))


def softmax_cross_entropy(logits: np.ndarray, target: np.ndarray, *, threads: int | None = None,
                          out: np.ndarray | None = None, always_shift: bool = False) -> tuple[float, np.ndarray]:
    """``(mean loss, gradient)`` of softmax cross-entropy of float32 logits, compiled and fused.

    The same result as :func:`softgrad.scale.softmax_cross_entropy_stable` to float32
    rounding, from one pass over memory per row: the logits are read once and the gradient
    ``(P - Y) / N`` written once (see ``_cross_entropy_rows``). ``logits`` is ``(N, C)``
    float32, ``target`` integer class indices ``(N,)`` in ``0 .. C-1``; ``threads`` row
    ranges run in parallel (default: every available core); ``out`` (float32, the shape of
    the logits) receives the gradient if given, which saves allocating it in a training
    loop; ``always_shift=True`` subtracts the row maximum in every row, to measure what
    that costs. A row with a nan, or whose maximum is infinite, gets a nan loss and
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
    elif np.may_share_memory(out, logits):
        raise ValueError("out must not overlap the logits: the kernel reads a row again after writing its gradient")
    row_loss = np.empty(n, dtype=np.float64)
    inv_n = np.float32(1.0 / n) if n else np.float32(0.0)
    _run_on_row_ranges(lambda a, b: _cross_entropy_rows(logits, target, out, row_loss, a, b, inv_n,
                                                       bool(always_shift)), n, threads)
    return float(row_loss.mean()) if n else float("nan"), out
