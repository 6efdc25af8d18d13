"""Chapter 4, cross-entropy and its gradient: the loss, its gradient, softmax regression."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from softgrad import reference
from softgrad.mistakes.catalogue import Mistake, mistake, reproduces
from softgrad.mistakes.softmax import LOG_OF_SOFTMAX, SOFTMAX_NO_MAX_SHIFT

__all__ = [
    "CE_SUM_NOT_MEAN", "CE_GRAD_NO_BATCH_MEAN", "CE_GRAD_SIGN_FLIPPED", "CE_INTEGER_LABELS_AS_ONEHOT",
    "CE_LABEL_SMOOTHING_C_MINUS_1", "CE_LABEL_SMOOTHING_IGNORED", "CE_SOFT_TARGETS_ARGMAX",
    "CE_GRAD_THROUGH_PROBABILITIES", "DW_TRANSPOSED", "REG_GRADIENT_FACTOR_TWO", "REG_GRADIENT_MISSING"
]


_CHAPTER = "04_cross_entropy"

CE_SUM_NOT_MEAN = mistake(
    "ce-sum-not-mean",
    "the loss summed over the batch instead of averaged",
    """The course's cross-entropy, like PyTorch's default reduction='mean', is the mean over
    the N examples of the batch. A sum is N times larger, and its gradient too, so the
    learning rate that suits one batch size no longer suits another. Divide by N.""",
    _CHAPTER, "Batches: the mean and the 1/N",
)

CE_GRAD_NO_BATCH_MEAN = mistake(
    "ce-grad-missing-1-over-n",
    "the gradient of a mean loss without the factor 1/N",
    """The loss is the mean of N per-example losses, so each logit's gradient is
    (p - q) / N, not p - q. Without the 1/N every gradient is N times too large. The same
    factor appears in dW = X^T (P - Y) / N and db = sum over examples of (P - Y) / N.""",
    _CHAPTER, "Batches: the mean and the 1/N",
)

CE_GRAD_SIGN_FLIPPED = mistake(
    "ce-grad-sign-flipped",
    "the cross-entropy gradient with its sign flipped, (q - p) / N",
    """The gradient of -sum q log p with respect to the logits is p - q. For an unsmoothed
    integer label the loss goes down when the logit of the right class goes up, so that
    logit's gradient, p_y - 1, is negative. A flipped sign makes gradient descent climb the
    loss.""",
    _CHAPTER, "The gradient, derived twice",
)

CE_INTEGER_LABELS_AS_ONEHOT = mistake(
    "ce-integer-labels-as-onehot",
    "integer class labels used as if they were one-hot vectors",
    """p - y needs y as a one-hot (N, C) array. With integer labels of shape (N,),
    subtracting them broadcasts the label's value (0, 1, 2, ...) across a row, or across the
    wrong axis. Build the one-hot rows first, or subtract 1 at [range(N), y] only.""",
    _CHAPTER, "From likelihood to cross-entropy",
)

CE_LABEL_SMOOTHING_C_MINUS_1 = mistake(
    "label-smoothing-c-minus-1",
    "label smoothing spread over the C - 1 wrong classes",
    """The course follows PyTorch: q = (1 - eps) * q + eps / C, which mixes in the uniform
    distribution over all C classes, the right one included (it gets 1 - eps + eps/C).
    Giving eps / (C - 1) to each wrong class and 1 - eps to the right one is another
    convention, and gives other numbers.""",
    _CHAPTER, "Soft targets and label smoothing",
)

CE_LABEL_SMOOTHING_IGNORED = mistake(
    "label-smoothing-ignored",
    "the label_smoothing argument ignored",
    """With label_smoothing = eps the target is (1 - eps) * q + eps / C, not q, for integer
    labels and probability targets alike. The function accepts the argument and must use
    it, for every kind of target, in the loss and in the gradient.""",
    _CHAPTER, "Soft targets and label smoothing",
)

CE_SOFT_TARGETS_ARGMAX = mistake(
    "soft-targets-collapsed",
    "soft targets collapsed to their most likely class",
    """A probability target such as (0.7, 0.2, 0.1) is a distribution, and cross-entropy
    uses all of it: -sum_c q_c log p_c. Replacing it by the one-hot vector of its arg max
    throws away what the soft target says about the other classes.""",
    _CHAPTER, "Soft targets and label smoothing",
)

CE_GRAD_THROUGH_PROBABILITIES = mistake(
    "ce-grad-through-probabilities",
    "the gradient computed through the probabilities, -q / p, then the softmax Jacobian",
    """In exact arithmetic p * (g - <g, p>) with g = -q / p is p - q. In floating point, a
    probability that has underflowed to 0 makes -q / p infinite and 0 * inf = nan, for
    exactly the confident predictions where the gradient matters most. Compute p - q
    directly: it never divides by a probability.""",
    _CHAPTER, "The gradient, derived twice",
)

DW_TRANSPOSED = mistake(
    "dw-transposed",
    "dW transposed, (P - Y)^T X instead of X^T (P - Y)",
    """W has shape (D, C), so dW must too. With Z = X W + b, dZ = (P - Y) / N has shape
    (N, C), and dW = X^T dZ: (D, N) times (N, C). Check every gradient's shape against its
    parameter's.""",
    _CHAPTER, "Softmax regression",
)

