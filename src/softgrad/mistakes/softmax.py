"""Chapter 1, the softmax function: softmax, log-softmax and log-sum-exp, and what goes wrong in them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from softgrad import reference
from softgrad.i18n import N_
from softgrad.mistakes.catalogue import in_its_dtype, mistake, reproduces

__all__ = [
    "MUTATES_INPUT", "SOFTMAX_NO_MAX_SHIFT", "SOFTMAX_GLOBAL_MAX", "SOFTMAX_CLIP", "SOFTMAX_WRONG_AXIS",
    "SOFTMAX_NO_KEEPDIMS", "LOG_OF_SOFTMAX", "LOGSUMEXP_NO_SHIFT", "LOGSUMEXP_SHIFT_NOT_ADDED_BACK",
    "SHIFT_NOT_BY_MAX", "DENOMINATOR_EPSILON", "DTYPE_NOT_KEPT",
]


_CHAPTER = "01_softmax"

MUTATES_INPUT = mistake(
    "mutates-input",
    N_("the function modifies its input array"),
    N_("""An in-place operation such as `z -= z.max(axis=axis, keepdims=True)` changes the
    caller's array. The caller still needs the original logits (to compute a loss, or a
    gradient), and a function that silently edits them causes bugs far away from the cause.
    Write `z = z - z.max(axis=axis, keepdims=True)`, which makes a new array."""),
    _CHAPTER, N_("Batches and axes"),
)

SOFTMAX_NO_MAX_SHIFT = mistake(
    "softmax-no-max-shift",
    N_("softmax without subtracting the maximum"),
    N_("""`np.exp(z)` overflows to inf once z exceeds about 709.78 in float64 (88.72 in
    float32, 11.09 in float16), and inf / inf is nan; for very negative logits every exp
    underflows to 0, and 0 / 0 is nan too. Softmax is shift invariant, so subtract each
    row's maximum first: then the largest exponent is exp(0) = 1, nothing can overflow, and
    the sum is at least 1."""),
    _CHAPTER, N_("The max trick"),
)

SOFTMAX_GLOBAL_MAX = mistake(
    "global-max-shift",
    N_("subtracting the maximum of the whole batch instead of each row's maximum"),
    N_("""With `z - z.max()` a row whose logits are all far below the batch's maximum
    underflows: every exp in that row becomes 0, the row sums to 0, and 0 / 0 is nan (or
    log(0) = -inf). Take the maximum along the softmax axis with
    `z.max(axis=axis, keepdims=True)`, so that every row has its own largest entry at 0."""),
    _CHAPTER, N_("Batches and axes"),
)

SOFTMAX_CLIP = mistake(
    "clip-logits",
    N_("clipping the logits instead of shifting them"),
    N_("""`np.clip(z, -c, c)` avoids the overflow but changes the answer: two logits 1000 and
    999 both become c, so the probabilities come out equal instead of 0.73 and 0.27.
    Softmax depends only on the differences between logits; subtracting the maximum keeps
    every difference, clipping destroys them."""),
    _CHAPTER, N_("The max trick"),
)

SOFTMAX_WRONG_AXIS = mistake(
    "wrong-axis",
    N_("normalising over the wrong axis"),
    N_("""Softmax works along `axis` (the last axis by default) and nowhere else: the
    probabilities sum to one along it, and every reduction built on them (the maximum, the
    sum, the inner product <g, p>) runs along it too. Normalising over axis 0, over the whole
    array, or ignoring the `axis` argument gives arrays that look plausible but are not
    distributions over the classes. Pass `axis=axis` to every reduction."""),
    _CHAPTER, N_("Batches and axes"),
)

SOFTMAX_NO_KEEPDIMS = mistake(
    "missing-keepdims",
    N_("a reduction without keepdims=True, broadcast against the wrong axis"),
    N_("""A reduction along an axis (a maximum, a sum, an inner product such as
    np.sum(g * p, axis=axis)) without keepdims=True loses that axis: for an (N, C) batch it
    has shape (N,), not (N, 1). Subtracting, dividing or multiplying by it then broadcasts
    along the last axis, so entry [i, j] is combined with row j's value instead of row
    i's. For a square batch this runs without an error and gives wrong numbers. Use
    `keepdims=True`."""),
    _CHAPTER, N_("Batches and axes"),
)

LOG_OF_SOFTMAX = mistake(
    "log-of-softmax",
    N_("log(softmax(z)) instead of a log-softmax"),
    N_("""For a confident prediction the small probabilities underflow to exactly 0 (exp(-800)
    is below half the smallest positive float64, so it rounds to 0), and log(0) is -inf,
    although the true log-probability is an ordinary number such as -800. Compute it in the
    log domain: log_softmax(z) = z - logsumexp(z), with the shift inside logsumexp."""),
    _CHAPTER, N_("Why log(softmax(z)) is wrong"),
)

LOGSUMEXP_NO_SHIFT = mistake(
    "logsumexp-no-shift",
    N_("log-sum-exp without the shift"),
    N_("""`np.log(np.sum(np.exp(z)))` overflows to inf for large logits and gives log(0) = -inf
    for very negative ones. Use logsumexp(z) = m + log(sum(exp(z - m))) with m the maximum
    along the axis."""),
    _CHAPTER, N_("Log-sum-exp and log-softmax"),
)

LOGSUMEXP_SHIFT_NOT_ADDED_BACK = mistake(
    "logsumexp-shift-not-added-back",
    N_("log-sum-exp that subtracts the maximum but forgets to add it back"),
    N_("""log(sum(exp(z - m))) is logsumexp(z) - m, not logsumexp(z). The identity is
    logsumexp(z) = m + log(sum(exp(z - m))): add m back at the end. For log-softmax the m
    goes to z instead: log_softmax(z) = (z - m) - log(sum(exp(z - m))), so subtract it from
    z as well as inside the sum."""),
    _CHAPTER, N_("Log-sum-exp and log-softmax"),
)


SHIFT_NOT_BY_MAX = mistake(
    "shift-not-by-max",
    N_("shifting by the minimum or the mean instead of the maximum"),
    N_("""Any shift leaves softmax unchanged in exact arithmetic, but only the maximum makes
    it safe in floating point: after subtracting the maximum every exponent is at most 0.
    After subtracting the mean or the minimum, a row such as [800, 0, -800] still has an
    exponent of 800 or 1600, which overflows to inf."""),
    _CHAPTER, N_("The max trick"),
)

DENOMINATOR_EPSILON = mistake(
    "denominator-epsilon",
    N_("a small constant added to the denominator"),
    N_("""After subtracting the maximum, the denominator sum(exp(z - m)) is at least 1 (its
    largest term is exp(0) = 1), so it can never be 0 and needs no guard. A constant such
    as 1e-7 only makes the probabilities too small by that relative amount, so that they no
    longer sum to one; drop it."""),
    _CHAPTER, N_("The max trick"),
)

DTYPE_NOT_KEPT = mistake(
    "dtype-not-kept",
    N_("a result in another floating dtype than the input's"),
    N_("""The course's functions return their input's floating dtype: float32 in, float32 out
    (integers give float64). NumPy keeps float32 through np.exp, np.max and arithmetic between
    float32 arrays, but np.zeros, np.ones, np.eye and np.full make float64 arrays unless given
    dtype=..., and mixing one into a float32 computation promotes the result to float64 (an
    explicit astype or asarray(..., dtype=np.float64) does the same). Create arrays with the
    data's dtype (dtype=z.dtype, or np.zeros_like(z))."""),
    _CHAPTER, N_("Keeping the input's dtype"),
)


