"""Chapter 4, cross-entropy and its gradient: the loss, its gradient, softmax regression."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from softgrad import reference
from softgrad.i18n import N_
from softgrad.mistakes.catalogue import Mistake, in_its_dtype, mistake, reproduces
from softgrad.mistakes.inside import variants
from softgrad.mistakes.softmax import SOFTMAX_NO_MAX_SHIFT, SOFTMAX_WRONG_AXIS

__all__ = [
    "CE_SUM_NOT_MEAN", "CE_GRAD_NO_BATCH_MEAN", "CE_GRAD_SIGN_FLIPPED", "CE_INTEGER_LABELS_AS_ONEHOT",
    "CE_LABEL_SMOOTHING_C_MINUS_1", "CE_LABEL_SMOOTHING_IGNORED", "CE_SOFT_TARGETS_ARGMAX",
    "CE_GRAD_THROUGH_PROBABILITIES", "DW_TRANSPOSED", "REG_GRADIENT_FACTOR_TWO", "REG_GRADIENT_MISSING",
    "LOG_OF_PROBABILITY", "GRADIENT_TRANSPOSED",
]


_CHAPTER = "04_cross_entropy"

CE_SUM_NOT_MEAN = mistake(
    "ce-sum-not-mean",
    N_("the loss summed over the batch instead of averaged"),
    N_("""The course's cross-entropy, like PyTorch's default reduction='mean', is the mean over
    the N examples of the batch. A sum is N times larger, and its gradient too, so the
    learning rate that suits one batch size no longer suits another. Divide by N."""),
    _CHAPTER, N_("Batches: the mean and the 1/N"),
)

CE_GRAD_NO_BATCH_MEAN = mistake(
    "ce-grad-missing-1-over-n",
    N_("the gradient of a mean loss without the factor 1/N"),
    N_("""The loss is the mean of N per-example losses, so each logit's gradient is
    (p - q) / N, not p - q. Without the 1/N every gradient is N times too large. The same
    factor appears in dW = X^T (P - Y) / N and db = sum over examples of (P - Y) / N."""),
    _CHAPTER, N_("Batches: the mean and the 1/N"),
)

CE_GRAD_SIGN_FLIPPED = mistake(
    "ce-grad-sign-flipped",
    N_("the cross-entropy gradient with its sign flipped, (q - p) / N"),
    N_("""The gradient of -sum q log p with respect to the logits is p - q. For an unsmoothed
    integer label the loss goes down when the logit of the right class goes up, so that
    logit's gradient, p_y - 1, is negative. A flipped sign makes gradient descent climb the
    loss."""),
    _CHAPTER, N_("The gradient, derived twice"),
)

CE_INTEGER_LABELS_AS_ONEHOT = mistake(
    "ce-integer-labels-as-onehot",
    N_("integer class labels used as if they were one-hot vectors"),
    N_("""p - y needs y as a one-hot (N, C) array. With integer labels of shape (N,),
    subtracting them broadcasts the label's value (0, 1, 2, ...) across a row, or across the
    wrong axis. Build the one-hot rows first, or subtract 1 at [range(N), y] only."""),
    _CHAPTER, N_("From likelihood to cross-entropy"),
)

CE_LABEL_SMOOTHING_C_MINUS_1 = mistake(
    "label-smoothing-c-minus-1",
    N_("label smoothing spread over the C - 1 wrong classes"),
    N_("""The course follows PyTorch: q = (1 - eps) * q + eps / C, which mixes in the uniform
    distribution over all C classes, the right one included (it gets 1 - eps + eps/C).
    Giving eps / (C - 1) to each wrong class and 1 - eps to the right one is another
    convention, and gives other numbers."""),
    _CHAPTER, N_("Soft targets and label smoothing"),
)

CE_LABEL_SMOOTHING_IGNORED = mistake(
    "label-smoothing-ignored",
    N_("the label_smoothing argument ignored"),
    N_("""With label_smoothing = eps the target is (1 - eps) * q + eps / C, not q, for integer
    labels and probability targets alike. The function accepts the argument and must use
    it, for every kind of target, in the loss and in the gradient."""),
    _CHAPTER, N_("Soft targets and label smoothing"),
)

CE_SOFT_TARGETS_ARGMAX = mistake(
    "soft-targets-collapsed",
    N_("soft targets collapsed to their most likely class"),
    N_("""A probability target such as (0.7, 0.2, 0.1) is a distribution, and cross-entropy
    uses all of it: -sum_c q_c log p_c. Replacing it by the one-hot vector of its arg max
    throws away what the soft target says about the other classes."""),
    _CHAPTER, N_("Soft targets and label smoothing"),
)

CE_GRAD_THROUGH_PROBABILITIES = mistake(
    "ce-grad-through-probabilities",
    N_("the gradient computed through the probabilities, -q / p, then the softmax Jacobian"),
    N_("""In exact arithmetic p * (g - <g, p>) with g = -q / p is p - q. In floating point, a
    probability that has underflowed to 0 makes -q / p infinite and 0 * inf = nan, for
    exactly the confident predictions where the gradient matters most. Compute p - q
    directly: it never divides by a probability."""),
    _CHAPTER, N_("The gradient, derived twice"),
)

DW_TRANSPOSED = mistake(
    "dw-transposed",
    N_("dW transposed, (P - Y)^T X instead of X^T (P - Y)"),
    N_("""W has shape (D, C), so dW must too. With Z = X W + b, dZ = (P - Y) / N has shape
    (N, C), and dW = X^T dZ: (D, N) times (N, C). Check every gradient's shape against its
    parameter's."""),
    _CHAPTER, N_("Softmax regression"),
)

