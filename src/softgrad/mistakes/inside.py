"""The softmax students write inside a bigger function, and the ways it goes wrong there.

A graded function that computes a softmax, a log-softmax or a log-sum-exp on the way to its
result (a Jacobian, a loss and its gradient, a prediction) goes wrong in the ways chapter 1's
functions do: no max shift, the maximum of the whole batch, clipped logits, or (for a loss) the
logarithm of a probability that has underflowed to 0. Students write their own softmax everywhere,
so every such function's catalogue registers these reproductions too: the chapter modules build
them from the :class:`Inner` variants here, with each function's own formula around them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from softgrad.mistakes.catalogue import Mistake
from softgrad.mistakes.softmax import CLIP_BOUNDS, SOFTMAX_CLIP, SOFTMAX_GLOBAL_MAX, SOFTMAX_NO_MAX_SHIFT

__all__ = ["Inner", "variants"]

Rows = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Inner:
    """One way of computing, along the last axis, the probabilities and the log-probabilities."""

    mistake: Mistake
    also: tuple[Mistake, ...]
    probabilities: Rows
    log_probabilities: Rows


def _unshifted(z: np.ndarray) -> np.ndarray:
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def _unshifted_log(z: np.ndarray) -> np.ndarray:
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def _batch_shifted(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=-1, keepdims=True)


def _batch_shifted_log(z: np.ndarray) -> np.ndarray:
    shifted = z - np.max(z)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _stable(z: np.ndarray) -> np.ndarray:
    # the right formula, but in the input's dtype: a probability of a float32 row underflows to 0
    # below about exp(-103), as the student's float32 code's does
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _stable_log(z: np.ndarray) -> np.ndarray:
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _log_of(probabilities: Rows) -> Rows:
    return lambda z: np.log(probabilities(z))


def _clipped(rows: Rows, bound: float) -> Rows:
    return lambda z: rows(np.clip(z, -bound, bound))


def variants(log_of_probability: Mistake | None = None) -> list[Inner]:
    """The wrong ways, each with the mistakes it makes. With ``log_of_probability`` (the catalogue
    entry for a loss that takes the log of a probability), the variants of a loss's logarithm too:
    a log of the probability computed stably, without the shift, and with the batch's maximum."""
    found = [
        Inner(SOFTMAX_NO_MAX_SHIFT, (), _unshifted, _unshifted_log),
        Inner(SOFTMAX_GLOBAL_MAX, (), _batch_shifted, _batch_shifted_log),
    ]
    found += [Inner(SOFTMAX_CLIP, (), _clipped(_stable, bound), _clipped(_stable_log, bound)) for bound in CLIP_BOUNDS]
    if log_of_probability is not None:
        found += [
            Inner(log_of_probability, (), _stable, _log_of(_stable)),
            Inner(SOFTMAX_NO_MAX_SHIFT, (log_of_probability,), _unshifted, _log_of(_unshifted)),
            Inner(SOFTMAX_GLOBAL_MAX, (log_of_probability,), _batch_shifted, _log_of(_batch_shifted)),
        ]
    return found
