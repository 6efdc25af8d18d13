"""Inputs that expose unstable code, for the hidden tests of every graded function with a softmax inside.

Students write their own softmax inside whatever they implement: a Jacobian, a loss and its
gradient, a prediction, a training step. The same four inputs expose the same four mistakes
everywhere (:func:`hard_logits`), and :func:`linear_inputs` builds parameters and data whose logits
``X @ W + b`` are exactly those, for the functions that compute their logits themselves:

* logits of +-1000 in float64: ``exp`` without the max shift overflows (inf / inf is nan) or
  underflows (0 / 0);
* rows of very different scales in one batch: a shift by the maximum of the whole batch
  (``scores -= np.max(scores)``) underflows the rows far below it;
* a confident wrong prediction: the probability of the right class underflows to 0, and
  ``-np.log(probs[range(N), y])`` is inf where the loss is about 800;
* float32 logits beyond float32's ``exp`` limit (about 88.7): ``exp`` overflows in float32 long
  before it would in float64.
"""

from __future__ import annotations

import numpy as np

from softgrad.i18n import N_

__all__ = ["HardCase", "hard_logits", "linear_inputs"]


class HardCase(tuple):
    """``(case, logits, labels)``: a description for messages (in English: the checks show it in the reader's
    language), the logits and the right classes."""

    __slots__ = ()

    def __new__(cls, case: str, logits: np.ndarray, labels: np.ndarray):
        return super().__new__(cls, (case, logits, labels))


def hard_logits(classes: int = 4) -> list[HardCase]:
    """The four hard cases, each an ``(N, classes)`` batch (``classes >= 3``) with integer labels."""
    if classes < 3:
        raise ValueError(f"the hard cases need at least 3 classes, got {classes}")
    pad = classes - 3

    def rows(*values: list[float], dtype: type = np.float64) -> np.ndarray:
        return np.array([list(v) + [v[-1] - 1.0 - k for k in range(pad)] for v in values], dtype=dtype)

    return [
        HardCase(N_("logits of +-1000"),
                 rows([1000.0, 999.0, 998.0], [-1000.0, -999.0, -1001.0], [3.0, -1000.0, 1000.0]), np.array([1, 0, 2])),
        HardCase(N_("rows of very different scales in one batch"),
                 rows([1000.0, 999.0, 0.0], [-1000.0, -1001.0, -1003.0], [0.5, 2.0, 1.0]), np.array([1, 2, 0])),
        HardCase(N_("a confident wrong prediction"), rows([0.0, -800.0, -5.0], [2.0, 1.0, 0.5]), np.array([1, 0])),
        HardCase(N_("float32 logits beyond float32's exp limit"),
                 rows([100.0, 0.0, -100.0], [-95.0, 90.0, 0.0], dtype=np.float32), np.array([2, 0])),
    ]


def linear_inputs(logits: np.ndarray, features: int, *, seed: int = 0,
                  bias: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(W, b, X)`` in the logits' dtype with ``X @ W + b`` equal to ``logits`` (up to rounding).

    ``X`` (N, ``features``) has orthonormal rows (``features >= N``), so ``W = X.T @ (logits - b)``
    reproduces the logits exactly in exact arithmetic; ``b`` is a small random bias (zeros with
    ``bias=False``, for ``h @ W`` without one). The entries of ``W`` are then as large as the logits:
    this is how softmax regression meets logits of 1000.
    """
    logits = np.asarray(logits)
    n, classes = logits.shape
    if features < n:
        raise ValueError(f"features ({features}) must be at least the number of rows ({n})")
    rng = np.random.default_rng(seed)
    q, _r = np.linalg.qr(rng.normal(size=(features, n)))
    X = q.T  # (n, features), orthonormal rows
    b = rng.normal(scale=0.1, size=classes) if bias else np.zeros(classes)
    W = X.T @ (np.asarray(logits, dtype=np.float64) - b)
    dtype = logits.dtype if np.issubdtype(logits.dtype, np.floating) else np.float64
    return W.astype(dtype), b.astype(dtype), X.astype(dtype)