# --- reproductions, with the graded signature -------------------------------------------------
# Each one is deliberately wrong. Overflow warnings are the point of some of them, so the
# checks that call these functions silence NumPy's floating-point warnings.


@reproduces(SOFTMAX_NO_MAX_SHIFT, "softmax")
def _softmax_no_shift(z, axis=-1):
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


@reproduces(SOFTMAX_GLOBAL_MAX, "softmax")
def _softmax_global_max(z, axis=-1):
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=axis, keepdims=True)


CLIP_BOUNDS = (10, 15, 20, 30, 50, 60, 80, 88, 100, 200, 300, 500, 700, 709)


def _clip_variant(bound: float, shift: bool) -> Callable[..., object]:
    def softmax_clipped(z, axis=-1):
        zc = np.clip(z, -bound, bound)
        return reference.softmax(zc, axis) if shift else _softmax_no_shift(zc, axis)

    return softmax_clipped


def _clipped_log_softmax(bound: float) -> Callable[..., object]:
    return lambda z, axis=-1: reference.log_softmax(np.clip(z, -bound, bound), axis)


def _clipped_logsumexp(bound: float) -> Callable[..., object]:
    return lambda z, axis=-1: reference.logsumexp(np.clip(z, -bound, bound), axis)


for _bound in CLIP_BOUNDS:
    reproduces(SOFTMAX_CLIP, "softmax", also=(SOFTMAX_NO_MAX_SHIFT,))(_clip_variant(_bound, shift=False))
    reproduces(SOFTMAX_CLIP, "softmax")(_clip_variant(_bound, shift=True))
    reproduces(SOFTMAX_CLIP, "log_softmax")(_clipped_log_softmax(_bound))
    reproduces(SOFTMAX_CLIP, "logsumexp")(_clipped_logsumexp(_bound))


@reproduces(SOFTMAX_WRONG_AXIS, "softmax")
def _softmax_axis0(z, axis=-1):
    return reference.softmax(z, 0)


@reproduces(SOFTMAX_WRONG_AXIS, "softmax")
def _softmax_ignores_axis(z, axis=-1):
    return reference.softmax(z, -1)


