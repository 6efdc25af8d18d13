"""The core of every check: call a student's function safely, judge a result against a reference.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import GeneratorType

import numpy as np

from softgrad import _failures
from softgrad._failures import fail, format_pair, format_value
from softgrad.i18n import _, ngettext
from softgrad.mistakes import DTYPE_NOT_KEPT, MUTATES_INPUT, Mistake, suspects
from softgrad.testing.diagnosis import Evidence, batch_positions, copy_arg, name_errors, name_mistakes, run_quietly


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
        if x.size and np.issubdtype(x.dtype, np.number):
            # TRANSLATORS: an input in a message: "z of shape (2, 3), dtype float32, values in [-1000, 3]"
            return _("{name} of shape {shape}, dtype {dtype}, values in [{low}, {high}]").format(
                name=name, shape=x.shape, dtype=x.dtype, low=format_value(np.min(x)), high=format_value(np.max(x)))
        return _("{name} of shape {shape}, dtype {dtype}").format(name=name, shape=x.shape, dtype=x.dtype)
    return f"{name} = {x!r}"


@dataclass
class StudentCall:
    """The result of a student's function, and the warnings it raised (captured, not printed)."""

    value: object
    warnings: list[str]


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
    passed = [copy_arg(a) for a in args]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = function(*passed, **kwargs)
        except NotImplementedError as error:
            fail(_("{call} raised NotImplementedError: replace `raise NotImplementedError()` with your "
                   "implementation.").format(call=call), error)
        except MemoryError as error:
            inputs = "; ".join(describe_array(arg_names[i] if i < len(arg_names) else f"arg{i}", a)
                               for i, a in enumerate(args))
            message = _("{call} ran out of memory ({error}) on {inputs}. A function whose result has the size of "
                        "its input should need only a few arrays of that size.").format(
                call=call, error=error, inputs=inputs)
            for mistake in name_errors(error, mistakes or {}, args, kwargs):
                message += "\n" + mistake.describe()
            fail(message, error)
        except Exception as error:
            inputs = "; ".join(describe_array(arg_names[i] if i < len(arg_names) else f"arg{i}", a)
                               for i, a in enumerate(args))
            message = _("{call} raised {error_type}: {error}\n  The input was: {inputs}.").format(
                call=call, error_type=type(error).__name__, error=error, inputs=inputs)
            for mistake in name_errors(error, mistakes or {}, args, kwargs):
                message += "\n" + mistake.describe()
            fail(message, error)
    for i, (original, given) in enumerate(zip(args, passed, strict=True)):
        if isinstance(original, np.ndarray) and not np.array_equal(original, given, equal_nan=True):
            arg = arg_names[i] if i < len(arg_names) else _("argument {number}").format(number=i)
            fail(_("{call} modified its input {argument}: it must leave the caller's array unchanged.").format(
                call=call, argument=arg) + "\n" + MUTATES_INPUT.describe())
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    return StudentCall(value, list(dict.fromkeys(messages)))


