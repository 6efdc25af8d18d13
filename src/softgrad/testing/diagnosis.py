"""Naming a wrong result: which known mistakes the student's code makes, and only those.

When a student's result is wrong, the checks run the wrong implementations of the graded
function (:mod:`softgrad.mistakes`) and name a mistake only when all of these hold:

1. **It reproduces the student's result on the failing input**, to the accuracy a right
   answer must reach there (or raises the same error);
2. **it is wrong there**: its result differs from the right one on that input (a mistake that
   happens to give the right answer on an input says nothing about it);
3. **it agrees with the student's function on other inputs too** (:func:`probe_inputs`: the
   same input scaled down, negated, and tripled in float64): two different mistakes often give
   the same nan on one input (no max shift and a shift by the minimum both overflow on
   ``[1000, 0]``), but not on these; the student's function is called again on each probe,
   and a probe on which it fails says nothing;
4. **it is the simplest explanation**: a wrong implementation that makes two mistakes at once
   (a clip *and* no shift) is not named when one that makes only one of them also reproduces
   everything (:func:`mistake_ids`).

When the student's result has the wrong shape or dtype, the comparison with the right answer is
done on values of the right shape only (a dtype is compared after conversion); on a result of
another type, nothing is named.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from softgrad.mistakes import CATALOGUE, Mistake

__all__ = ["BATCH_NAMES", "Evidence", "batch_positions", "copy_arg", "explainer", "mistake_ids", "name_errors",
           "name_mistakes", "probe_inputs", "run_quietly", "same_result"]

Implementations = Mapping[Mistake, Sequence[Callable[..., object]]]


def copy_arg(value: object) -> object:
    return value.copy() if isinstance(value, np.ndarray) else value


def run_quietly(implementation: Callable[..., object], args: Sequence[object], kwargs: Mapping[str, object]):
    """``implementation(*args, **kwargs)`` on copies of the arrays, with NumPy's warnings silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return implementation(*[copy_arg(a) for a in args], **kwargs)


def mistake_ids(implementation: Callable[..., object], mistake: Mistake) -> frozenset[str]:
    """Every mistake a wrong implementation makes: the one it is registered for, and any other it
    makes at the same time (``softgrad.mistakes.catalogue.reproduces(..., also=...)``)."""
    return frozenset({mistake.id, *getattr(implementation, "__softgrad_also__", ())})


def _floats(value: object) -> np.ndarray | None:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array


def same_result(a: np.ndarray | None, b: np.ndarray | None, relative: float) -> bool:
    """Whether two results are the same: the same shape, nan and infinities in the same places,
    and finite entries within ``relative`` times the larger of 1 and the largest magnitude."""
    if a is None or b is None or a.shape != b.shape:
        return False
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(finite_a, finite_b) or not np.array_equal(a[~finite_a], b[~finite_b], equal_nan=True):
        return False
    if not finite_a.any():
        return True
    scale = max(1.0, float(np.max(np.abs(b[finite_b]))), float(np.max(np.abs(a[finite_a]))))
    return bool(np.max(np.abs(a[finite_a] - b[finite_b])) <= relative * scale)


def _is_floats(value: object) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)


def _first_data(args: Sequence[object]) -> int | None:
    """The position of the data among the arguments: the first floating-point array (or list of them:
    chunks of logits), else the first integer array (integer logits; labels come after the data)."""
    for accept in (_is_floats, lambda v: isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.integer)):
        for i, value in enumerate(args):
            if accept(value) or (isinstance(value, list | tuple) and value and all(accept(v) for v in value)):
                return i
    return None