REG_GRADIENT_FACTOR_TWO = mistake(
    "reg-gradient-factor-two",
    N_("the regularisation gradient 2 reg W for a loss with 0.5 reg ||W||^2"),
    N_("""The derivative of 0.5 * reg * sum(W**2) is reg * W: the 0.5 is there precisely to
    cancel the 2 of the square. 2 * reg * W is the gradient of reg * sum(W**2), which is not
    the loss you computed."""),
    _CHAPTER, N_("Softmax regression"),
)

REG_GRADIENT_MISSING = mistake(
    "reg-gradient-missing",
    N_("the regularisation term in the loss but not in the gradient"),
    N_("""Every term of the loss contributes to its gradient: 0.5 * reg * sum(W**2) adds
    reg * W to dW. A gradient without it belongs to another loss."""),
    _CHAPTER, N_("Softmax regression"),
)

LOG_OF_PROBABILITY = mistake(
    "log-of-probability",
    N_("a loss that takes the logarithm of a probability"),
    N_("""-np.log(probs[range(N), y]) (or np.log(softmax(logits))) is +inf as soon as the
    probability of a class has underflowed to 0, which happens for every confident wrong
    prediction: with logits (0, -800) and label 1 the probability is exp(-800), below the
    smallest float, while the loss is an ordinary number, about 800. Compute the loss from the
    logits in the log domain: log-sum-exp(z) - z_y, or -sum(q * log_softmax(z)); it never takes
    the logarithm of a probability."""),
    _CHAPTER, N_("From likelihood to cross-entropy"),
)

GRADIENT_TRANSPOSED = mistake(
    "gradient-transposed",
    N_("a gradient returned transposed"),
    N_("""A gradient has the shape of what it differentiates: the gradient with respect to logits of
    shape (N, C) has shape (N, C), and dW has the shape (D, C) of W. A transposed result, such as
    (P - Y).T / N, holds the right numbers in the wrong places; check each gradient's shape
    against its variable's."""),
    _CHAPTER, N_("Softmax regression"),
)


def _one_hot(y, num_classes):
    return np.eye(num_classes)[np.asarray(y)]


def _q(target, num_classes, label_smoothing):
    return reference.target_distribution(target, num_classes, label_smoothing)


@reproduces(CE_SUM_NOT_MEAN, "cross_entropy")
def _ce_sum(logits, target, label_smoothing=0.0):
    return reference.cross_entropy(logits, target, label_smoothing) * np.shape(logits)[0]


@reproduces(LOG_OF_PROBABILITY, "cross_entropy")
def _ce_log_of_softmax(logits, target, label_smoothing=0.0):
    q = _q(target, np.shape(logits)[-1], label_smoothing)
    return -np.sum(q * np.log(reference.softmax(logits))) / np.shape(logits)[0]