def result_problem(value: object, *, shape: tuple[int, ...], dtype: np.dtype | None = None,
                   part: bool = False) -> str | None:
    """What is wrong with a result's type, shape or dtype (a phrase after "f(z) ..."), or None.

    Accepted: a plain ``np.ndarray``, a NumPy floating scalar, or (for float64 results) a
    Python float. Rejected: lists, tensors, array subclasses, other shapes, other dtypes.
    The phrase starts "returned ..."; with ``part`` (the subject is one part of a result, "dW from
    f(...)"), "is ...".
    """
    # TRANSLATORS: {verb} is one of the two messages "returned" and "is", for "f(z) returned ..." and "dW is ..."
    verb = _("is") if part else _("returned")
    if type(value) is np.ndarray:
        arr = value
    elif isinstance(value, np.floating) or (type(value) is float and (dtype is None or dtype == np.float64)):
        arr = np.asarray(value)
    elif isinstance(value, np.ndarray):
        return _("{verb} a {type}, a subclass of np.ndarray; return a plain NumPy array (np.asarray(result) makes "
                 "one).").format(verb=verb, type=type(value).__name__)
    else:
        kind = _("None (is a `return` missing?)") if value is None else _("a {type}").format(type=type(value).__name__)
        return _("{verb} {kind}; it should return a NumPy array of shape {shape}.").format(
            verb=verb, kind=kind, shape=shape)
    if arr.shape != shape:
        hint = ""
        squeezed = tuple(d for d in arr.shape if d != 1)
        if arr.ndim == len(shape) + 1 and squeezed == tuple(d for d in shape if d != 1):
            hint = _(" It looks like keepdims=True was used where the axis should be removed.")
        elif arr.ndim == 2 and len(shape) == 2 and arr.shape == shape[::-1]:
            hint = _(" That is the transposed shape: check the order of the factors of a matrix product (a gradient "
                     "has the shape of what it differentiates).")
        elif arr.size == int(np.prod(shape)):
            hint = _(" The number of entries is right but the shape is not: check your reshapes and keepdims.")
        return _("{verb} an array of shape {actual}; expected shape {shape}.{hint}").format(
            verb=verb, actual=arr.shape, shape=shape, hint=hint)
    if not np.issubdtype(arr.dtype, np.floating):
        if dtype is not None:
            return _("{verb} dtype {actual}; expected a floating-point array of dtype {dtype}.").format(
                verb=verb, actual=arr.dtype, dtype=dtype)
        return _("{verb} dtype {actual}; expected a floating-point array.").format(verb=verb, actual=arr.dtype)
    if dtype is not None and arr.dtype != dtype:
        return _("{verb} dtype {actual}, but its input has dtype {dtype}: return the input's floating dtype (integer "
                 "inputs give float64). A common cause: np.eye, np.zeros and np.ones make float64 arrays unless "
                 "given dtype=..., and mixing one into a float32 computation promotes the result to float64.").format(
            verb=verb, actual=arr.dtype, dtype=dtype)
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
    what = _("{call} with {inputs}").format(call=call, inputs=describe_array(arg_names[0], args[0])) + _case(case)
    _judge(outcome.value, expected, what=what, dtype=expected_dtype(args[0]), strict_dtype=strict_dtype,
           evidence=Evidence(known, tuple(args), dict(kwargs), student=function,
                             rows=batch_positions(args, arg_names, kwargs)),
           warnings_seen=outcome.warnings)


def _judge(
    value: object,
    expected: np.ndarray,
    *,
    what: str,
    dtype: np.dtype,
    strict_dtype: bool,
    evidence: Evidence,
    warnings_seen: Sequence[str],
    data: Sequence[object] | None = None,
    factor: float = 1.0,
) -> None:
    """Fail, with the full message, unless ``value`` agrees with the float64 ``expected``.

    ``evidence`` (the student's function, the failing input, the known wrong implementations)
    names the mistakes a wrong result reproduces; ``data`` are the arrays whose scale sets the
    tolerance (the evidence's arguments by default); ``factor`` multiplies the tolerance, for a
    result that multiplies softmax-like values by other inputs (a gradient through a linear layer).
    """
    __tracebackhide__ = True
    # The scale and the longest axis of the data. Integer arrays next to floating ones are
    # class indices (targets, labels): their values say nothing about the rounding of the
    # result, so they do not widen the tolerance. Integer inputs that are the data (integer
    # logits, promoted to float64) still count.
    args = evidence.args if data is None else data
    numeric = [a for a in args if isinstance(a, np.ndarray) and a.size and np.issubdtype(a.dtype, np.number)]
    floating = [a for a in numeric if np.issubdtype(a.dtype, np.inexact)]
    arrays = [np.asarray(a, dtype=np.float64) for a in (floating or numeric)]
    # (masked entries, -inf, are left out: they say nothing about the rounding of the finite ones)
    finite = [a[np.isfinite(a)] for a in arrays]
    scale = max((float(np.max(np.abs(a))) for a in finite if a.size), default=1.0)
    terms = max((max(a.shape) for a in arrays), default=1)
    allowed = factor * forward_tolerance(dtype, terms, scale, expected)
    # A wrong implementation "matches" when it reproduces the student's result to the same
    # accuracy that a right one must reach.
    match_tolerance = factor * float(forward_tolerance(dtype, terms, scale))

    def agree(a: np.ndarray, b: np.ndarray) -> bool:
        return _matches(b, a, match_tolerance)

    fail_on_result_problem(value, shape=expected.shape, dtype=dtype if strict_dtype else None, what=what,
                           evidence=evidence, correct=expected, agree=agree)
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
        mine, right = format_pair(float(actual), float(expected))
        lines = [_("{what} is {mine}, but the correct value is {right}.").format(what=what, mine=mine, right=right)]
    else:
        wrong = int(np.size(ok) - np.count_nonzero(ok))
        count = int(np.size(ok))
        lines = [ngettext("{what} is wrong in {wrong} of {count} entry.",
                          "{what} is wrong in {wrong} of {count} entries.", count).format(what=what, wrong=wrong,
                                                                                         count=count)]
        nonfinite = int(np.count_nonzero(~np.isfinite(actual) & np.isfinite(expected)))
        if nonfinite:
            lines.append(ngettext("  {count} entry of yours is nan or inf where the correct value is finite.",
                                  "  {count} entries of yours are nan or inf where the correct value is finite.",
                                  nonfinite).format(count=nonfinite))
        lines.append(_("  Largest differences:") if wrong > 1 else _("  The difference:"))
        lines += [f"    {row}" for row in worst_entries(actual, expected, count=3, wrong=~ok)]
    shown = np.asarray(allowed)[np.isfinite(expected)] if np.ndim(allowed) else np.asarray([allowed])
    lines.append(_("  (Allowed error for {dtype} here: {allowed:.1e} at most.)").format(
        dtype=dtype, allowed=float(np.max(shown, initial=0.0))))
    if warnings_seen:
        lines.append(_warned(warnings_seen))
    lines += [m.describe() for m in name_mistakes(evidence, actual, expected, agree)]
    fail("\n".join(lines))


