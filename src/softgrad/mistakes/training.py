"""Chapter 5, softmax regression in NumPy: predictions and the training loop."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from softgrad import reference
from softgrad.i18n import N_
from softgrad.mistakes.catalogue import in_its_dtype, mistake, reproduces
from softgrad.mistakes.inside import variants

__all__ = [
    "PREDICT_WRONG_AXIS", "PYTHON_LOOP_OVER_ROWS", "SGD_ASCENDS", "NO_SHUFFLE", "UNSEEDED_RANDOMNESS",
    "SEED_IGNORED", "ORDER_DRAWN_ONCE", "LAST_BATCH_DROPPED", "REG_NOT_PASSED", "LABELS_OFF_BY_ONE"
]


_CHAPTER = "05_numpy_training"

PREDICT_WRONG_AXIS = mistake(
    "predict-wrong-axis",
    N_("the arg max taken over the examples instead of the classes"),
    N_("""The scores X @ W + b have shape (N, C): one row per example, one column per class. The
    prediction for example n is the column of the largest score in row n, np.argmax(scores,
    axis=1). np.argmax(scores, axis=0) answers another question (which example scores highest
    for each class), and np.argmax(scores) flattens the array."""),
    _CHAPTER, N_("The model and its gradient check"),
)

PYTHON_LOOP_OVER_ROWS = mistake(
    "python-loop-over-rows",
    N_("a Python loop over the rows where one array operation would do"),
    N_("""Each pass through a Python loop costs microseconds of interpreter work, whatever the
    row holds; one matrix product handles all rows in compiled code. For N examples the loop
    runs N times: predict with X @ W + b and np.argmax(..., axis=1) on the whole batch."""),
    _CHAPTER, N_("Vectorisation, measured"),
)

SGD_ASCENDS = mistake(
    "sgd-ascends",
    N_("the parameters moved along the gradient instead of against it"),
    N_("""Gradient descent subtracts: W = W - lr * dW. The gradient points to where the loss grows
    fastest, so adding it climbs the loss: the loss goes up, and the accuracy falls to chance."""),
    _CHAPTER, N_("What a gradient bug does to training"),
)

NO_SHUFFLE = mistake(
    "no-shuffle",
    N_("mini-batches taken in the data's order, without shuffling"),
    N_("""When the data is sorted (all the 0s, then all the 1s, ...), most mini-batches hold a
    single class, and each stretch of steps pulls the model towards that class and away from
    the others: the model remembers mostly what it saw last. Draw a new random order every epoch,
    rng.permutation(N) with rng = np.random.default_rng(seed), and take the batches from it."""),
    _CHAPTER, N_("Mini-batch SGD"),
)

UNSEEDED_RANDOMNESS = mistake(
    "unseeded-randomness",
    N_("randomness that does not come from the seed"),
    N_("""Training with the same seed must give the same result. np.random.shuffle and
    np.random.permutation use NumPy's global state, which other code changes; create one
    generator, rng = np.random.default_rng(seed), and draw every random number from it."""),
    _CHAPTER, N_("Mini-batch SGD"),
)

SEED_IGNORED = mistake(
    "seed-ignored",
    N_("a random generator that ignores the seed argument"),
    N_("""np.random.default_rng(0) (or any fixed number) gives every call the same order, whatever
    seed the caller asks for. Create the generator from the argument:
    rng = np.random.default_rng(seed)."""),
    _CHAPTER, N_("Mini-batch SGD"),
)

ORDER_DRAWN_ONCE = mistake(
    "order-drawn-once",
    N_("one random order for all epochs"),
    N_("""A permutation drawn once, before the loop over epochs, makes every epoch visit the
    mini-batches in the same order with the same members. Draw a new order at the start of
    every epoch: order = rng.permutation(N) inside the epoch loop."""),
    _CHAPTER, N_("Mini-batch SGD"),
)

LAST_BATCH_DROPPED = mistake(
    "last-batch-dropped",
    N_("the last, smaller mini-batch skipped"),
    N_("""When batch_size does not divide N, the last mini-batch of an epoch has N % batch_size
    rows. Skipping it means those examples are never trained on in that epoch: walk through
    the whole order, range(0, N, batch_size), and let the last slice be short."""),
    _CHAPTER, N_("Mini-batch SGD"),
)

REG_NOT_PASSED = mistake(
    "reg-not-passed",
    N_("the regularisation strength not passed on to the loss"),
    N_("""train_softmax_regression receives reg and must hand it to
    softmax_regression_loss_and_grad(W, b, X_batch, y_batch, reg) at every step; otherwise
    the model is trained without the penalty that the caller asked for."""),
    _CHAPTER, N_("Mini-batch SGD"),
)

LABELS_OFF_BY_ONE = mistake(
    "labels-off-by-one",
    N_("labels shifted by one"),
    N_("""The digits' labels are 0 to 9 and index the columns of W directly. Adding or subtracting
    1 (a habit from 1-based data, or from a one-hot vector built with the wrong offset) trains
    the model to predict the next or previous digit: the accuracy falls to almost zero."""),
    _CHAPTER, N_("The data"),
)


@reproduces(PREDICT_WRONG_AXIS, "predict")
def _predict_axis0(W, b, X):
    return np.argmax(np.asarray(X) @ W + b, axis=0)


@reproduces(PREDICT_WRONG_AXIS, "predict")
def _predict_flat(W, b, X):
    return np.argmax(np.asarray(X) @ W + b)


def _first_step_variant(scale: float, shift: int) -> Callable[..., object]:
    def first_step(X, y, num_classes, lr, reg=0.0):
        W, b = reference.sgd_first_step(X, (np.asarray(y) + shift) % num_classes, num_classes, lr, reg)
        return scale * W, scale * b

    return first_step


reproduces(SGD_ASCENDS, "sgd_first_step")(_first_step_variant(-1.0, 0))
reproduces(LABELS_OFF_BY_ONE, "sgd_first_step")(_first_step_variant(1.0, 1))
reproduces(LABELS_OFF_BY_ONE, "sgd_first_step")(_first_step_variant(1.0, -1))


# ---- predictions through a student's own softmax (softgrad.mistakes.inside) -----------------------
# The arg max of the probabilities is the arg max of the scores, unless the probabilities are nan
# (no shift, the batch's maximum: np.argmax returns the first nan's column) or clipped scores tie.

def _predict_with(probabilities):
    def predict(W, b, X):
        scores = in_its_dtype(X) @ in_its_dtype(W) + in_its_dtype(b)
        return np.argmax(probabilities(scores), axis=1)

    return predict


for _inner in variants():
    reproduces(_inner.mistake, "predict", also=_inner.also)(_predict_with(_inner.probabilities))