@reproduces(SOFTMAX_NO_MAX_SHIFT, "cross_entropy")
def _ce_no_shift(logits, target, label_smoothing=0.0):
    logits = in_its_dtype(logits)  # float32 overflows at 88.7, as the student's float32 code does
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


# ---- a student's own softmax inside the loss, its gradient and softmax regression ----------------
# (no shift, the batch's maximum, clipped logits, the log of a probability; chapter 1's mistakes
# made inside a bigger function, built from softgrad.mistakes.inside)

def _loss_with(log_probabilities):
    def cross_entropy(logits, target, label_smoothing=0.0):
        logits = in_its_dtype(logits)
        q = _q(target, logits.shape[-1], label_smoothing)
        return -np.sum(q * log_probabilities(logits)) / logits.shape[0]

    return cross_entropy


def _picked_loss_with(log_probabilities):
    """The same loss for integer labels, computed as code usually indexes it: the label's log-probability
    picked (no 0 * log 0 for the other classes), smoothing as the mean over the classes."""

    def cross_entropy(logits, target, label_smoothing=0.0):
        logits, target = in_its_dtype(logits), np.asarray(target)
        if target.ndim != 1:
            raise ValueError("only integer labels are picked")
        log_p = log_probabilities(logits)
        picked = -log_p[np.arange(len(target)), target]
        return float(np.mean((1.0 - label_smoothing) * picked - label_smoothing * np.mean(log_p, axis=1)))

    return cross_entropy


def _grad_with(probabilities):
    def cross_entropy_grad(logits, target, label_smoothing=0.0):
        logits = in_its_dtype(logits)
        return (probabilities(logits) - _q(target, logits.shape[-1], label_smoothing)) / logits.shape[0]

    return cross_entropy_grad


def _regression_with(probabilities, log_probabilities, scale=None):
    """A softmax regression whose loss and gradients use the given probabilities and logarithms;
    ``scale`` divides the data terms (N by default: a summed loss and its gradient with 1)."""

    def softmax_regression_loss_and_grad(W, b, X, y, reg=0.0):
        W, X = in_its_dtype(W), in_its_dtype(X)
        logits = X @ W + in_its_dtype(b)
        n = logits.shape[0] if scale is None else scale
        q = _q(y, logits.shape[-1], 0.0)
        picked = log_probabilities(logits)[np.arange(logits.shape[0]), np.asarray(y)]  # as code indexes it
        loss = -np.sum(picked) / n + 0.5 * reg * float(np.sum(W * W))
        dlogits = (probabilities(logits) - q) / n
        return loss, X.T @ dlogits + reg * W, dlogits.sum(axis=0)

    return softmax_regression_loss_and_grad


for _inner in variants(LOG_OF_PROBABILITY):
    reproduces(_inner.mistake, "cross_entropy", also=_inner.also)(_loss_with(_inner.log_probabilities))
    reproduces(_inner.mistake, "cross_entropy", also=_inner.also)(_picked_loss_with(_inner.log_probabilities))
    reproduces(_inner.mistake, "softmax_regression_loss_and_grad", also=_inner.also)(
        _regression_with(_inner.probabilities, _inner.log_probabilities))
    if not _inner.also and _inner.mistake is not LOG_OF_PROBABILITY:  # the gradient takes no logarithm
        reproduces(_inner.mistake, "cross_entropy_grad")(_grad_with(_inner.probabilities))

reproduces(CE_SUM_NOT_MEAN, "softmax_regression_loss_and_grad", also=(CE_GRAD_NO_BATCH_MEAN,))(
    _regression_with(reference.softmax, reference.log_softmax, scale=1))
reproduces(SOFTMAX_WRONG_AXIS, "cross_entropy")(_loss_with(lambda z: reference.log_softmax(z, axis=0)))
reproduces(SOFTMAX_WRONG_AXIS, "cross_entropy_grad")(_grad_with(lambda z: reference.softmax(z, axis=0)))


@reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "cross_entropy")
def _ce_integer_labels_multiplied(logits, target, label_smoothing=0.0):
    # q = target used as one-hot rows: broadcasts (or fails) against the (N, C) log-probabilities
    n, c = np.shape(logits)
    q = (1.0 - label_smoothing) * _integer_labels(target) + label_smoothing / c
    return -np.sum(q * reference.log_softmax(logits)) / n