REG_GRADIENT_FACTOR_TWO = mistake(
    "reg-gradient-factor-two",
    "the regularisation gradient 2 reg W for a loss with 0.5 reg ||W||^2",
    """The derivative of 0.5 * reg * sum(W**2) is reg * W: the 0.5 is there precisely to
    cancel the 2 of the square. 2 * reg * W is the gradient of reg * sum(W**2), which is not
    the loss you computed.""",
    _CHAPTER, "Softmax regression",
)

REG_GRADIENT_MISSING = mistake(
    "reg-gradient-missing",
    "the regularisation term in the loss but not in the gradient",
    """Every term of the loss contributes to its gradient: 0.5 * reg * sum(W**2) adds
    reg * W to dW. A gradient without it belongs to another loss.""",
    _CHAPTER, "Softmax regression",
)


def _one_hot(y, num_classes):
    return np.eye(num_classes)[np.asarray(y)]


def _q(target, num_classes, label_smoothing):
    return reference.target_distribution(target, num_classes, label_smoothing)


@reproduces(CE_SUM_NOT_MEAN, "cross_entropy")
def _ce_sum(logits, target, label_smoothing=0.0):
    return reference.cross_entropy(logits, target, label_smoothing) * np.shape(logits)[0]


@reproduces(LOG_OF_SOFTMAX, "cross_entropy")
def _ce_log_of_softmax(logits, target, label_smoothing=0.0):
    q = _q(target, np.shape(logits)[-1], label_smoothing)
    return -np.sum(q * np.log(reference.softmax(logits))) / np.shape(logits)[0]


@reproduces(SOFTMAX_NO_MAX_SHIFT, "cross_entropy")
def _ce_no_shift(logits, target, label_smoothing=0.0):
    q = _q(target, np.shape(logits)[-1], label_smoothing)
    log_p = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    return -np.sum(q * log_p) / np.shape(logits)[0]


def _smooth_other_classes(target, logits, label_smoothing):
    num_classes = np.shape(logits)[-1]
    q = _q(target, num_classes, 0.0)
    return (1 - label_smoothing) * q + label_smoothing * (1 - q) / (num_classes - 1)


def _argmax_target(target):
    target = np.asarray(target)
    return target if np.issubdtype(target.dtype, np.integer) else np.argmax(target, axis=-1)


def _target_mistake(entry: Mistake, wrong_target: Callable[..., tuple[object, float]]) -> None:
    """A wrong target distribution shows in the loss and in its gradient alike: register both.

    ``wrong_target(logits, target, label_smoothing)`` returns the ``(target, label_smoothing)``
    that the mistaken code effectively uses.
    """

    def loss(logits, target, label_smoothing=0.0):
        return reference.cross_entropy(logits, *wrong_target(logits, target, label_smoothing))

    def grad(logits, target, label_smoothing=0.0):
        return reference.cross_entropy_grad(logits, *wrong_target(logits, target, label_smoothing))

    reproduces(entry, "cross_entropy")(loss)
    reproduces(entry, "cross_entropy_grad")(grad)


