"""Trusted reference implementations, computed in float64.

The hidden tests compare students' functions with these, never with the students' own
code. They are written for clarity and accuracy, not speed: every input is converted to
float64 first, and every formula is the numerically stable one taught in the book.

Students may read this file; an assignment that asks them to implement one of these
functions forbids calling it (the integrity report flags submissions that do).
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "logsumexp", "softmax", "softmax_jacobian", "softmax_vjp", "softmax_weighted_sum"]


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


def softmax_jacobian(z: np.ndarray) -> np.ndarray:
    """The Jacobian of softmax along the last axis: ``(..., n) -> (..., n, n)``.

    ``J[..., i, j] = d p_i / d z_j = p_i * (delta_ij - p_j)``, that is ``diag(p) - p p^T``
    for every row.
    """
    p = softmax(z, axis=-1)
    return np.einsum("...i,ij->...ij", p, np.eye(p.shape[-1])) - np.einsum("...i,...j->...ij", p, p)


def softmax_vjp(z: np.ndarray, g: np.ndarray, axis: int = -1) -> np.ndarray:
    """The gradient with respect to ``z`` of ``sum(g * softmax(z, axis))``: ``p * (g - <g, p>)``.

    The inner product ``<g, p>`` is taken along ``axis``, separately for every row.
    """
    p = softmax(z, axis=axis)
    g = np.asarray(g, dtype=np.float64)
    return p * (g - np.sum(g * p, axis=axis, keepdims=True))


def softmax_weighted_sum(z: np.ndarray, g: np.ndarray, axis: int = -1) -> float:
    """The scalar ``sum(g * softmax(z, axis))``, whose gradient with respect to ``z`` is the VJP.

    Tests differentiate it numerically to check a vector-Jacobian product: with random
    weights ``g`` its gradient exercises every entry of the Jacobian (a plain sum of the
    softmax outputs is always 1, so its gradient is zero and would check nothing).
    """
    return float(np.sum(np.asarray(g, dtype=np.float64) * softmax(z, axis=axis)))
