"""The catalogue of known mistakes, and implementations that reproduce them.

Every entry is a mistake that real students (and real code on the web) make. Each one is
taught in the chapter named in its ``section``, caught by a hidden test of an assignment,
and named in the feedback: when a student's result is wrong, the checks in
:mod:`softgrad.testing` run the wrong implementations registered here on the same input,
and if one of them reproduces the student's output, the message says which mistake it is
and how to fix it.

Each wrong implementation has the signature of the graded function it imitates, so
``suspects("softmax")`` gives, for each mistake, callables ``f(z, axis=-1)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from softgrad import reference

__all__ = ["CATALOGUE", "Mistake", "mistake", "suspects"]


@dataclass(frozen=True)
class Mistake:
    """A known mistake: a stable id, a title, what goes wrong and how to fix it, and where it is taught."""

    id: str
    title: str
    explanation: str
    section: str
    implementations: dict[str, list[Callable[..., object]]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def describe(self) -> str:
        """The paragraph a student reads when their code matches this mistake."""
        return (
            f"This matches a known mistake: {self.title} [{self.id}].\n"
            f"  {self.explanation}\n"
            f"  See: {self.section}."
        )


CATALOGUE: dict[str, Mistake] = {}
"""Every known mistake by id."""


def mistake(id: str, title: str, explanation: str, section: str) -> Mistake:
    """Create a :class:`Mistake` and add it to :data:`CATALOGUE` (ids are unique)."""
    if id in CATALOGUE:
        raise ValueError(f"mistake id {id!r} is already in the catalogue")
    entry = Mistake(id, title, " ".join(explanation.split()), section)
    CATALOGUE[id] = entry
    return entry


def _reproduces(entry: Mistake, function_name: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Register the decorated function as one way ``function_name`` goes wrong with ``entry``."""

    def register(implementation: Callable[..., object]) -> Callable[..., object]:
        entry.implementations.setdefault(function_name, []).append(implementation)
        return implementation

    return register


def suspects(function_name: str) -> dict[Mistake, list[Callable[..., object]]]:
    """The mistakes known for a graded function, each with its wrong implementations."""
    return {
        entry: entry.implementations[function_name]
        for entry in CATALOGUE.values()
        if function_name in entry.implementations
    }


# --------------------------------------------------------------------------------------
# Chapter 1: softmax, log-softmax and log-sum-exp
# --------------------------------------------------------------------------------------
_CH1 = "Chapter 1, The softmax function"

MUTATES_INPUT = mistake(
    "mutates-input",
    "the function modifies its input array",
    """An in-place operation such as `z -= z.max(axis=axis, keepdims=True)` changes the
    caller's array. The caller still needs the original logits (to compute a loss, or a
    gradient), and a function that silently edits them causes bugs far away from the cause.
    Write `z = z - z.max(axis=axis, keepdims=True)`, which makes a new array.""",
    f"{_CH1}, section 'The max trick'",
)

SOFTMAX_NO_MAX_SHIFT = mistake(
    "softmax-no-max-shift",
    "softmax without subtracting the maximum",
    """`np.exp(z)` overflows to inf once z exceeds about 709.78 in float64 (88.72 in
    float32, 11.09 in float16), and inf / inf is nan. Softmax is shift invariant, so
    subtract each row's maximum first: then the largest exponent is exp(0) = 1 and nothing
    can overflow.""",
    f"{_CH1}, section 'The max trick'",
)

SOFTMAX_GLOBAL_MAX = mistake(
    "global-max-shift",
    "subtracting the maximum of the whole batch instead of each row's maximum",
    """With `z - z.max()` a row whose logits are all far below the batch's maximum
    underflows: every exp in that row becomes 0, the row sums to 0, and 0 / 0 is nan (or
    log(0) = -inf). Take the maximum along the softmax axis with
    `z.max(axis=axis, keepdims=True)`, so that every row has its own largest entry at 0.""",
    f"{_CH1}, section 'Batches and axes'",
)

SOFTMAX_CLIP = mistake(
    "clip-logits",
    "clipping the logits instead of shifting them",
    """`np.clip(z, -c, c)` avoids the overflow but changes the answer: two logits 1000 and
    999 both become c, so the probabilities come out equal instead of 0.73 and 0.27.
    Softmax depends only on the differences between logits; subtracting the maximum keeps
    every difference, clipping destroys them.""",
    f"{_CH1}, section 'The max trick'",
)

SOFTMAX_WRONG_AXIS = mistake(
    "wrong-axis",
    "normalising over the wrong axis",
    """The probabilities must sum to one along `axis` (the last axis by default) and
    nowhere else. Normalising over axis 0, over the whole array, or ignoring the `axis`
    argument gives arrays that look plausible but are not distributions over the classes.
    Pass `axis=axis` to every reduction (max and sum).""",
    f"{_CH1}, section 'Batches and axes'",
)

SOFTMAX_NO_KEEPDIMS = mistake(
    "missing-keepdims",
    "a reduction without keepdims=True, broadcast against the wrong axis",
    """`z.max(axis=-1)` or `e.sum(axis=-1)` has shape (N,), not (N, 1). Subtracting or
    dividing by it broadcasts along the last axis, so entry [i, j] is combined with row
    j's maximum or sum instead of row i's. For a square batch this runs without an error
    and gives wrong numbers. Use `keepdims=True`.""",
    f"{_CH1}, section 'Batches and axes'",
)

LOG_OF_SOFTMAX = mistake(
    "log-of-softmax",
    "log(softmax(z)) instead of a log-softmax",
    """For a confident prediction the small probabilities underflow to exactly 0 (exp(-800)
    is below the smallest float64), and log(0) is -inf, although the true log-probability is
    a perfectly ordinary number such as -800. Compute it in the log domain:
    log_softmax(z) = z - logsumexp(z), with the shift inside logsumexp.""",
    f"{_CH1}, section 'Why log(softmax(z)) is wrong'",
)