_target_mistake(CE_LABEL_SMOOTHING_C_MINUS_1,
                lambda logits, target, eps: (_smooth_other_classes(target, logits, eps), 0.0))
_target_mistake(CE_LABEL_SMOOTHING_IGNORED, lambda logits, target, eps: (target, 0.0))
_target_mistake(CE_LABEL_SMOOTHING_IGNORED,  # smoothing applied to integer labels only
                lambda logits, target, eps: (target, eps if np.asarray(target).ndim == 1 else 0.0))
_target_mistake(CE_SOFT_TARGETS_ARGMAX, lambda logits, target, eps: (_argmax_target(target), eps))


@reproduces(CE_GRAD_NO_BATCH_MEAN, "cross_entropy_grad")
def _ce_grad_no_mean(logits, target, label_smoothing=0.0):
    return reference.cross_entropy_grad(logits, target, label_smoothing) * np.shape(logits)[0]


@reproduces(CE_GRAD_SIGN_FLIPPED, "cross_entropy_grad")
def _ce_grad_sign(logits, target, label_smoothing=0.0):
    return -reference.cross_entropy_grad(logits, target, label_smoothing)


def _integer_labels(target):
    """The labels, if they are integer class indices; other targets cannot show this mistake."""
    target = np.asarray(target)
    if target.ndim != 1 or not np.issubdtype(target.dtype, np.integer):
        raise ValueError("only integer labels can be mistaken for one-hot rows")
    return target


@reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "cross_entropy_grad")
def _ce_grad_integer_column(logits, target, label_smoothing=0.0):
    return (reference.softmax(logits) - _integer_labels(target)[:, None]) / np.shape(logits)[0]


@reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "cross_entropy_grad")
def _ce_grad_integer_row(logits, target, label_smoothing=0.0):
    return (reference.softmax(logits) - _integer_labels(target)) / np.shape(logits)[0]


def _regression_parts(W, b, X, y):
    X = np.asarray(X, dtype=np.float64)
    logits = X @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
    return X, logits, reference.cross_entropy_grad(logits, y)


@reproduces(CE_GRAD_NO_BATCH_MEAN, "softmax_regression_loss_and_grad")
def _regression_no_mean(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    n = X.shape[0]
    return reference.softmax_regression_loss(W, b, X, y, reg), X.T @ dlogits * n + reg * W, dlogits.sum(0) * n


@reproduces(DW_TRANSPOSED, "softmax_regression_loss_and_grad")
def _regression_dw_transposed(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    return reference.softmax_regression_loss(W, b, X, y, reg), (X.T @ dlogits).T + reg * np.asarray(W).T, \
        dlogits.sum(0)


@reproduces(REG_GRADIENT_FACTOR_TWO, "softmax_regression_loss_and_grad")
def _regression_reg_twice(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    return reference.softmax_regression_loss(W, b, X, y, reg), X.T @ dlogits + 2 * reg * W, dlogits.sum(0)


@reproduces(REG_GRADIENT_MISSING, "softmax_regression_loss_and_grad")
def _regression_reg_missing(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    return reference.softmax_regression_loss(W, b, X, y, reg), X.T @ dlogits, dlogits.sum(0)


@reproduces(CE_GRAD_SIGN_FLIPPED, "softmax_regression_loss_and_grad")
def _regression_sign(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    return reference.softmax_regression_loss(W, b, X, y, reg), -X.T @ dlogits + reg * W, -dlogits.sum(0)


@reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "softmax_regression_loss_and_grad")
def _regression_integer_labels(W, b, X, y, reg=0.0):
    X = np.asarray(X, dtype=np.float64)
    logits = X @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
    dlogits = (reference.softmax(logits) - np.asarray(y)[:, None]) / X.shape[0]
    return reference.softmax_regression_loss(W, b, X, y, reg), X.T @ dlogits + reg * W, dlogits.sum(0)

@reproduces(CE_GRAD_THROUGH_PROBABILITIES, "cross_entropy_grad")
def _ce_grad_through_probabilities(logits, target, label_smoothing=0.0):
    p = reference.softmax(logits)
    q = _q(target, np.shape(logits)[-1], label_smoothing)
    g = -q / p
    return p * (g - np.sum(g * p, axis=-1, keepdims=True)) / np.shape(logits)[0]