worst_entries = _failures.worst_entries
"""``[1, 2]: yours nan, expected 0.5``: the entries that differ most, in the reader's language."""


def _matches(candidate: object, actual: np.ndarray, tolerance: float) -> bool:
    """Whether a wrong implementation's result reproduces ``actual`` to ``tolerance`` (relative to
    the larger of 1 and each entry; nan and infinities in the same places)."""
    try:
        expected = np.asarray(candidate, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if expected.shape != actual.shape:
        return False
    if not np.array_equal(~np.isfinite(expected), ~np.isfinite(actual)):
        return False
    finite = np.isfinite(expected)
    if not np.array_equal(expected[~finite], actual[~finite], equal_nan=True):
        return False
    scale = np.maximum(1.0, np.abs(expected[finite]))
    return bool(np.all(np.abs(expected[finite] - actual[finite]) <= tolerance * scale))


def fail_on_result_problem(
    value: object,
    *,
    shape: tuple[int, ...],
    dtype: np.dtype | None,
    what: str,
    evidence: Evidence,
    correct: np.ndarray | Callable[[], np.ndarray | None] | None,
    agree: Callable[[np.ndarray, np.ndarray], bool],
    transposed: Mistake | None = None,
    part: bool = False,
) -> None:
    """Fail for a result of the wrong type, shape or dtype (:func:`result_problem`), naming only what
    explains it.

    A result of the right shape in another dtype is compared with the ``correct`` values (an array,
    or a function that computes them): when they agree, the message says that only the dtype is
    wrong; otherwise the known mistakes are named as for any wrong result. A result of another
    shape can only be compared with wrong implementations of that shape, each of which must
    reproduce it on other inputs too; with ``transposed`` (a gradient), a result whose transpose
    has the right values is named as that mistake. ``part``: ``what`` names one part of a result
    ("dW from f(...)"), which "is" what it is rather than "returns" it.
    """
    __tracebackhide__ = True
    problem = result_problem(value, shape=shape, dtype=dtype, part=part)
    if not problem:
        return
    lines = [f"{what} {problem}"]
    named: list[Mistake] = []
    if type(value) is np.ndarray and np.issubdtype(value.dtype, np.number):
        raw = np.asarray(value, dtype=np.float64)
        right = correct() if callable(correct) else correct
        right = None if right is None else np.asarray(right, dtype=np.float64)
        if raw.shape == tuple(shape):
            if dtype is not None and np.issubdtype(value.dtype, np.floating) and value.dtype != dtype:
                named.append(DTYPE_NOT_KEPT)
            if right is not None and agree(raw, right):
                lines.append(_("  Its values are right: only the dtype is wrong."))
            else:
                named += name_mistakes(evidence, raw, right, agree)
        else:
            named += name_mistakes(evidence, raw, None, agree)
            if (transposed is not None and right is not None and raw.ndim == 2 and raw.shape == right.shape[::-1]
                    and agree(raw.T, right)):
                named.append(transposed)
    lines += [m.describe() for m in dict.fromkeys(named)]
    fail("\n".join(lines))


def _describe_argument(name: str, value: object) -> str | None:
    """An argument in words for a message: arrays by shape and values, an iterator (a stream of
    chunks) by its kind, since reading it to count its items would use it up; None for the rest."""
    if isinstance(value, np.ndarray):
        return describe_array(name, value)
    if isinstance(value, Iterator):
        if isinstance(value, GeneratorType):
            return _("{name}, a one-shot generator").format(name=name)
        return _("{name}, a one-shot iterator").format(name=name)
    return None


def _case(case: str) -> str:
    """`` (large logits)``: a test's words for its input, after the call they describe (in the reader's
    language when the catalogue has them: the cases of the course's tests are in it too)."""
    return _(" ({case})").format(case=_(case)) if case else ""


def _describe_call(name: str, args: Sequence[object], kwargs: Mapping[str, object],
                   arg_names: Sequence[str], case: str) -> str:
    call = _call_text(name, args, kwargs, arg_names)
    described = (_describe_argument(arg_names[i], a) for i, a in enumerate(args) if i < len(arg_names))
    # TRANSLATORS: what separates two inputs described in a message ("X of shape (6, 5), ..., y of shape (6,)")
    shown = _(", ").join(d for d in described if d)
    return (_("{call} with {inputs}").format(call=call, inputs=shown) if shown else call) + _case(case)


def _candidates(known: Mapping[Mistake, Sequence[Callable[..., object]]], args: Sequence[object],
                kwargs: Mapping[str, object]) -> dict[Mistake, list[Callable[[], object]]]:
    """Each known wrong implementation, bound to this input (run quietly when asked)."""
    return {
        mistake: [lambda impl=impl: run_quietly(impl, args, kwargs) for impl in implementations]
        for mistake, implementations in known.items()
    }


def _warned(warnings_seen: Sequence[str]) -> str:
    return _("  NumPy warned while your function ran: {warnings}").format(warnings="; ".join(warnings_seen[:3]))


def _with_warnings(failure: AssertionError, warnings_seen: list[str]) -> str:
    text = str(failure)
    if warnings_seen:
        text += "\n" + _warned(warnings_seen)
    return text


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return _("{count} bytes").format(count=f"{n:.0f}") if unit == "bytes" else f"{n:.1f} {unit}"
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
    passed = [copy_arg(a) for a in args]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            function(*passed, **kwargs)
    except error as raised:
        # the argument's name as a word of its own: "X" must not be found inside "expected"
        if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(mentions)}(?![A-Za-z0-9_])", str(raised)):
            fail(_("{call} with {case} raised {error_type}({message}), but the message does not mention "
                   "`{mentions}`: say which argument is wrong and what was expected.").format(
                call=call, case=_(case), error_type=type(raised).__name__, message=repr(str(raised)),
                mentions=mentions))
        return
    except Exception as raised:
        fail(_("{call} with {case} raised {error_type}: {error}. Check the arguments first and raise {expected} "
               "with a message that names `{mentions}`, before any computation fails on them.").format(
            call=call, case=_(case), error_type=type(raised).__name__, error=raised, expected=error.__name__,
            mentions=mentions), raised)
    fail(_("{call} with {case} did not raise. Bad arguments must be refused with {expected}, with a message that "
           "names `{mentions}` and says what was expected.").format(
        call=call, case=_(case), expected=error.__name__, mentions=mentions))
