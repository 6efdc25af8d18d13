"""Checks for the test cells of the assignments: call a student's function, judge its result.

The helpers here are what the visible and hidden tests call. They

* call the student's function on copies of the inputs, capture NumPy's warnings (so that
  nothing reaches stderr, where nbgrader would score the cell 0 even when every check
  passes; a warning is reported as evidence only if the result is wrong), and check that
  the inputs were not modified;
* check the result's type, shape and dtype before trusting its values, and convert it to a
  plain float64 array (a student's object cannot lie about its comparisons);
* compare with a trusted float64 reference under a tolerance derived from the dtype;
* when the result is wrong, run the known wrong implementations of
  :mod:`softgrad.mistakes` on the same input and name the mistake that reproduces it.

Every failure is an :class:`AssertionError` whose message says what was called, on what
input, what was wrong, and what to do about it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import GeneratorType

import numpy as np

from softgrad import reference
from softgrad._failures import fail, format_value, worst_entries
from softgrad.gradcheck import check_gradient, check_jacobian, relative_error
from softgrad.measure import peak_memory
from softgrad.mistakes import MUTATES_INPUT, Mistake, suspects
from softgrad.replay import in_kernel_only

__all__ = [
    "StudentCall",
    "as_checked_array",
    "call_student",
    "check_against_reference",
    "check_deterministic",
    "check_first_sgd_step",
    "check_gradient_function",
    "check_jacobian_function",
    "check_labels_against_reference",
    "check_loss_and_gradients",
    "check_online_logsumexp",
    "check_peak_memory",
    "check_raises",
    "check_sgd_loop",
    "check_training",
    "check_vectorised",
    "count_lines_run",
    "describe_array",
    "result_problem",
    "expected_dtype",
    "forward_tolerance",
]


def expected_dtype(x: np.ndarray) -> np.dtype:
    """The dtype a graded NumPy function must return for input ``x``.

    Real floating inputs keep their dtype; integers and booleans are promoted to float64.
    """
    dtype = np.asarray(x).dtype
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def forward_tolerance(dtype: np.dtype | type, terms: int, scale: float,
                      expected: np.ndarray | float = 0.0) -> np.ndarray | float:
    """The absolute error allowed in a forward result computed in ``dtype``, entry by entry.

    ``2 * eps * (2 * scale + terms + 2 + |expected|)``, where ``scale`` is the largest
    magnitude among the inputs and ``terms`` the length of the longest axis. The reasoning:
    the stable algorithms for softmax, log-softmax and log-sum-exp are mixed
    forward-backward stable (Blanchard, Higham and Higham, 2021): each result is, up to a
    relative error of a few ``eps`` in the output, the exact result for inputs perturbed by
    a relative ``O(eps)``, that is by at most ``eps * scale`` in absolute terms. How far
    such a perturbation moves an output is bounded by the sum of the absolute values of
    that output's row of the Jacobian: ``2 p_i (1 - p_i) <= 1/2`` for softmax,
    ``2 (1 - p_i) <= 2`` for log-softmax, and 1 for log-sum-exp; hence the ``2 * scale``.
    Adding ``terms`` numbers contributes up to ``terms * eps``, and rounding the output
    ``eps * |expected|``. The factor 2 covers the few remaining roundings (a subtraction,
    an exp, a log or a division), and admits other stable formulas such as
    ``exp(z - logsumexp(z))``, whose error reaches ``2 * eps * scale`` times the output.

    In float64 with 10 logits of size 1000 the allowance is ``8.9e-13``; in float32,
    ``4.8e-4``. The mistakes the tests look for give errors of order one, or nan. In
    float16 (``eps = 9.8e-4``) the allowance is wide, so float16 tests use logits of
    moderate size, where a wrong formula is still far outside it.
    """
    eps = float(np.finfo(dtype).eps)
    return 2.0 * eps * (2.0 * abs(float(scale)) + terms + 2.0 + np.abs(expected))


def describe_array(name: str, x: object) -> str:
    """``z of shape (2, 3), dtype float32, values in [-1000, 3]`` (for messages)."""
    if isinstance(x, np.ndarray):
        text = f"{name} of shape {x.shape}, dtype {x.dtype}"
        if x.size and np.issubdtype(x.dtype, np.number):
            text += f", values in [{format_value(np.min(x))}, {format_value(np.max(x))}]"
        return text
    return f"{name} = {x!r}"


@dataclass
class StudentCall:
    """The result of a student's function, and the warnings it raised (captured, not printed)."""

    value: object
    warnings: list[str]


def _copy_arg(value: object) -> object:
    return value.copy() if isinstance(value, np.ndarray) else value