def probe_inputs(args: Sequence[object], kwargs: Mapping[str, object],
                 rows: Sequence[int] = ()) -> list[tuple[tuple, dict]]:
    """Other inputs on which a wrong implementation must agree with the student's function.

    The first floating-point argument (the logits, or a list of chunks of them) is scaled down
    100 times (where every stable and unstable formula agrees), negated (the largest entries become
    the smallest: a shift by the minimum now overflows, a missing shift now does not), and
    tripled in float64 (a clip at a bound that float32 could not reach now changes the answer);
    the logits' rows are moved so that their maxima are +1000 and -1000; float64 arrays are given in
    float32; chunks of a stream rise by 800 from one to the next; integer labels are moved to the
    next class; and, with ``rows``, the first rows of the batch are each given alone (a batch of
    one row: its maximum is the batch's).
    """
    index = _first_data(args)
    if index is None:
        return []

    def floats(x: np.ndarray) -> np.ndarray:  # integer data is promoted, as the graded functions do
        return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)

    def transformed(change: Callable[[np.ndarray], np.ndarray]) -> tuple[tuple, dict]:
        value = args[index]
        new = (type(value)(change(floats(v)) for v in value) if isinstance(value, list | tuple)
               else change(floats(value)))
        return (*args[:index], new, *args[index + 1:]), dict(kwargs)

    probes = [
        transformed(lambda x: x * x.dtype.type(0.01)),
        transformed(lambda x: -x),
        transformed(lambda x: x.astype(np.float64) * 3.0),
    ]
    if any(isinstance(v, np.ndarray) and v.dtype == np.float64 for v in args):
        # every float64 array in float32, where exp overflows above 88.7 instead of 709.8, as it is and
        # with the data a quarter as large: a clip at a bound between the two stops looking like a
        # missing shift
        single = tuple(v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64 else v for v in args)
        quarter = list(single)
        if isinstance(quarter[index], np.ndarray) and quarter[index].dtype == np.float32:
            quarter[index] = quarter[index] * np.float32(0.25)
        probes += [(single, dict(kwargs)), (tuple(quarter), dict(kwargs))]
    if isinstance(args[index], list | tuple) and len(args[index]) > 1:
        # chunks whose values rise from one to the next (by 800 each): the running maximum must follow
        rising = type(args[index])(floats(c) + floats(c).dtype.type(800.0 * k) for k, c in enumerate(args[index]))
        probes.append(((*args[:index], rising, *args[index + 1:]), dict(kwargs)))
    value = args[index]
    first = value[0] if isinstance(value, list | tuple) else value
    arrays = value if isinstance(value, list | tuple) else [value]
    if first.ndim >= 2 and all(np.all(np.isfinite(v)) for v in arrays):
        # Every row moved so that its largest entry is +1000, then -1000: nothing changes for a function of
        # the differences within each row (softmax, a loss), but a missing shift overflows (underflows),
        # while a shift by the batch's maximum is now each row's.
        for level in (1000.0, -1000.0):
            probes.append(transformed(
                lambda x, level=level: x - np.max(x, axis=-1, keepdims=True) + x.dtype.type(level)))
    labels = [i for i, v in enumerate(args) if i != index and isinstance(v, np.ndarray) and v.ndim == 1
              and np.issubdtype(v.dtype, np.integer)]
    classes = np.shape(first)[-1] if first.ndim >= 1 else 0
    if labels and classes > 1:  # the same inputs with every label moved to the next class
        moved = list(args)
        for i in labels:
            moved[i] = (args[i] + 1) % classes
        probes.append((tuple(moved), dict(kwargs)))
    if rows:
        count = min(np.shape(args[rows[0]])[0], 3)
        for i in range(count if count > 1 else 0):
            single = list(args)
            for position in rows:
                single[position] = args[position][i:i + 1]
            probes.append((tuple(single), dict(kwargs)))
    return probes


# Argument names whose first axis is the batch (one row per example), in the course's graded functions.
BATCH_NAMES = frozenset({"z", "g", "logits", "target", "X", "y", "h"})


def batch_positions(args: Sequence[object], arg_names: Sequence[str], kwargs: Mapping[str, object]) -> tuple[int, ...]:
    """The positions of the arguments that hold one row per example (logits and their targets, X and y,
    h and its targets), when they agree on the number of rows and the function works along the last
    axis; empty otherwise (then no probe of single rows is made)."""
    if kwargs.get("axis", -1) not in (-1, None):
        return ()
    found = tuple(i for i, (name, value) in enumerate(zip(arg_names, args, strict=False))
                  if name in BATCH_NAMES and isinstance(value, np.ndarray) and value.ndim >= 1)
    if not found or len({np.shape(args[i])[0] for i in found}) != 1:
        return ()
    data = [i for i in found if np.asarray(args[i]).ndim >= 2]
    return found if data else ()


def _relative(args: Sequence[object]) -> float:
    """How closely two results of the same formula agree, given the precision of the inputs."""
    index = _first_data(args)
    value = None if index is None else args[index]
    dtype = (value[0] if isinstance(value, list | tuple) else value).dtype if value is not None else np.float64
    return {np.dtype(np.float16): 3e-2, np.dtype(np.float32): 2e-3}.get(np.dtype(dtype), 1e-7)


@dataclass
class Evidence:
    """What the checks know when a result is wrong: the student's function, the failing input, and
    the wrong implementations of the same function.

    ``part`` is the position of the compared part in a tuple result (a loss and its gradients), None
    for a single result; ``student`` is called on :func:`probe_inputs` (None when the student's
    function cannot be called again); ``outcome`` is the student's whole result on the failing input,
    when the check has it: a wrong implementation must then reproduce every part of it, not only
    the compared one (a wrong loss with right gradients is not a mistake whose gradients are wrong
    too). ``prepare`` turns stored arguments into what a call receives (a fresh one-shot generator
    for each call of a function that reads a stream). ``rows``: the positions of the arguments whose
    first axis is the batch (see :func:`batch_positions`), for probes of single rows.
    """

    known: Implementations
    args: tuple
    kwargs: dict = field(default_factory=dict)
    student: Callable[..., object] | None = None
    part: int | None = None
    outcome: object = None
    prepare: Callable[[tuple], tuple] = lambda args: args
    rows: tuple[int, ...] = ()

    def parts(self, function: Callable[..., object], args: tuple | None = None,
              kwargs: dict | None = None) -> list[np.ndarray] | None:
        """Every part of ``function``'s result on ``args`` (the failing input by default) as float64
        arrays, or None if it raises or is not numeric."""
        args = self.args if args is None else args
        try:
            value = run_quietly(function, self.prepare(tuple(args)), self.kwargs if kwargs is None else kwargs)
        except Exception:  # noqa: BLE001 (a wrong implementation, or the student's code, may raise anything)
            return None
        return _as_parts(value, self.part is not None)

    def selected(self, parts: list[np.ndarray] | None) -> np.ndarray | None:
        if parts is None:
            return None
        index = 0 if self.part is None else self.part
        return parts[index] if index < len(parts) else None


