"""The training checks of softgrad.testing (chapter 4): each catches its mistake and names it."""

from __future__ import annotations

import numpy as np
import pytest

from softgrad import reference
from softgrad.data import load_digits
from softgrad.testing import (
    check_deterministic,
    check_first_sgd_step,
    check_raises,
    check_sgd_loop,
    check_training,
    check_vectorised,
    count_lines_run,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def loss_and_grad(W, b, X, y, reg=0.0):
    return reference.softmax_regression_loss_and_grad(W, b, X, y, reg)


def make_train(order_once=False, drop_last=False, pass_reg=True, seed_fixed=False, shuffle=True, sign=1.0,
               shift=0):
    """A trainer with one configurable mistake; it calls the module's loss_and_grad by name."""

    def train(X, y, num_classes, lr=0.5, epochs=30, batch_size=64, reg=1e-4, seed=0):
        n, d = X.shape
        W, b = np.zeros((d, num_classes)), np.zeros(num_classes)
        rng = np.random.default_rng(0 if seed_fixed else seed)
        first = rng.permutation(n)
        history = {"loss": []}
        for _ in range(epochs):
            order = first if order_once else (rng.permutation(n) if shuffle else np.arange(n))
            losses = []
            for start in range(0, n, batch_size):
                batch = order[start:start + batch_size]
                if drop_last and len(batch) < batch_size:
                    continue
                labels = (y[batch] + shift) % num_classes
                loss, dW, db = globals()["loss_and_grad"](W, b, X[batch], labels, reg if pass_reg else 0.0)
                W -= sign * lr * dW
                b -= sign * lr * db
                losses.append(loss)
            history["loss"].append(float(np.mean(losses)))
        return W, b, history

    return train


def message(check, *args, **kwargs):
    with pytest.raises(AssertionError) as failure:
        check(*args, **kwargs)
    return " ".join(str(failure.value).split())


def test_a_correct_trainer_passes_every_check(digits):
    train = make_train()
    check_first_sgd_step(train, digits.X_train[:100], digits.y_train[:100], 10, lr=0.5, reg=0.01)
    check_sgd_loop(train, globals(), "loss_and_grad", digits.X_train[:300], digits.y_train[:300], 10,
                   lr=0.5, epochs=2, batch_size=64, reg=0.01)
    check_deterministic(train, digits.X_train, digits.y_train, 10, lr=0.5, epochs=2, batch_size=64, reg=1e-4)
    check_training(train, digits.X_train, digits.y_train, 10, X_test=digits.X_test, y_test=digits.y_test,
                   min_accuracy=0.9, max_final_loss=0.35, case="digits", lr=0.5, epochs=30, batch_size=64,
                   reg=1e-4)


@pytest.mark.parametrize(("mistake", "expected"), [
    ({"sign": -1.0}, "[sgd-ascends]"),
    ({"shift": 1}, "[labels-off-by-one]"),
])
def test_the_first_step_names_the_update_mistakes(digits, mistake, expected):
    text = message(check_first_sgd_step, make_train(**mistake), digits.X_train[:100], digits.y_train[:100], 10,
                   lr=0.5, reg=0.01)
    assert expected in text


@pytest.mark.parametrize(("mistake", "expected"), [
    ({"order_once": True}, "[order-drawn-once]"),
    ({"drop_last": True}, "[last-batch-dropped]"),
    ({"pass_reg": False}, "[reg-not-passed]"),
])
def test_the_loop_check_names_the_loop_mistakes(digits, mistake, expected):
    text = message(check_sgd_loop, make_train(**mistake), globals(), "loss_and_grad", digits.X_train[:300],
                   digits.y_train[:300], 10, lr=0.5, epochs=2, batch_size=64, reg=0.01)
    assert expected in text


def test_the_loop_check_restores_the_watched_function(digits):
    before = globals()["loss_and_grad"]
    message(check_sgd_loop, make_train(drop_last=True), globals(), "loss_and_grad", digits.X_train[:300],
            digits.y_train[:300], 10, lr=0.5, epochs=1, batch_size=64, reg=0.0)
    assert globals()["loss_and_grad"] is before


@pytest.mark.parametrize(("mistake", "expected"), [
    ({"seed_fixed": True}, "[seed-ignored]"),
    ({"shuffle": False}, "[no-shuffle]"),
])
def test_determinism_tells_a_fixed_seed_from_no_shuffling(digits, mistake, expected):
    text = message(check_deterministic, make_train(**mistake), digits.X_train, digits.y_train, 10,
                   lr=0.5, epochs=2, batch_size=64, reg=1e-4)
    assert expected in text


def test_training_on_sorted_data_names_the_missing_shuffle(digits):
    X_sorted, y_sorted = digits.sorted_by_label()
    text = message(check_training, make_train(shuffle=False), X_sorted, y_sorted, 10, X_test=digits.X_test,
                   y_test=digits.y_test, min_accuracy=0.7, max_final_loss=None, case="sorted", lr=0.5, epochs=5,
                   batch_size=64, reg=1e-4)
    assert "[no-shuffle]" in text


def test_lines_are_counted_through_numpy_helpers():
    W, b, X = np.ones((4, 3)), np.zeros(3), np.ones((500, 4))
    vectorised = count_lines_run(lambda W, b, X: np.argmax(X @ W + b, axis=1), W, b, X)[1]
    loop = count_lines_run(lambda W, b, X: np.array([np.argmax(r @ W + b) for r in X]), W, b, X)[1]
    along = count_lines_run(lambda W, b, X: np.apply_along_axis(np.argmax, 1, X @ W + b), W, b, X)[1]
    assert vectorised < 50 < 500 <= min(loop, along)
    check_vectorised(lambda W, b, X: np.argmax(X @ W + b, axis=1), W, b, X, name="predict", max_lines=200,
                     arg_names=("W", "b", "X"))
    assert "[python-loop-over-rows]" in message(
        check_vectorised, lambda W, b, X: np.apply_along_axis(np.argmax, 1, X @ W + b), W, b, X,
        name="predict", max_lines=200, arg_names=("W", "b", "X"))


def test_check_raises_wants_the_argument_named_as_a_word():
    def unpacks(X, y, num_classes):
        n, d = X.shape  # "expected 2, got 1" contains an x, but does not name X

    def names_it(X, y, num_classes):
        if np.ndim(X) != 2:
            raise ValueError(f"X must be 2-D, got {np.ndim(X)}-D")

    common = dict(mentions="X", case="a 1-D X", arg_names=("X", "y", "num_classes"), name="train")
    assert "does not mention `X`" in message(check_raises, unpacks, np.ones(3), np.zeros(3, int), 2, **common)
    check_raises(names_it, np.ones(3), np.zeros(3, int), 2, **common)
    assert "did not raise" in message(check_raises, lambda X, y, num_classes: None, np.ones(3),
                                      np.zeros(3, int), 2, **common)
