"""The course's data set: handwritten digits, split the same way everywhere.

The digits are the 1,797 images of 8 x 8 pixels that ship inside scikit-learn (a copy of
the test set of the UCI "Optical Recognition of Handwritten Digits" data), so nothing is
downloaded at run time: the book builds offline, and a grading machine needs no network.
The file is read straight from scikit-learn's installed package, without importing
scikit-learn: that import takes about 2 s of CPU, paid by every grading process of problem
set 4 (its kernel and its re-run) for a 60 ms read.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DigitsSplit", "load_digits"]


@dataclass(frozen=True)
class DigitsSplit:
    """A train/test split: features scaled to [0, 1], integer labels 0..9."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return 10

    def sorted_by_label(self) -> tuple[np.ndarray, np.ndarray]:
        """The training set reordered so that all 0s come first, then all 1s, ... (a stress test
        for training code that forgets to shuffle)."""
        order = np.argsort(self.y_train, kind="stable")
        return self.X_train[order], self.y_train[order]


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """Load the digits and split them, stratified by class, with a fixed seed.

    Pixel values (0 to 16) are divided by 16. With the defaults the training set has 1,347
    images and the test set 450.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    pixels, y = _digits()
    X = pixels / 16.0
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):  # the same fraction of every class in the test set
        members = np.flatnonzero(y == label)
        chosen = rng.choice(members, size=round(test_fraction * len(members)), replace=False)
        test[chosen] = True
    return DigitsSplit(X[~test], y[~test], X[test], y[test])


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 images (pixels 0 to 16, float64) and their labels (int64), as scikit-learn's
    ``load_digits`` gives them: read from its data file, or through scikit-learn if the file has moved."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the digits data ships with scikit-learn: install it with `pip install scikit-learn` "
            "(it is part of the course's environment, and preinstalled on Colab)"
        )
    data_file = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if data_file.is_file():
        table = np.loadtxt(data_file, delimiter=",", dtype=np.float64)  # 64 pixels, then the label
        return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sklearn_digits  # pragma: no cover - a future layout

    digits = sklearn_digits()  # pragma: no cover
    return digits.data.astype(np.float64), digits.target.astype(np.int64)  # pragma: no cover