@reproduces(SOFTMAX_WRONG_AXIS, "softmax")
def _softmax_whole_array(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e)


@reproduces(SOFTMAX_NO_KEEPDIMS, "softmax")
def _softmax_sum_without_keepdims(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis)


@reproduces(SOFTMAX_NO_KEEPDIMS, "softmax")
def _softmax_max_without_keepdims(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis))
    return e / np.sum(e, axis=axis, keepdims=True)


@reproduces(SOFTMAX_NO_KEEPDIMS, "softmax")
def _softmax_no_keepdims_anywhere(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis))
    return e / np.sum(e, axis=axis)


@reproduces(LOG_OF_SOFTMAX, "log_softmax")
def _log_of_stable_softmax(z, axis=-1):
    z = in_its_dtype(z)  # a float32 probability underflows where the student's float32 code's does
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return np.log(e / np.sum(e, axis=axis, keepdims=True))


@reproduces(LOG_OF_SOFTMAX, "log_softmax")
def _log_of_naive_softmax(z, axis=-1):
    return np.log(_softmax_no_shift(z, axis))


@reproduces(LOGSUMEXP_NO_SHIFT, "log_softmax")
def _log_softmax_no_shift(z, axis=-1):
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


@reproduces(SOFTMAX_GLOBAL_MAX, "log_softmax")
def _log_softmax_global_max(z, axis=-1):
    shifted = z - np.max(z)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@reproduces(SOFTMAX_WRONG_AXIS, "log_softmax")
def _log_softmax_ignores_axis(z, axis=-1):
    return z - np.expand_dims(reference.logsumexp(z, -1), -1)


@reproduces(SOFTMAX_WRONG_AXIS, "log_softmax")
def _log_softmax_axis0(z, axis=-1):
    return z - np.expand_dims(reference.logsumexp(z, 0), 0)


@reproduces(SOFTMAX_NO_KEEPDIMS, "log_softmax")
def _log_softmax_no_keepdims(z, axis=-1):
    return z - reference.logsumexp(z, axis)


@reproduces(LOGSUMEXP_NO_SHIFT, "logsumexp")
def _logsumexp_no_shift(z, axis=-1):
    return np.log(np.sum(np.exp(z), axis=axis))


@reproduces(LOGSUMEXP_SHIFT_NOT_ADDED_BACK, "logsumexp")
def _logsumexp_forgot_max(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(z - m), axis=axis))


@reproduces(LOGSUMEXP_SHIFT_NOT_ADDED_BACK, "log_softmax")
def _log_softmax_forgot_max(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


@reproduces(SOFTMAX_GLOBAL_MAX, "logsumexp")
def _logsumexp_global_max(z, axis=-1):
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m), axis=axis))


@reproduces(SOFTMAX_WRONG_AXIS, "logsumexp")
def _logsumexp_ignores_axis(z, axis=-1):
    return reference.logsumexp(z, -1)


@reproduces(SOFTMAX_WRONG_AXIS, "logsumexp")
def _logsumexp_axis0(z, axis=-1):
    return reference.logsumexp(z, 0)

_EPSILONS = (1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12)


def _epsilon_variant(epsilon: float) -> Callable[..., object]:
    def softmax_with_epsilon(z, axis=-1):
        e = np.exp(z - np.max(z, axis=axis, keepdims=True))
        return e / (np.sum(e, axis=axis, keepdims=True) + epsilon)

    return softmax_with_epsilon


for _epsilon in _EPSILONS:
    reproduces(DENOMINATOR_EPSILON, "softmax")(_epsilon_variant(_epsilon))


@reproduces(SHIFT_NOT_BY_MAX, "softmax")
def _softmax_shift_by_min(z, axis=-1):
    e = np.exp(z - np.min(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@reproduces(SHIFT_NOT_BY_MAX, "softmax")
def _softmax_shift_by_mean(z, axis=-1):
    e = np.exp(z - np.mean(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@reproduces(SHIFT_NOT_BY_MAX, "logsumexp")
def _logsumexp_shift_by_mean(z, axis=-1):
    c = np.mean(z, axis=axis, keepdims=True)
    return np.squeeze(c, axis=axis) + np.log(np.sum(np.exp(z - c), axis=axis))


@reproduces(SHIFT_NOT_BY_MAX, "log_softmax")
def _log_softmax_shift_by_mean(z, axis=-1):
    shifted = z - np.mean(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@reproduces(SOFTMAX_NO_KEEPDIMS, "logsumexp")
def _logsumexp_max_without_keepdims(z, axis=-1):
    m = np.max(z, axis=axis)
    return m + np.log(np.sum(np.exp(z - m), axis=axis))


@reproduces(SOFTMAX_NO_KEEPDIMS, "log_softmax")
def _log_softmax_max_without_keepdims(z, axis=-1):
    shifted = z - np.max(z, axis=axis)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
