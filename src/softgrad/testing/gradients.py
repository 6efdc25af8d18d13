"""Checks of gradients and Jacobians (chapters 2 to 4): central differences of a trusted loss."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from softgrad._failures import fail
from softgrad.gradcheck import check_gradient, check_jacobian
from softgrad.mistakes import Mistake, suspects
from softgrad.testing.core import (
    _candidates,
    _describe_call,
    _judge,
    _with_warnings,
    call_student,
    expected_dtype,
    forward_tolerance,
    result_problem,
)
from softgrad.testing.diagnosis import _component, _recognise


def check_gradient_function(
    function: Callable[..., object],
    loss: Callable[..., float],
    *args: object,
    name: str,
    wrt: int = 0,
    case: str = "",
    arg_names: Sequence[str] = ("z",),
    mistakes: Mapping[Mistake, Sequence[Callable[..., object]]] | None = None,
    batch_size: int | None = None,
    **kwargs: object,
) -> None:
    """Check that ``function(*args, **kwargs)`` is the gradient of a trusted scalar ``loss``.

    ``loss(*args, **kwargs)`` is computed by the course (never by the student's code), in
    float64; the student's result must have the shape and dtype of ``args[wrt]`` and agree
    with central differences of ``loss`` with respect to ``args[wrt]``
    (:func:`softgrad.gradcheck.check_gradient`). When it does not, the known wrong
    implementations of ``name`` (from :mod:`softgrad.mistakes`, or ``mistakes``) are run on
    the same input to name the mistake.
    """
    __tracebackhide__ = True
    known = suspects(name) if mistakes is None else mistakes
    what = _describe_call(name, args, kwargs, arg_names, case)
    outcome = call_student(function, *args, arg_names=arg_names, name=name, mistakes=known, **kwargs)
    x = np.asarray(args[wrt])
    problem = result_problem(outcome.value, shape=x.shape, dtype=expected_dtype(x))
    if problem:
        fail(f"{what} {problem}")

    def trusted_loss(value: np.ndarray) -> float:
        replaced = list(args)
        replaced[wrt] = value
        return loss(*replaced, **kwargs)

    try:
        check_gradient(trusted_loss, outcome.value, x, name=what, batch_size=batch_size,
                       mistakes=_candidates(known, args, kwargs))
    except AssertionError as failure:
        fail(_with_warnings(failure, outcome.warnings))


def check_jacobian_function(
    function: Callable[[np.ndarray], object],
    trusted: Callable[[np.ndarray], np.ndarray],
    z: np.ndarray,
    *,
    name: str,
    case: str = "",
    mistakes: Mapping[Mistake, Sequence[Callable[..., object]]] | None = None,
) -> None:
    """Check ``function(z)``, a Jacobian of shape ``(..., n, n)``, against central differences.

    ``trusted`` maps one row (shape ``(n,)``) to one row and is differentiated numerically
    in float64 (:func:`softgrad.gradcheck.check_jacobian`); type, shape and dtype are checked
    first, and known wrong implementations of ``name`` are named when one matches.
    """
    __tracebackhide__ = True
    known = suspects(name) if mistakes is None else mistakes
    what = _describe_call(name, (z,), {}, ("z",), case)
    outcome = call_student(function, z, name=name, mistakes=known)
    z = np.asarray(z)
    problem = result_problem(outcome.value, shape=(*z.shape, z.shape[-1]), dtype=expected_dtype(z))
    if problem:
        fail(f"{what} {problem}")
    try:
        check_jacobian(trusted, outcome.value, z, name=what, mistakes=_candidates(known, (z,), {}))
    except AssertionError as failure:
        fail(_with_warnings(failure, outcome.warnings))


def check_loss_and_gradients(
    function: Callable[..., object],
    loss: Callable[..., float],
    *args: object,
    name: str,
    wrt: Sequence[int],
    output_names: Sequence[str],
    arg_names: Sequence[str],
    case: str = "",
    mistakes: Mapping[Mistake, Sequence[Callable[..., object]]] | None = None,
    batch_size: int | None = None,
    reference: Callable[..., Sequence[object]] | None = None,
    **kwargs: object,
) -> None:
    """Check a function that returns ``(loss, grad_1, grad_2, ...)``, as training code does.

    The loss must agree with the trusted ``loss(*args, **kwargs)`` (float64, any float
    type accepted); gradient ``k`` (named ``output_names[k]``, for example ``"dW"``) must
    have the shape and dtype of ``args[wrt[k]]`` and agree with central differences of
    the trusted loss with respect to that argument. Every gradient is checked: a right
    ``dW`` does not excuse a wrong ``db``. Known wrong implementations of ``name`` (which
    return tuples too) are run on the same input to name a mistake.

    With ``reference`` (a trusted function returning the same tuple), gradients are
    compared with its results under :func:`forward_tolerance` instead: the check for
    float32 inputs, whose gradients cannot meet a float64 numerical tolerance.
    """
    __tracebackhide__ = True
    known = suspects(name) if mistakes is None else mistakes
    what = _describe_call(name, args, kwargs, arg_names, case)
    outcome = call_student(function, *args, arg_names=arg_names, name=name, mistakes=known, **kwargs)
    value = outcome.value
    expected_names = "(loss, " + ", ".join(output_names) + ")"
    if not isinstance(value, tuple | list) or len(value) != 1 + len(wrt):
        kind = f"a {type(value).__name__}" + (f" of length {len(value)}" if isinstance(value, tuple | list) else "")
        fail(f"{what} returned {kind}; it should return the tuple {expected_names}.")
    _judge(value[0], np.asarray(loss(*args, **kwargs), dtype=np.float64), what=f"The loss of {what}",
           dtype=expected_dtype(args[wrt[0]]), strict_dtype=False, args=args, kwargs=kwargs,
           known=_component(known, 0), warnings_seen=outcome.warnings)
    for k, (index, output) in enumerate(zip(wrt, output_names, strict=True)):
        x = np.asarray(args[index])
        gradient = value[k + 1]
        problem = result_problem(gradient, shape=x.shape, dtype=expected_dtype(x))
        if problem:
            lines = [f"{output} from {what} {problem.replace('returned', 'is', 1)}"]
            if type(gradient) is np.ndarray and np.issubdtype(gradient.dtype, np.number):
                raw = np.asarray(gradient, dtype=np.float64)
                unknown = np.full(x.shape, np.nan)  # nothing of another shape can be "right"
                tolerance = float(forward_tolerance(expected_dtype(x), max(raw.shape, default=1), 1.0))
                lines += [m.describe() for m in _recognise(raw, unknown, _component(known, k + 1),
                                                           args, kwargs, max(tolerance, 1e-9))]
            fail("\n".join(lines))

        if reference is not None:
            expected = np.asarray(reference(*args, **kwargs)[k + 1], dtype=np.float64)
            _judge(gradient, expected, what=f"{output} from {what}", dtype=expected_dtype(x),
                   strict_dtype=True, args=args, kwargs=kwargs, known=_component(known, k + 1),
                   warnings_seen=outcome.warnings)
            continue

        def trusted_loss(v: np.ndarray, index: int = index) -> float:
            replaced = list(args)
            replaced[index] = v
            return loss(*replaced, **kwargs)

        try:
            check_gradient(trusted_loss, gradient, x, name=f"{output} from {what}", batch_size=batch_size,
                           mistakes=_candidates(_component(known, k + 1), args, kwargs))
        except AssertionError as failure:
            fail(_with_warnings(failure, outcome.warnings))
