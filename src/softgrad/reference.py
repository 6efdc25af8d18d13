"""Trusted reference implementations, computed in float64.

The hidden tests compare students' functions with these, never with the students' own
code. They are written for clarity and accuracy, not speed: every input is converted to
float64 first, and every formula is the numerically stable one taught in the book.

Students may read this file; an assignment that asks them to implement one of these
functions forbids calling it (the integrity report flags submissions that do).
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "logsumexp", "softmax"]


def _float64(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 0:
        raise ValueError("softmax needs at least one axis; got a 0-d array (a single number)")
    return z


def logsumexp(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(sum(exp(z), axis))`` without overflow: ``m + log(sum(exp(z - m)))``, ``m = max(z)``.

    Reduces ``axis`` (no keepdims). Finite for any finite input.
    """
    z = _float64(z)
    m = np.max(z, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(z - m), axis=axis))


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``z - logsumexp(z)`` along ``axis``, written as ``(z - m) - log(sum(exp(z - m)))``."""
    z = _float64(z)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(z) / sum(exp(z))`` along ``axis``, after subtracting each row's maximum."""
    z = _float64(z)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
