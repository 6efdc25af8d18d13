"""Trusted reference implementations, computed in float64.

The hidden tests compare students' functions with these, never with the students' own
code. They are written for clarity and accuracy, not speed: every input is converted to
float64 first, and every formula is the numerically stable one taught in the book.

Students may read this file; an assignment that asks them to implement one of these
functions forbids calling it (the integrity report flags submissions that do).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cross_entropy",
    "cross_entropy_grad",
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
    "logsumexp_of_chunks",
    "log_softmax",
    "log_softmax_vjp",
    "log_softmax_weighted_sum",
    "logsumexp",
    "predict",
    "softmax",
    "softmax_jacobian",
    "softmax_regression_loss",
    "softmax_regression_loss_and_grad",
    "softmax_vjp",
    "softmax_weighted_sum",
    "sgd_first_step",
    "target_distribution",
]


def _float64(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 0:
        raise ValueError("softmax needs at least one axis; got a 0-d array (a single number)")
    return z


def logsumexp(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(sum(exp(z), axis))`` without overflow: ``m + log(sum(exp(z - m)))``, ``m = max(z)``.

    Reduces ``axis`` (no keepdims). Finite for any finite input; -inf for a row whose entries
    are all -inf (a fully masked row: the sum of no terms is 0, and log 0 = -inf).
    """
    z = _float64(z)
    m = np.max(z, axis=axis, keepdims=True)
    shift = np.where(m == -np.inf, 0.0, m)
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(z - shift), axis=axis))


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


def log_softmax_vjp(z: np.ndarray, g: np.ndarray, axis: int = -1) -> np.ndarray:
    """The gradient with respect to ``z`` of ``sum(g * log_softmax(z, axis))``: ``g - p * sum(g)``.

    The product with the *transposed* Jacobian of log-softmax, ``K^T g`` with ``K = I - 1 p^T``
    (chapter 3, "The transposed-Jacobian trap"); the sum of ``g`` is taken along ``axis``, separately
    for every row.
    """
    p = softmax(z, axis=axis)
    g = np.asarray(g, dtype=np.float64)
    return g - p * np.sum(g, axis=axis, keepdims=True)


def log_softmax_weighted_sum(z: np.ndarray, g: np.ndarray, axis: int = -1) -> float:
    """The scalar ``sum(g * log_softmax(z, axis))``, whose gradient with respect to ``z`` is its VJP."""
    return float(np.sum(np.asarray(g, dtype=np.float64) * log_softmax(z, axis=axis)))


def target_distribution(target: np.ndarray, num_classes: int, label_smoothing: float = 0.0) -> np.ndarray:
    """The target as an ``(N, C)`` distribution, smoothed as PyTorch does.

    Integer class indices of shape ``(N,)`` become one-hot rows; probabilities of shape
    ``(N, C)`` are used as they are. Label smoothing mixes in the uniform distribution:
    ``q = (1 - label_smoothing) * q + label_smoothing / C``.
    """
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.integer):
        if target.ndim != 1:
            raise ValueError(f"integer targets are class indices of shape (N,), got shape {target.shape}")
        q = np.zeros((target.shape[0], num_classes))
        q[np.arange(target.shape[0]), target] = 1.0
    else:
        q = np.asarray(target, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != num_classes:
            raise ValueError(f"probability targets have shape (N, {num_classes}), got shape {q.shape}")
    return (1.0 - label_smoothing) * q + label_smoothing / num_classes


def cross_entropy(logits: np.ndarray, target: np.ndarray, label_smoothing: float = 0.0) -> float:
    """Mean cross-entropy ``-(1/N) sum_n sum_c q_nc log softmax(logits)_nc``, in float64."""
    logits = _float64(logits)
    q = target_distribution(target, logits.shape[-1], label_smoothing)
    return float(-np.sum(q * log_softmax(logits, axis=-1)) / logits.shape[0])


def cross_entropy_grad(logits: np.ndarray, target: np.ndarray, label_smoothing: float = 0.0) -> np.ndarray:
    """The gradient of :func:`cross_entropy` with respect to the logits: ``(P - Q) / N``."""
    logits = _float64(logits)
    q = target_distribution(target, logits.shape[-1], label_smoothing)
    return (softmax(logits, axis=-1) - q) / logits.shape[0]


def softmax_regression_loss(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray,
                            reg: float = 0.0) -> float:
    """``cross_entropy(X @ W + b, y) + 0.5 * reg * sum(W**2)``, in float64."""
    W = np.asarray(W, dtype=np.float64)
    logits = np.asarray(X, dtype=np.float64) @ W + np.asarray(b, dtype=np.float64)
    return cross_entropy(logits, y) + 0.5 * reg * float(np.sum(W * W))


def softmax_regression_loss_and_grad(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray,
                                     reg: float = 0.0) -> tuple[float, np.ndarray, np.ndarray]:
    """``(loss, dW, db)`` of :func:`softmax_regression_loss`: ``dW = X^T (P - Y) / N + reg W``."""
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    logits = X @ W + np.asarray(b, dtype=np.float64)
    dlogits = cross_entropy_grad(logits, y)
    loss = cross_entropy(logits, y) + 0.5 * reg * float(np.sum(W * W))
    return loss, X.T @ dlogits + reg * W, np.sum(dlogits, axis=0)


def predict(W: np.ndarray, b: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The class of highest score for every row of ``X``: ``argmax(X @ W + b)``, as int64."""
    scores = np.asarray(X, dtype=np.float64) @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
    return np.argmax(scores, axis=1).astype(np.int64)


def sgd_first_step(X: np.ndarray, y: np.ndarray, num_classes: int, lr: float,
                   reg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` after one full-batch gradient step of softmax regression from zero weights."""
    X = np.asarray(X, dtype=np.float64)
    W0, b0 = np.zeros((X.shape[1], num_classes)), np.zeros(num_classes)
    _, dW, db = softmax_regression_loss_and_grad(W0, b0, X, y, reg)
    return W0 - lr * dW, b0 - lr * db


def logsumexp_of_chunks(chunks) -> np.ndarray:
    """The row-wise log-sum-exp of the chunks of columns joined together: what
    ``online_logsumexp(chunks)`` must return, computed the simple way (all columns at once)."""
    return logsumexp(np.concatenate([np.asarray(c, dtype=np.float64) for c in chunks], axis=-1), axis=-1)


def linear_cross_entropy(h: np.ndarray, W: np.ndarray, target: np.ndarray, chunk_size: int | None = None) -> float:
    """``cross_entropy(h @ W, target)`` in float64, materialising the logits.

    ``chunk_size`` is accepted and ignored, so that the trusted loss takes the arguments of
    ``chunked_linear_cross_entropy`` (the value does not depend on how it is computed).
    """
    return cross_entropy(np.asarray(h, dtype=np.float64) @ np.asarray(W, dtype=np.float64), target)


def linear_cross_entropy_and_grad(h: np.ndarray, W: np.ndarray, target: np.ndarray,
                                  chunk_size: int | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """``(loss, dh, dW)`` of :func:`linear_cross_entropy`: with ``G = (softmax(h W) - Y) / N``,
    ``dh = G W^T`` and ``dW = h^T G``."""
    h, W = np.asarray(h, dtype=np.float64), np.asarray(W, dtype=np.float64)
    logits = h @ W
    G = cross_entropy_grad(logits, target)
    return cross_entropy(logits, target), G @ W.T, h.T @ G