def _call_text(name: str, args: Sequence[object], kwargs: Mapping[str, object], arg_names: Sequence[str]) -> str:
    shown = [arg_names[i] if i < len(arg_names) else f"arg{i}" for i in range(len(args))]
    shown += [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


def call_student(
    function: Callable[..., object],
    *args: object,
    arg_names: Sequence[str] = ("z",),
    name: str | None = None,
    mistakes: Mapping[Mistake, Sequence[Callable[..., object]]] | None = None,
    **kwargs: object,
) -> StudentCall:
    """Call ``function(*args, **kwargs)`` the way a grader should.

    The function receives copies of the array arguments, so that the originals can be
    compared afterwards: a function that modifies its input fails with the mistake
    ``mutates-input``. Warnings are captured (and returned) instead of printed. An exception
    is re-raised as an AssertionError that says which call, on which input, raised it, and
    which of the known ``mistakes`` raises the same error on the same input, if any.
    """
    __tracebackhide__ = True
    name = name or getattr(function, "__name__", "your function")
    call = _call_text(name, args, kwargs, arg_names)
    passed = [_copy_arg(a) for a in args]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = function(*passed, **kwargs)
        except NotImplementedError as error:
            fail(f"{call} raised NotImplementedError: replace `raise NotImplementedError()` "
                 "with your implementation.", error)
        except MemoryError as error:
            inputs = "; ".join(describe_array(arg_names[i] if i < len(arg_names) else f"arg{i}", a)
                               for i, a in enumerate(args))
            message = (f"{call} ran out of memory ({error}) on {inputs}. A function whose result "
                       "has the size of its input should need only a few arrays of that size.")
            for mistake in _recognise_error(error, mistakes or {}, args, kwargs):
                message += "\n" + mistake.describe()
            fail(message, error)
        except Exception as error:
            inputs = "; ".join(describe_array(arg_names[i] if i < len(arg_names) else f"arg{i}", a)
                               for i, a in enumerate(args))
            message = f"{call} raised {type(error).__name__}: {error}\n  The input was: {inputs}."
            for mistake in _recognise_error(error, mistakes or {}, args, kwargs):
                message += "\n" + mistake.describe()
            fail(message, error)
    for i, (original, given) in enumerate(zip(args, passed, strict=True)):
        if isinstance(original, np.ndarray) and not np.array_equal(original, given, equal_nan=True):
            arg = arg_names[i] if i < len(arg_names) else f"argument {i}"
            fail(f"{call} modified its input {arg}: it must leave the caller's array unchanged.\n"
                 + MUTATES_INPUT.describe())
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    return StudentCall(value, list(dict.fromkeys(messages)))


def result_problem(value: object, *, shape: tuple[int, ...], dtype: np.dtype | None = None) -> str | None:
    """What is wrong with a result's type, shape or dtype (a phrase after "f(z) ..."), or None.

    Accepted: a plain ``np.ndarray``, a NumPy floating scalar, or (for float64 results) a
    Python float. Rejected: lists, tensors, array subclasses, other shapes, other dtypes.
    """
    if type(value) is np.ndarray:
        arr = value
    elif isinstance(value, np.floating) or (type(value) is float and (dtype is None or dtype == np.float64)):
        arr = np.asarray(value)
    elif isinstance(value, np.ndarray):
        return (f"returned a {type(value).__name__}, a subclass of np.ndarray; return a plain NumPy "
                "array (np.asarray(result) makes one).")
    else:
        kind = "None (is a `return` missing?)" if value is None else f"a {type(value).__name__}"
        return f"returned {kind}; it should return a NumPy array of shape {shape}."
    if arr.shape != shape:
        hint = ""
        squeezed = tuple(d for d in arr.shape if d != 1)
        if arr.ndim == len(shape) + 1 and squeezed == tuple(d for d in shape if d != 1):
            hint = " It looks like keepdims=True was used where the axis should be removed."
        elif arr.ndim == 2 and len(shape) == 2 and arr.shape == shape[::-1]:
            hint = (" That is the transposed shape: check the order of the factors of a matrix product "
                    "(a gradient has the shape of what it differentiates).")
        elif arr.size == int(np.prod(shape)):
            hint = " The number of entries is right but the shape is not: check your reshapes and keepdims."
        return f"returned an array of shape {arr.shape}; expected shape {shape}.{hint}"
    if not np.issubdtype(arr.dtype, np.floating):
        return f"returned dtype {arr.dtype}; expected a floating-point array" + (
            f" of dtype {dtype}." if dtype is not None else ".")
    if dtype is not None and arr.dtype != dtype:
        return (f"returned dtype {arr.dtype}, but its input has dtype {dtype}: return the input's "
                "floating dtype (integer inputs give float64). A common cause: np.eye, np.zeros and "
                "np.ones make float64 arrays unless given dtype=..., and mixing one into a float32 "
                "computation promotes the result to float64.")
    return None


def as_checked_array(
    value: object, *, what: str, shape: tuple[int, ...], dtype: np.dtype | None = None
) -> np.ndarray:
    """Check ``value`` with :func:`result_problem` (failing with ``what`` as the subject);
    return it as a new float64 array, independent of ``value``."""
    __tracebackhide__ = True
    problem = result_problem(value, shape=shape, dtype=dtype)
    if problem:
        fail(f"{what} {problem}")
    return np.array(value, dtype=np.float64, copy=True)


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


def _run_quietly(implementation: Callable[..., object], args: Sequence[object], kwargs: Mapping[str, object]):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return implementation(*[_copy_arg(a) for a in args], **kwargs)


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


def check_against_reference(
    function: Callable[..., object],
    reference: Callable[..., object],
    *args: object,
    case: str = "",
    arg_names: Sequence[str] = ("z",),
    mistakes: Mapping[Mistake, Sequence[Callable[..., object]]] | None = None,
    strict_dtype: bool = True,
    **kwargs: object,
) -> None:
    """Check ``function(*args, **kwargs)`` against the trusted ``reference`` (float64).

    Checks, in order: the call succeeds and leaves its inputs unchanged; the result is a
    NumPy array with the reference's shape and the input's floating dtype
    (:func:`expected_dtype` of the first argument; with ``strict_dtype=False`` any float
    will do, as for a loss that may be a Python float); it is finite wherever the reference
    is; and it agrees with the reference within :func:`forward_tolerance`. ``case``
    describes the input in words for the message ("logits of +-1000"). ``mistakes``
    defaults to the catalogue's suspects for the reference's name (``softmax``, ...).
    Returns None, so that it can end a test cell (nbgrader treats a numeric last value as
    partial credit).
    """
    __tracebackhide__ = True
    name = getattr(reference, "__name__", "function")
    expected = np.asarray(reference(*args, **kwargs), dtype=np.float64)
    known = suspects(name) if mistakes is None else mistakes
    outcome = call_student(function, *args, arg_names=arg_names, name=name, mistakes=known, **kwargs)
    call = _call_text(name, args, kwargs, arg_names)
    what = f"{call} with {describe_array(arg_names[0], args[0])}" + (f" ({case})" if case else "")
    _judge(outcome.value, expected, what=what, dtype=expected_dtype(args[0]), strict_dtype=strict_dtype,
           args=args, kwargs=kwargs, known=known, warnings_seen=outcome.warnings)


def _judge(
    value: object,
    expected: np.ndarray,
    *,
    what: str,
    dtype: np.dtype,
    strict_dtype: bool,
    args: Sequence[object],
    kwargs: Mapping[str, object],
    known: Mapping[Mistake, Sequence[Callable[..., object]]],
    warnings_seen: Sequence[str],
) -> None:
    """Fail, with the full message, unless ``value`` agrees with the float64 ``expected``."""
    __tracebackhide__ = True
    # The scale and the longest axis of the data. Integer arrays next to floating ones are
    # class indices (targets, labels): their values say nothing about the rounding of the
    # result, so they do not widen the tolerance. Integer inputs that are the data (integer
    # logits, promoted to float64) still count.
    numeric = [a for a in args if isinstance(a, np.ndarray) and a.size and np.issubdtype(a.dtype, np.number)]
    floating = [a for a in numeric if np.issubdtype(a.dtype, np.inexact)]
    arrays = [np.asarray(a, dtype=np.float64) for a in (floating or numeric)]
    scale = max((float(np.max(np.abs(a))) for a in arrays), default=1.0)
    terms = max((max(a.shape) for a in arrays), default=1)
    allowed = forward_tolerance(dtype, terms, scale, expected)
    # A wrong implementation "matches" when it reproduces the student's result to the same
    # accuracy that a right one must reach.
    match_tolerance = float(forward_tolerance(dtype, terms, scale))

    problem = result_problem(value, shape=expected.shape, dtype=dtype if strict_dtype else None)
    if problem:
        lines = [f"{what} {problem}"]
        if type(value) is np.ndarray and np.issubdtype(value.dtype, np.number):
            raw = np.asarray(value, dtype=np.float64)
            lines += [m.describe() for m in _recognise(raw, expected, known, args, kwargs, match_tolerance)]
        fail("\n".join(lines))
    actual = np.array(value, dtype=np.float64, copy=True)
    ok = np.isfinite(actual) == np.isfinite(expected)
    with np.errstate(invalid="ignore"):
        ok &= np.where(
            np.isfinite(expected),
            np.abs(actual - expected) <= allowed,
            actual == expected,
        )
    if bool(np.all(ok)):
        return

    if actual.ndim == 0:
        lines = [f"{what} is {format_value(float(actual))}, but the correct value is "
                 f"{format_value(float(expected))}."]
    else:
        lines = [f"{what} is wrong in {int(np.size(ok) - np.count_nonzero(ok))} of {np.size(ok)} entries."]
        nonfinite = int(np.count_nonzero(~np.isfinite(actual) & np.isfinite(expected)))
        if nonfinite:
            lines.append(f"  {nonfinite} of your entries are nan or inf where the correct value is finite.")
        lines.append("  Largest differences:")
        lines += [f"    {row}" for row in worst_entries(actual, expected, count=3)]
    lines.append(f"  (Allowed error for {dtype} here: {float(np.max(allowed)):.1e} at most.)")
    if warnings_seen:
        lines.append("  NumPy warned while your function ran: " + "; ".join(warnings_seen[:3]))
    recognised = _recognise(actual, expected, known, args, kwargs, match_tolerance)
    if recognised:
        lines += [m.describe() for m in recognised]
    fail("\n".join(lines))


def _describe_argument(name: str, value: object) -> str | None:
    """An argument in words for a message: arrays by shape and values, an iterator (a stream of
    chunks) by its kind, since reading it to count its items would use it up; None for the rest."""
    if isinstance(value, np.ndarray):
        return describe_array(name, value)
    if isinstance(value, Iterator):
        return f"{name}, a one-shot {'generator' if isinstance(value, GeneratorType) else 'iterator'}"
    return None


def _describe_call(name: str, args: Sequence[object], kwargs: Mapping[str, object],
                   arg_names: Sequence[str], case: str) -> str:
    call = _call_text(name, args, kwargs, arg_names)
    described = (_describe_argument(arg_names[i], a) for i, a in enumerate(args) if i < len(arg_names))
    shown = ", ".join(d for d in described if d)
    return call + (f" with {shown}" if shown else "") + (f" ({case})" if case else "")


def _candidates(known: Mapping[Mistake, Sequence[Callable[..., object]]], args: Sequence[object],
                kwargs: Mapping[str, object]) -> dict[Mistake, list[Callable[[], object]]]:
    """Each known wrong implementation, bound to this input (run quietly when asked)."""
    return {
        mistake: [lambda impl=impl: _run_quietly(impl, args, kwargs) for impl in implementations]
        for mistake, implementations in known.items()
    }


def _with_warnings(failure: AssertionError, warnings_seen: list[str]) -> str:
    text = str(failure)
    if warnings_seen:
        text += "\n  NumPy warned while your function ran: " + "; ".join(warnings_seen[:3])
    return text


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


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _measured_call(
    measure: Callable[..., tuple[object, int]],
    function: Callable[..., object],
    args: Sequence[object],
    kwargs: Mapping[str, object],
    *,
    name: str,
    arg_names: Sequence[str],
    case: str,
) -> tuple[str, int]:
    """Call the student's function under ``measure`` (which returns ``(result, amount)``), safely."""
    __tracebackhide__ = True
    what = _describe_call(name, args, kwargs, arg_names, case)
    outcome = call_student(lambda *a, **k: measure(function, *a, **k), *args, arg_names=arg_names, name=name,
                           **kwargs)
    return what, outcome.value[1]


def check_peak_memory(
    function: Callable[..., object],
    *args: object,
    name: str,
    limit: int,
    explanation: str,
    mistake: Mistake | None = None,
    arg_names: Sequence[str] = ("z",),
    case: str = "",
    **kwargs: object,
) -> None:
    """Check that one call of ``function`` allocates at most ``limit`` bytes at its peak.

    Memory is measured with :func:`softgrad.measure.peak_memory` (NumPy's allocations, not
    the process). ``explanation`` says in words what the limit allows ("16 arrays the size
    of z"); ``mistake`` is named when the limit is exceeded.

    When the grader re-runs the test outside the notebook (``function`` is a sandbox proxy,
    :mod:`softgrad.replay`), the student's code runs in another process, whose allocations
    this process cannot see; the check then skips itself and the notebook run's result stands.
    """
    __tracebackhide__ = True
    if in_kernel_only(function, "check_peak_memory"):
        return  # measured in the notebook run; across a process boundary only the copying would count
    what, peak = _measured_call(peak_memory, function, args, kwargs, name=name, arg_names=arg_names, case=case)
    if peak > limit:
        message = (f"{what} allocated {_bytes(peak)} at its peak; the limit is {_bytes(limit)} "
                   f"({explanation}).")
        if mistake is not None:
            message += "\n" + mistake.describe()
        fail(message)


def _component(known: Mapping[Mistake, Sequence[Callable[..., object]]],
               index: int) -> dict[Mistake, list[Callable[..., object]]]:
    """Wrong implementations that return tuples, reduced to one component of the tuple."""
    return {
        mistake: [lambda *a, impl=impl, **k: impl(*a, **k)[index] for impl in implementations]
        for mistake, implementations in known.items()
    }


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


# --------------------------------------------------------------------------------------
# Chapter 4: predictions, vectorisation, argument checks and training
# --------------------------------------------------------------------------------------

def check_labels_against_reference(
    function: Callable[..., object],
    reference: Callable[..., object],
    *args: object,
    arg_names: Sequence[str],
    case: str = "",
    mistakes: Mapping[Mistake, Sequence[Callable[..., object]]] | None = None,
    **kwargs: object,
) -> None:
    """Check a function that returns integer labels (predictions) against a trusted one, exactly."""
    __tracebackhide__ = True
    name = getattr(reference, "__name__", "function")
    known = suspects(name) if mistakes is None else mistakes
    expected = np.asarray(reference(*args, **kwargs))
    what = _describe_call(name, args, kwargs, arg_names, case)
    outcome = call_student(function, *args, arg_names=arg_names, name=name, mistakes=known, **kwargs)
    value = outcome.value
    if type(value) is not np.ndarray:
        kind = "None (is a `return` missing?)" if value is None else f"a {type(value).__name__}"
        fail(f"{what} returned {kind}; it should return a NumPy array of {expected.shape[0]} integer labels.")
    problem = None
    if value.shape != expected.shape:
        problem = f"returned an array of shape {value.shape}; expected one label per row, shape {expected.shape}."
    elif not np.issubdtype(value.dtype, np.integer):
        problem = (f"returned dtype {value.dtype}; labels are integers (np.argmax returns them: do not "
                   "return the scores or the probabilities themselves).")
    wrong = [] if problem else np.flatnonzero(value != expected)
    if problem is None and len(wrong) == 0:
        return
    lines = [f"{what} {problem}" if problem else
             f"{what} predicts the wrong class for {len(wrong)} of {len(expected)} rows, for example row "
             f"{int(wrong[0])}: yours {int(value[wrong[0]])}, expected {int(expected[wrong[0]])}."]
    for mistake, implementations in known.items():
        for implementation in implementations:
            try:
                candidate = np.asarray(_run_quietly(implementation, args, kwargs))
            except Exception:
                continue
            if candidate.shape == value.shape and np.array_equal(candidate, value):
                lines.append(mistake.describe())
                break
    fail("\n".join(lines))


def count_lines_run(function: Callable[..., object], *args: object, **kwargs: object) -> tuple[object, int]:
    """``(result, lines)``: the result of one call, and how many lines of Python it ran.

    Lines are counted with :func:`sys.settrace` in every Python frame except those of this
    library: the student's own code, and Python code it calls in NumPy or elsewhere. A loop
    over N rows runs at least N lines, whether it is written as a ``for`` loop, a
    comprehension, ``map`` or ``np.apply_along_axis``; whole-array operations run a handful,
    whatever the size of the data (NumPy's compiled loops are not Python lines).
    """
    import sys
    from pathlib import Path

    library = (str(Path(__file__).resolve().parent),)
    lines = 0

    def local_trace(frame, event, arg):  # noqa: ARG001 (the signature sys.settrace requires)
        nonlocal lines
        if event == "line":
            lines += 1
        return local_trace

    def global_trace(frame, event, arg):  # noqa: ARG001
        return None if frame.f_code.co_filename.startswith(library) else local_trace

    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        result = function(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return result, lines


def check_vectorised(
    function: Callable[..., object],
    *args: object,
    name: str,
    max_lines: int,
    arg_names: Sequence[str],
    case: str = "",
    **kwargs: object,
) -> None:
    """Check that one call runs at most ``max_lines`` lines of the student's own Python code.

    No timing is involved (timings are noisy and belong to benchmarks): the count of lines
    executed (:func:`count_lines_run`) does not depend on the machine, and a loop over the
    rows of the input shows up as thousands of lines.
    """
    __tracebackhide__ = True
    if in_kernel_only(function, "check_vectorised"):
        return  # lines are counted in the notebook run; the re-run sees only the proxy's lines
    from softgrad.mistakes import PYTHON_LOOP_OVER_ROWS

    what, lines = _measured_call(count_lines_run, function, args, kwargs, name=name, arg_names=arg_names,
                                 case=case)
    if lines > max_lines:
        fail(f"{what} ran {lines} lines of Python (yours, and the Python parts of NumPy that it called); "
             f"a vectorised version runs a few (the limit is {max_lines}, whatever the number of rows).\n"
             + PYTHON_LOOP_OVER_ROWS.describe())


def check_raises(
    function: Callable[..., object],
    *args: object,
    mentions: str,
    case: str,
    arg_names: Sequence[str],
    name: str,
    error: type[Exception] = ValueError,
    **kwargs: object,
) -> None:
    """Check that a call with bad arguments raises ``error`` with a message that names ``mentions``.

    A clear error says what was wrong: the message must contain the name of the offending
    argument (``mentions``), so that the caller knows which one to fix.
    """
    __tracebackhide__ = True
    call = _call_text(name, args, kwargs, arg_names)
    passed = [_copy_arg(a) for a in args]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            function(*passed, **kwargs)
    except error as raised:
        # the argument's name as a word of its own: "X" must not be found inside "expected"
        if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(mentions)}(?![A-Za-z0-9_])", str(raised)):
            fail(f"{call} with {case} raised {type(raised).__name__}({str(raised)!r}), but the message does not "
                 f"mention `{mentions}`: say which argument is wrong and what was expected.")
        return
    except Exception as raised:
        fail(f"{call} with {case} raised {type(raised).__name__}: {raised}. Check the arguments first and "
             f"raise {error.__name__} with a message that names `{mentions}`, before any computation fails "
             "on them.", raised)
    fail(f"{call} with {case} did not raise. Bad arguments must be refused with {error.__name__}, with a "
         f"message that names `{mentions}` and says what was expected.")


def _training_result(value: object, what: str, shapes: tuple[tuple[int, ...], tuple[int, ...]],
                     dtype: np.dtype, epochs: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    __tracebackhide__ = True
    if not isinstance(value, tuple | list) or len(value) != 3:
        fail(f"{what} returned {type(value).__name__}; it should return the tuple (W, b, history).")
    W, b, history = value
    for label, array, shape in (("W", W, shapes[0]), ("b", b, shapes[1])):
        problem = result_problem(array, shape=shape, dtype=dtype)
        if problem:
            fail(f"{label} from {what} {problem.replace('returned', 'is', 1)}")
    if not isinstance(history, dict) or "loss" not in history:
        fail(f"history from {what} should be a dict with a key 'loss' (a list with one number per epoch); "
             f"it is {type(history).__name__}" + (f" with keys {sorted(history)}" if isinstance(history, dict) else ""))
    losses = history["loss"]
    if not isinstance(losses, list | tuple | np.ndarray) or len(losses) != epochs:
        fail(f"history['loss'] from {what} should hold one number per epoch ({epochs}); "
             f"it holds {len(losses) if hasattr(losses, '__len__') else type(losses).__name__}.")
    losses = [float(v) for v in losses]
    return np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64), losses


def check_first_sgd_step(
    train: Callable[..., object],
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    lr: float,
    reg: float,
) -> None:
    """One epoch of one full batch from zero weights must be exactly one gradient step.

    ``train(X, y, num_classes, lr=lr, epochs=1, batch_size=N, reg=reg, seed=0)`` must return
    ``W = -lr * dW`` and ``b = -lr * db`` (the gradients at zero). This pins down the update
    rule independently of shuffling; known mistakes (a flipped sign, shifted labels, a step
    N times too long) are recognised.
    """
    __tracebackhide__ = True
    X = np.asarray(X)
    n, d = X.shape
    kwargs = {"lr": lr, "epochs": 1, "batch_size": n, "reg": reg, "seed": 0}
    name = "train_softmax_regression"
    what = _describe_call(name, (X, y, num_classes), kwargs, ("X", "y", "num_classes"),
                          "one full-batch step from zero weights")
    outcome = call_student(train, X, y, num_classes, arg_names=("X", "y", "num_classes"), name=name, **kwargs)
    W, b, _ = _training_result(outcome.value, what, ((d, num_classes), (num_classes,)), expected_dtype(X), 1)
    expected_W, expected_b = reference.sgd_first_step(X, y, num_classes, lr, reg)
    actual, expected = np.concatenate([W.ravel(), b]), np.concatenate([expected_W.ravel(), expected_b])
    tolerance = max(1e-8, 100 * float(np.finfo(expected_dtype(X)).eps))
    if relative_error(actual, expected) <= tolerance:
        return
    lines = [f"{what}: W and b should be -lr * dW and -lr * db, the gradients at W = 0 and b = 0; "
             f"relative error {relative_error(actual, expected):.2e}."]
    for label, mine, right in (("W", W, expected_W), ("b", b, expected_b)):
        if relative_error(mine, right) > tolerance:
            lines += [f"    {label}{row}" for row in worst_entries(mine, right, count=2)]
        else:
            lines.append(f"    {label} is right.")
    recognised = False
    for mistake, implementations in suspects("sgd_first_step").items():
        for implementation in implementations:
            candidate = np.concatenate([np.ravel(part) for part in implementation(X, y, num_classes, lr, reg)])
            if relative_error(actual, candidate) <= tolerance:
                lines.append(mistake.describe())
                recognised = True
                break
    if not recognised:
        if not np.any(actual):
            lines.append("W and b are still zero: is the update applied (W = W - lr * dW, or W -= lr * dW)?")
        else:
            c = float(np.vdot(actual, expected) / np.vdot(expected, expected))
            if relative_error(actual, c * expected) <= 1e-6:
                hint = ""
                if abs(c - n) <= 1e-6 * n:
                    hint = (f" That is N = {n}: the step uses the gradient of a summed loss, or multiplies by "
                            "the batch size; the provided gradients are already means.")
                lines.append(f"Your step is {c:.6g} times the gradient step.{hint}")
            else:
                lines.append("Start from W = 0 and b = 0, take the mini-batches from a permutation of the "
                             "rows, and update with W -= lr * dW, b -= lr * db after every batch.")
    fail("\n".join(lines))


def _accuracy(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(reference.predict(W, b, X) == y))


def check_training(
    train: Callable[..., object],
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    X_test: np.ndarray,
    y_test: np.ndarray,
    min_accuracy: float,
    max_final_loss: float | None,
    case: str,
    **kwargs: object,
) -> None:
    """Train with ``train(X, y, num_classes, **kwargs)`` and judge the result as a user would.

    The loss history must have one entry per epoch and go down (and end below
    ``max_final_loss``), and the accuracy on the held-out ``(X_test, y_test)``, computed with
    the course's trusted ``predict``, must reach ``min_accuracy``. Failures name the known
    mistake the symptoms point to: a rising loss (the update's sign), near-zero accuracy with
    predictions one class off (shifted labels), or a failure on sorted data that disappears
    when the course shuffles the data first (no shuffling).
    """
    __tracebackhide__ = True
    from softgrad.mistakes import LABELS_OFF_BY_ONE, NO_SHUFFLE, SGD_ASCENDS

    X, y = np.asarray(X), np.asarray(y)
    name = "train_softmax_regression"
    what = _describe_call(name, (X, y, num_classes), kwargs, ("X", "y", "num_classes"), case)
    outcome = call_student(train, X, y, num_classes, arg_names=("X", "y", "num_classes"), name=name, **kwargs)
    epochs = int(kwargs["epochs"])  # the tests always say how long to train
    W, b, losses = _training_result(outcome.value, what, ((X.shape[1], num_classes), (num_classes,)),
                                    expected_dtype(X), epochs)
    accuracy = _accuracy(W, b, X_test, y_test)
    if not all(np.isfinite(losses)):
        fail(f"{what}: the loss history contains nan or inf: {losses[:5]}...")
    problems = []
    if losses[-1] >= losses[0]:
        problems.append(f"the training loss did not go down: first epoch {losses[0]:.4g}, last {losses[-1]:.4g}.")
    elif max_final_loss is not None and losses[-1] > max_final_loss:
        problems.append(f"the training loss ends at {losses[-1]:.4g}; a correct implementation reaches well "
                        f"below {max_final_loss:g} with these settings.")
    if accuracy < min_accuracy:
        problems.append(f"the accuracy on the held-out data is {accuracy:.3f}; a correct implementation reaches at "
                        f"least {min_accuracy:g} with these settings.")
    if not problems:
        return
    lines = [f"{what}: " + " ".join(problems)]
    predictions = reference.predict(W, b, X_test)
    if losses[-1] > losses[0]:
        lines.append(SGD_ASCENDS.describe())
    elif max(np.mean(predictions == (y_test + 1) % num_classes),
             np.mean(predictions == (y_test - 1) % num_classes)) > 0.5:
        lines.append(LABELS_OFF_BY_ONE.describe())
    else:
        order = np.random.default_rng(12345).permutation(len(y))
        try:
            retry = _training_result(_run_quietly(train, (X[order], y[order], num_classes), kwargs),
                                     what, ((X.shape[1], num_classes), (num_classes,)), expected_dtype(X), epochs)
            if _accuracy(retry[0], retry[1], X_test, y_test) >= min_accuracy:
                lines.append("With the same data shuffled once beforehand, your training reaches the accuracy: "
                             "the order of the data is the problem.\n" + NO_SHUFFLE.describe())
        except (Exception, AssertionError):  # the retry is only for the diagnosis
            pass
    fail("\n".join(lines))


def check_deterministic(train: Callable[..., object], X: np.ndarray, y: np.ndarray, num_classes: int,
                        **kwargs: object) -> None:
    """The same seed must give the same weights, whatever NumPy's global random state; and
    another seed must give other weights (the seed decides the order of the mini-batches)."""
    __tracebackhide__ = True
    from softgrad.mistakes import NO_SHUFFLE, UNSEEDED_RANDOMNESS

    name = "train_softmax_regression"
    results = []
    for seed, global_seed in ((0, 1), (0, 2), (1, 1)):
        # Deliberately the legacy global state: code that wrongly uses it now sees other numbers.
        np.random.seed(global_seed)  # noqa: NPY002
        outcome = call_student(train, X, y, num_classes, arg_names=("X", "y", "num_classes"), name=name,
                               seed=seed, **kwargs)
        results.append(outcome.value)
    what = _describe_call(name, (X, y, num_classes), kwargs, ("X", "y", "num_classes"), "")
    same_seed = [np.concatenate([np.ravel(r[0]), np.ravel(r[1])]) for r in results]
    if not np.array_equal(same_seed[0], same_seed[1]):
        fail(f"{what}: two runs with seed=0 gave different weights (relative difference "
             f"{relative_error(same_seed[0], same_seed[1]):.2e}).\n" + UNSEEDED_RANDOMNESS.describe())
    if np.array_equal(same_seed[0], same_seed[2]):
        # Not shuffled at all, or shuffled by a generator that ignores the seed? Data sorted by
        # label tells them apart: shuffled training copes with it, unshuffled training does not.
        from softgrad.mistakes import SEED_IGNORED

        order = np.argsort(np.asarray(y), kind="stable")
        W_sorted, b_sorted = _run_quietly(train, (np.asarray(X)[order], np.asarray(y)[order], num_classes),
                                          {"seed": 0, **kwargs})[:2]
        unsorted_accuracy = _accuracy(np.asarray(results[0][0]), np.asarray(results[0][1]), X, y)
        shuffles = _accuracy(np.asarray(W_sorted), np.asarray(b_sorted), X, y) >= unsorted_accuracy - 0.2
        fail(f"{what}: seed=0 and seed=1 gave identical weights, so the seed does not decide the order "
             "of the mini-batches.\n" + (SEED_IGNORED if shuffles else NO_SHUFFLE).describe())


def check_sgd_loop(
    train: Callable[..., object],
    namespace: dict[str, object],
    helper: str,
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    **kwargs: object,
) -> None:
    """Watch the training loop through the loss-and-gradient function it must call.

    ``namespace[helper]`` (the provided ``softmax_regression_loss_and_grad`` in the
    notebook's globals, which the student's code looks up at run time) is replaced for one
    call of ``train`` by a wrapper that records every mini-batch, then restored. The checks:
    ``ceil(N / batch_size)`` calls per epoch with batches of ``batch_size`` rows (the last
    one may be smaller); every row exactly once per epoch; a new order every epoch; ``reg``
    passed on; and ``history["loss"][e]`` the mean of epoch ``e``'s mini-batch losses.
    """
    if in_kernel_only(train, "check_sgd_loop"):
        return  # the provided function is watched in the notebook run; the re-run's copy is elsewhere
    __tracebackhide__ = True
    from softgrad.mistakes import LAST_BATCH_DROPPED, ORDER_DRAWN_ONCE, REG_NOT_PASSED

    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    batch_size, epochs, reg = int(kwargs["batch_size"]), int(kwargs["epochs"]), float(kwargs["reg"])
    original = namespace.get(helper)
    if not callable(original):
        raise RuntimeError(f"the notebook has no function {helper}() to watch")
    calls: list[tuple[np.ndarray, float, float]] = []

    def recording(W, b, X_batch, y_batch, reg=0.0):
        loss, dW, db = original(W, b, X_batch, y_batch, reg)
        calls.append((np.array(X_batch, copy=True), float(reg), float(loss)))
        return loss, dW, db

    name = "train_softmax_regression"
    what = _describe_call(name, (X, y, num_classes), kwargs, ("X", "y", "num_classes"), "")
    namespace[helper] = recording
    try:
        outcome = call_student(train, X, y, num_classes, arg_names=("X", "y", "num_classes"), name=name, **kwargs)
    finally:
        namespace[helper] = original
    _, _, losses = _training_result(outcome.value, what, ((X.shape[1], num_classes), (num_classes,)),
                                    expected_dtype(X), epochs)
    per_epoch = -(-n // batch_size)
    if not calls:
        fail(f"{what} never called {helper}(): compute the loss and gradients of every mini-batch with it.")
    if len(calls) != epochs * per_epoch:
        sizes = [len(c[0]) for c in calls[:per_epoch + 1]]
        message = (f"{what} called {helper}() {len(calls)} times; {epochs} epochs of {n} rows in mini-batches "
                   f"of {batch_size} take {per_epoch} calls each, {epochs * per_epoch} in all. The first batch "
                   f"sizes: {sizes}.")
        if len(calls) == epochs * (n // batch_size) and n % batch_size:
            message += "\n" + LAST_BATCH_DROPPED.describe()
        fail(message)
    sizes = [len(c[0]) for c in calls[:per_epoch]]
    expected_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if sizes != expected_sizes:
        fail(f"{what}: the mini-batches of the first epoch have {sizes} rows; expected {expected_sizes}: "
             "consecutive slices of one permutation of the rows.")
    reference_rows = np.sort(X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel())
    for epoch in range(epochs):
        batches = calls[epoch * per_epoch:(epoch + 1) * per_epoch]
        rows = np.concatenate([c[0] for c in batches])
        rows = np.ascontiguousarray(rows, dtype=X.dtype)
        if not np.array_equal(np.sort(rows.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()),
                              reference_rows):
            fail(f"{what}: in epoch {epoch + 1} the mini-batches did not contain every row of X exactly once; "
                 "take them from a permutation of the rows (rng.permutation(N)), not by sampling with "
                 "replacement.")
        given = {c[1] for c in batches}
        if given != {reg}:
            fail(f"{what} passed reg = {sorted(given)} to {helper}(); it was asked for reg = {reg}.\n"
                 + REG_NOT_PASSED.describe())
        mean_loss = float(np.mean([c[2] for c in batches]))
        if abs(losses[epoch] - mean_loss) > 1e-9 * max(1.0, abs(mean_loss)):
            fail(f"{what}: history['loss'][{epoch}] is {losses[epoch]:.6g}, but the mean of that epoch's "
                 f"mini-batch losses is {mean_loss:.6g}: record the mean of the losses that "
                 f"{helper}() returned during the epoch.")
    if epochs > 1 and all(np.array_equal(calls[e * per_epoch][0], calls[0][0]) for e in range(1, epochs)):
        fail(f"{what}: every epoch started with the same mini-batch.\n" + ORDER_DRAWN_ONCE.describe())


# --------------------------------------------------------------------------------------
# Chapter 6: online log-sum-exp over a stream of chunks
# --------------------------------------------------------------------------------------

def check_online_logsumexp(
    function: Callable[..., object],
    chunks: Sequence[np.ndarray],
    *,
    case: str = "",
    one_shot: bool = True,
) -> None:
    """Check ``function(chunks)`` against the log-sum-exp of the chunks joined together.

    With ``one_shot`` (the default) the student's function receives a generator over the
    chunks, which can be read only once: code that loops over the chunks twice, or indexes
    them like a list, gets nothing (or an error) on its second look. Otherwise it receives
    the list. Every known wrong implementation of ``online_logsumexp`` is run on a fresh
    generator (or list) of the same chunks to name the mistake. The result must be a NumPy
    array of the rows' shape, in the chunks' floating dtype, and agree with the float64
    reference within :func:`forward_tolerance`.
    """
    __tracebackhide__ = True
    chunks = [np.asarray(c) for c in chunks]
    joined = np.concatenate(chunks, axis=-1)

    def fresh():
        copies = [c.copy() for c in chunks]  # whatever a function does to them, `chunks` stays intact
        return (c for c in copies) if one_shot else copies

    known = {
        mistake: [lambda *_, impl=impl: impl(fresh()) for impl in implementations]
        for mistake, implementations in suspects("online_logsumexp").items()
    }
    widths = [c.shape[-1] for c in chunks]
    shown = widths if len(widths) <= 6 else [*widths[:3], "...", *widths[-2:]]
    what = (f"online_logsumexp(chunks) with {len(chunks)} chunks of widths {shown} "
            f"({'a one-shot generator' if one_shot else 'a list'}) forming "
            f"{describe_array('logits', joined)}" + (f" ({case})" if case else ""))
    given = [c.copy() for c in chunks]
    outcome = call_student(function, (c for c in given) if one_shot else given, arg_names=("chunks",),
                           name="online_logsumexp", mistakes=known)
    if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(chunks, given, strict=True)):
        fail(f"{what}: the function modified the chunks it was given; it must leave the caller's arrays "
             "unchanged.\n" + MUTATES_INPUT.describe())
    _judge(outcome.value, reference.logsumexp_of_chunks(chunks), what=what, dtype=expected_dtype(joined),
           strict_dtype=True, args=(joined,), kwargs={}, known=known, warnings_seen=outcome.warnings)