LOGSUMEXP_NO_SHIFT = mistake(
    "logsumexp-no-shift",
    "log-sum-exp without the shift",
    """`np.log(np.sum(np.exp(z)))` overflows to inf for large logits and gives log(0) = -inf
    for very negative ones. Use logsumexp(z) = m + log(sum(exp(z - m))) with m the maximum
    along the axis.""",
    f"{_CH1}, section 'Log-sum-exp and log-softmax'",
)

LOGSUMEXP_SHIFT_NOT_ADDED_BACK = mistake(
    "logsumexp-shift-not-added-back",
    "log-sum-exp that subtracts the maximum but forgets to add it back",
    """log(sum(exp(z - m))) is logsumexp(z) - m, not logsumexp(z). The identity is
    logsumexp(z) = m + log(sum(exp(z - m))): add m back at the end (for log-softmax the
    two m's cancel, which is why log_softmax(z) = (z - m) - log(sum(exp(z - m)))).""",
    f"{_CH1}, section 'Log-sum-exp and log-softmax'",
)


# --- reproductions, with the graded signature -------------------------------------------------
# Each one is deliberately wrong. Overflow warnings are the point of some of them, so the
# checks that call these functions silence NumPy's floating-point warnings.


@_reproduces(SOFTMAX_NO_MAX_SHIFT, "softmax")
def _softmax_no_shift(z, axis=-1):
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


@_reproduces(SOFTMAX_GLOBAL_MAX, "softmax")
def _softmax_global_max(z, axis=-1):
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=axis, keepdims=True)


_CLIP_BOUNDS = (10, 15, 20, 30, 50, 60, 80, 88, 100, 200, 300, 500, 700, 709)


def _clip_variant(bound: float, shift: bool) -> Callable[..., object]:
    def softmax_clipped(z, axis=-1):
        zc = np.clip(z, -bound, bound)
        return reference.softmax(zc, axis) if shift else _softmax_no_shift(zc, axis)

    return softmax_clipped


for _bound in _CLIP_BOUNDS:
    _reproduces(SOFTMAX_CLIP, "softmax")(_clip_variant(_bound, shift=False))
    _reproduces(SOFTMAX_CLIP, "softmax")(_clip_variant(_bound, shift=True))


@_reproduces(SOFTMAX_WRONG_AXIS, "softmax")
def _softmax_axis0(z, axis=-1):
    return reference.softmax(z, 0)


@_reproduces(SOFTMAX_WRONG_AXIS, "softmax")
def _softmax_ignores_axis(z, axis=-1):
    return reference.softmax(z, -1)


@_reproduces(SOFTMAX_WRONG_AXIS, "softmax")
def _softmax_whole_array(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e)


@_reproduces(SOFTMAX_NO_KEEPDIMS, "softmax")
def _softmax_sum_without_keepdims(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis)


@_reproduces(SOFTMAX_NO_KEEPDIMS, "softmax")
def _softmax_max_without_keepdims(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis))
    return e / np.sum(e, axis=axis, keepdims=True)


@_reproduces(SOFTMAX_NO_KEEPDIMS, "softmax")
def _softmax_no_keepdims_anywhere(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis))
    return e / np.sum(e, axis=axis)


@_reproduces(LOG_OF_SOFTMAX, "log_softmax")
def _log_of_stable_softmax(z, axis=-1):
    return np.log(reference.softmax(z, axis))


@_reproduces(LOG_OF_SOFTMAX, "log_softmax")
def _log_of_naive_softmax(z, axis=-1):
    return np.log(_softmax_no_shift(z, axis))


@_reproduces(LOGSUMEXP_NO_SHIFT, "log_softmax")
def _log_softmax_no_shift(z, axis=-1):
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


@_reproduces(SOFTMAX_GLOBAL_MAX, "log_softmax")
def _log_softmax_global_max(z, axis=-1):
    shifted = z - np.max(z)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@_reproduces(SOFTMAX_WRONG_AXIS, "log_softmax")
def _log_softmax_ignores_axis(z, axis=-1):
    return z - np.expand_dims(reference.logsumexp(z, -1), -1)


@_reproduces(SOFTMAX_WRONG_AXIS, "log_softmax")
def _log_softmax_axis0(z, axis=-1):
    return z - np.expand_dims(reference.logsumexp(z, 0), 0)


@_reproduces(SOFTMAX_NO_KEEPDIMS, "log_softmax")
def _log_softmax_no_keepdims(z, axis=-1):
    return z - reference.logsumexp(z, axis)


@_reproduces(LOGSUMEXP_NO_SHIFT, "logsumexp")
def _logsumexp_no_shift(z, axis=-1):
    return np.log(np.sum(np.exp(z), axis=axis))


@_reproduces(LOGSUMEXP_SHIFT_NOT_ADDED_BACK, "logsumexp")
def _logsumexp_forgot_max(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(z - m), axis=axis))


@_reproduces(LOGSUMEXP_SHIFT_NOT_ADDED_BACK, "log_softmax")
def _log_softmax_forgot_max(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


@_reproduces(SOFTMAX_GLOBAL_MAX, "logsumexp")
def _logsumexp_global_max(z, axis=-1):
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m), axis=axis))


@_reproduces(SOFTMAX_WRONG_AXIS, "logsumexp")
def _logsumexp_ignores_axis(z, axis=-1):
    return reference.logsumexp(z, -1)


@_reproduces(SOFTMAX_WRONG_AXIS, "logsumexp")
def _logsumexp_axis0(z, axis=-1):
    return reference.logsumexp(z, 0)
