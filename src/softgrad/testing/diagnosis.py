"""Naming a wrong result: which known mistakes reproduce it.

When a student's result is wrong, the checks run the wrong implementations of the graded
function (:mod:`softgrad.mistakes`) on the same input and name the mistakes whose result
agrees with the student's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from softgrad.mistakes import Mistake


def _copy_arg(value: object) -> object:
    return value.copy() if isinstance(value, np.ndarray) else value


def _run_quietly(implementation: Callable[..., object], args: Sequence[object], kwargs: Mapping[str, object]):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return implementation(*[_copy_arg(a) for a in args], **kwargs)


def _matches(candidate: object, actual: np.ndarray, tolerance: float) -> bool:
    try:
        expected = np.asarray(candidate, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if expected.shape != actual.shape:
        return False
    same_nonfinite = np.array_equal(~np.isfinite(expected), ~np.isfinite(actual))
    if not same_nonfinite:
        return False
    finite = np.isfinite(expected)
    if not np.array_equal(expected[~finite], actual[~finite], equal_nan=True):
        return False
    scale = np.maximum(1.0, np.abs(expected[finite]))
    return bool(np.all(np.abs(expected[finite] - actual[finite]) <= tolerance * scale))


def _recognise_error(
    error: Exception,
    known: Mapping[Mistake, Sequence[Callable[..., object]]],
    args: Sequence[object],
    kwargs: Mapping[str, object],
) -> list[Mistake]:
    """The mistakes whose wrong implementations raise the same error (type and text) on this input."""
    found = []
    for mistake, implementations in known.items():
        for implementation in implementations:
            try:
                _run_quietly(implementation, args, kwargs)
            except Exception as theirs:
                if type(theirs) is type(error) and str(theirs) == str(error):
                    found.append(mistake)
                    break
    return found


def _recognise(
    actual: np.ndarray,
    correct: np.ndarray,
    known: Mapping[Mistake, Sequence[Callable[..., object]]],
    args: Sequence[object],
    kwargs: Mapping[str, object],
    tolerance: float,
) -> list[Mistake]:
    """The mistakes whose wrong implementations reproduce ``actual`` on this input.

    A wrong implementation that gives the ``correct`` result on this input cannot tell
    anything apart here, so it is never named.
    """
    found = []
    for mistake, implementations in known.items():
        for implementation in implementations:
            try:
                candidate = _run_quietly(implementation, args, kwargs)
            except Exception:  # this wrong implementation cannot even run on this input
                continue
            if _matches(candidate, actual, tolerance) and not _matches(candidate, correct, tolerance):
                found.append(mistake)
                break
    return found


def _component(known: Mapping[Mistake, Sequence[Callable[..., object]]],
               index: int) -> dict[Mistake, list[Callable[..., object]]]:
    """Wrong implementations that return tuples, reduced to one component of the tuple."""
    return {
        mistake: [lambda *a, impl=impl, **k: impl(*a, **k)[index] for impl in implementations]
        for mistake, implementations in known.items()
    }
