"""softgrad.data: the digits as scikit-learn gives them, split the same way everywhere, read without importing
scikit-learn (every grading process of problem set 4 loads them)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from softgrad.data import load_digits


def test_the_digits_are_scikit_learns_scaled_to_one():
    """The pixels and labels read from the data file are exactly those of sklearn.datasets.load_digits."""
    from sklearn.datasets import load_digits as sklearn_digits

    expected = sklearn_digits()
    split = load_digits()
    X = np.concatenate([split.X_train, split.X_test])
    y = np.concatenate([split.y_train, split.y_test])
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.dtype == np.int64
    order = np.lexsort(np.column_stack([X, y]).T)  # the split reorders the images: compare them as sets
    reference_order = np.lexsort(np.column_stack([expected.data / 16.0, expected.target]).T)
    np.testing.assert_array_equal(X[order], expected.data[reference_order] / 16.0)
    np.testing.assert_array_equal(y[order], expected.target[reference_order])
    assert X.min() == 0.0 and X.max() == 1.0


def test_the_split_is_stratified_and_fixed():
    """1,347 training and 450 test images, a quarter of every class in the test set, the same every call."""
    split = load_digits()
    assert len(split.y_train) == 1347 and len(split.y_test) == 450
    for label in range(10):
        total = np.sum(split.y_train == label) + np.sum(split.y_test == label)
        assert np.sum(split.y_test == label) == round(0.25 * total), f"class {label} is not split 3:1"
    again = load_digits()
    np.testing.assert_array_equal(split.X_train, again.X_train)
    assert not np.array_equal(load_digits(seed=1).y_test, split.y_test), "another seed gives another split"


def test_loading_the_digits_does_not_import_scikit_learn():
    """The import costs about 2 s of CPU in every grading process; the data is one 60 ms read."""
    code = "import sys; from softgrad.data import load_digits; load_digits(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "load_digits imported scikit-learn"


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_a_test_fraction_outside_zero_to_one_is_refused(fraction):
    """The fraction of the test set must lie strictly between 0 and 1."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        load_digits(test_fraction=fraction)
