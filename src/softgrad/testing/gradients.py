"""Checks of gradients and Jacobians (chapters 2 to 4): central differences of a trusted loss."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from softgrad._failures import fail
from softgrad.gradcheck import check_gradient, check_jacobian, numerical_gradient, numerical_jacobian
from softgrad.i18n import _
from softgrad.mistakes import GRADIENT_TRANSPOSED, Mistake, suspects
from softgrad.testing.core import (
    _describe_call,
    _judge,
    _with_warnings,
    call_student,
    expected_dtype,
    fail_on_result_problem,
)
from softgrad.testing.diagnosis import Evidence, batch_positions, explainer, same_result

# Numerical gradients for a message are worth computing for inputs up to this size (hidden tests use
# small ones; a large input's message names no mistake rather than cost seconds).
_EXPLAINED_SIZE = 4096


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Gradients that agree (relative to their largest entry) to what a gradient check can tell apart."""
    return same_result(a, b, 1e-4)


def _through(args: Sequence[object], index: int) -> float:
    """How much a gradient with respect to ``args[index]`` can amplify the rounding of softmax-like values.

    A gradient through a linear layer multiplies the gradient of the logits by the layer's other
    input (dh = G W^T, dW = X^T G): its rounding error is that of G times a sum of absolute entries
    of the other factor. This takes the largest such sum (along any axis) over the other floating
    arguments, and at least 1.
    """
    sums = [float(np.max(np.sum(np.abs(a), axis=axis)))
            for i, a in enumerate(args) if i != index and isinstance(a, np.ndarray) and a.size
            and np.issubdtype(a.dtype, np.floating) for axis in range(a.ndim)]
    return max([1.0, *sums])


def _numerical(loss: Callable[..., float], args: Sequence[object], kwargs: Mapping[str, object],
               wrt: int) -> Callable[[], np.ndarray | None]:
    """The trusted loss's central-difference gradient with respect to ``args[wrt]``, on demand."""

    def gradient() -> np.ndarray | None:
        x = np.asarray(args[wrt], dtype=np.float64)
        if x.size > _EXPLAINED_SIZE:
            return None

        def trusted(value: np.ndarray) -> float:
            replaced = list(args)
            replaced[wrt] = value
            return loss(*replaced, **kwargs)

        return numerical_gradient(trusted, x)

    return gradient


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
    evidence = Evidence(known, tuple(args), dict(kwargs), student=function,
                        rows=batch_positions(args, arg_names, kwargs))
    fail_on_result_problem(outcome.value, shape=x.shape, dtype=expected_dtype(x), what=what, evidence=evidence,
                           correct=_numerical(loss, args, kwargs, wrt), agree=_close, transposed=GRADIENT_TRANSPOSED)

    def trusted_loss(value: np.ndarray) -> float:
        replaced = list(args)
        replaced[wrt] = value
        return loss(*replaced, **kwargs)

    try:
        check_gradient(trusted_loss, outcome.value, x, name=what, batch_size=batch_size, explain=explainer(evidence))
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
    evidence = Evidence(known, (z,), {}, student=function, rows=batch_positions((z,), ("z",), {}))

    def right() -> np.ndarray | None:
        rows = np.asarray(z, dtype=np.float64).reshape(-1, z.shape[-1])
        if rows.size > _EXPLAINED_SIZE:
            return None
        return np.stack([numerical_jacobian(trusted, row) for row in rows]).reshape(*z.shape, z.shape[-1])

    fail_on_result_problem(outcome.value, shape=(*z.shape, z.shape[-1]), dtype=expected_dtype(z), what=what,
                           evidence=evidence, correct=right, agree=_close)
    try:
        check_jacobian(trusted, outcome.value, z, name=what, explain=explainer(evidence))
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
        kind = (_("a {type} of length {length}").format(type=type(value).__name__, length=len(value))
                if isinstance(value, tuple | list) else _("a {type}").format(type=type(value).__name__))
        fail(_("{what} returned {kind}; it should return the tuple {names}.").format(
            what=what, kind=kind, names=expected_names))
    def part(index: int) -> Evidence:
        return Evidence(known, tuple(args), dict(kwargs), student=function, part=index, outcome=value,
                        rows=batch_positions(args, arg_names, kwargs))

    _judge(value[0], np.asarray(loss(*args, **kwargs), dtype=np.float64),
           what=_("The loss of {what}").format(what=what), dtype=expected_dtype(args[wrt[0]]), strict_dtype=False,
           evidence=part(0), warnings_seen=outcome.warnings)
    for k, (index, output) in enumerate(zip(wrt, output_names, strict=True)):
        x = np.asarray(args[index])
        gradient = value[k + 1]
        evidence = part(k + 1)
        # TRANSLATORS: one part of a result, "dW from softmax_regression_loss_and_grad(W, b, X, y) with ..."
        part_what = _("{output} from {what}").format(output=output, what=what)
        if reference is not None:
            expected = np.asarray(reference(*args, **kwargs)[k + 1], dtype=np.float64)
            _judge(gradient, expected, what=part_what, dtype=expected_dtype(x), strict_dtype=True,
                   evidence=evidence, warnings_seen=outcome.warnings, factor=_through(args, index))
            continue
        fail_on_result_problem(gradient, shape=x.shape, dtype=expected_dtype(x), what=part_what, evidence=evidence,
                               correct=_numerical(loss, args, kwargs, index), agree=_close,
                               transposed=GRADIENT_TRANSPOSED, part=True)

        def trusted_loss(v: np.ndarray, index: int = index) -> float:
            replaced = list(args)
            replaced[index] = v
            return loss(*replaced, **kwargs)

        try:
            check_gradient(trusted_loss, gradient, x, name=part_what, batch_size=batch_size,
                           explain=explainer(evidence))
        except AssertionError as failure:
            fail(_with_warnings(failure, outcome.warnings))