def _as_parts(value: object, is_tuple: bool) -> list[np.ndarray] | None:
    items = list(value) if is_tuple and isinstance(value, tuple | list) else [value]
    arrays = [_floats(item) for item in items]
    return None if any(a is None for a in arrays) else arrays


def _same_parts(mine: list[np.ndarray] | None, theirs: list[np.ndarray] | None, relative: float) -> bool:
    return (mine is not None and theirs is not None and len(mine) == len(theirs)
            and all(same_result(a, b, relative) for a, b in zip(mine, theirs, strict=True)))


def name_mistakes(
    evidence: Evidence,
    actual: np.ndarray,
    correct: np.ndarray | None,
    agree: Callable[[np.ndarray, np.ndarray], bool],
    project: Callable[[np.ndarray], np.ndarray] = lambda value: value,
) -> list[Mistake]:
    """The known mistakes that explain the student's ``actual`` result (see the module docstring).

    ``correct`` is the right result on the failing input (None when the student's result has
    another shape, so that no candidate of the student's shape can be right); ``agree`` says
    whether two results on the failing input are the same to the accuracy the check demands;
    ``project`` maps a candidate's result to what ``actual`` holds (directional derivatives,
    for a check that compares projections).
    """
    relative = _relative(evidence.args)
    whole = None if evidence.outcome is None else _as_parts(evidence.outcome, evidence.part is not None)
    matched: list[tuple[Mistake, Callable[..., object]]] = []
    for mistake, implementations in evidence.known.items():
        for implementation in implementations:
            parts = evidence.parts(implementation)
            value = evidence.selected(parts)
            if value is None:
                continue
            try:
                value = project(value)
            except (ValueError, TypeError):
                continue
            if not agree(actual, value) or (correct is not None and agree(correct, value)):
                continue
            if whole is not None and evidence.part is not None and not all(
                    same_result(a, b, relative) for i, (a, b) in enumerate(zip(whole, parts, strict=False))
                    if i != evidence.part):
                continue  # it reproduces the compared part, but not the rest of the student's result
            matched.append((mistake, implementation))
    if matched and evidence.student is not None:
        for probe_args, probe_kwargs in probe_inputs(evidence.args, evidence.kwargs, evidence.rows):
            mine = evidence.parts(evidence.student, probe_args, probe_kwargs)
            if mine is None:
                continue  # the student's function cannot run on this probe: it tells nothing
            loose = max(relative, _relative(probe_args))
            matched = [(m, impl) for m, impl in matched
                       if _same_parts(mine, evidence.parts(impl, probe_args, probe_kwargs), loose)]
            if not matched:
                break
    explanations = {mistake_ids(impl, mistake) for mistake, impl in matched}
    simplest = [ids for ids in explanations if not any(other < ids for other in explanations)]
    named = set().union(*simplest) if simplest else set()
    return [entry for entry in CATALOGUE.values() if entry.id in named]


def name_errors(error: Exception, known: Implementations, args: Sequence[object],
                kwargs: Mapping[str, object]) -> list[Mistake]:
    """The mistakes whose wrong implementations raise the same error (type and text) on this input."""
    found = []
    for mistake, implementations in known.items():
        for implementation in implementations:
            try:
                run_quietly(implementation, args, kwargs)
            except Exception as theirs:  # noqa: BLE001
                if type(theirs) is type(error) and str(theirs) == str(error):
                    found.append(mistake)
                    break
    return found


def explainer(evidence: Evidence) -> Callable[..., list[str]]:
    """The ``explain`` hook of :func:`softgrad.gradcheck.check_gradient`: the explanations of the known
    mistakes that reproduce a wrong gradient (see :func:`name_mistakes`)."""

    def explain(actual: np.ndarray, expected: np.ndarray, project: Callable[[np.ndarray], np.ndarray],
                agree: Callable[[np.ndarray, np.ndarray], bool]) -> list[str]:
        return [m.describe() for m in name_mistakes(evidence, actual, expected, agree, project)]

    return explain
