"""Numerical gradient checking in float64.

The course checks every analytic gradient the same way, in the book, in the hidden tests
of the assignments and in this library's own tests:

1. Evaluate a *trusted* scalar function ``f`` (never the code under test) in float64.
2. Estimate its derivative by central differences,

   .. math:: \\frac{f(x + h e_i) - f(x - h e_i)}{2h} = \\partial_i f(x) + O(h^2),

   on every coordinate when ``x`` is small, and along a few random unit directions ``v``
   (plus a few random coordinates) when it is large:
   ``(f(x + h v) - f(x - h v)) / 2h = <grad f(x), v> + O(h^2)``.
3. Compare with the analytic gradient through a relative error, and when they disagree
   say where, by how much, and which known mistake the gradient looks like.

Step size
---------
A central difference has two errors that pull in opposite directions. Truncation: the
Taylor remainder is ``h**2 * f'''(x) / 6``, so it shrinks with ``h``. Round-off: ``f`` is
evaluated with a relative error of about ``eps`` (machine epsilon: ``2.2e-16`` in float64),
and dividing the difference of two such values by ``2h`` turns it into an error of about
``eps * |f(x)| / h``, which grows as ``h`` shrinks. The sum ``h**2 M / 6 + eps |f| / h`` is
smallest near ``h = eps ** (1/3)`` (for ``f`` and ``f'''`` of order one), where both terms
are about ``eps ** (2/3)``: ``6e-6`` for the step and ``4e-11`` for the error in float64. We
scale the step with the coordinate, ``h_i = eps ** (1/3) * max(1, |x_i|)``, so that
``x_i + h_i`` differs from ``x_i`` in the same relative digit whatever its magnitude.

In float32 the same reasoning gives ``h = 5e-3`` and errors of order ``2.4e-5`` at best (the
constants depend on ``f``), too coarse to tell a subtle bug from noise: that is why every
check runs in float64.

Tolerance
---------
One argument, one number (the book's chapter 2 makes the same one). A correct gradient,
checked with central differences at the step above, has a relative error near
``eps ** (2/3)``, about ``4e-11``: truncation and round-off balance there. The mistakes the
course catalogues (a missing factor, a dropped term, a flipped sign) give relative errors of
``1e-2`` or more, most of them of order one. ``GRADIENT_RTOL = 1e-6`` is the geometric middle of
the two, about four orders of magnitude from each, so neither noise nor a real mistake lands
near it. An absolute floor, :func:`roundoff_floor`, stops a gradient that is zero (or smaller
than the round-off of the differences) from failing on noise alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from softgrad import _failures
from softgrad._failures import fail, format_index
from softgrad.i18n import N_, _

__all__ = [
    "EPS64",
    "GRADIENT_RTOL",
    "GradientReport",
    "check_directional_derivatives",
    "check_gradient",
    "check_jacobian",
    "default_step",
    "directional_derivative",
    "numerical_gradient",
    "numerical_jacobian",
    "relative_error",
    "roundoff_floor",
]

EPS64 = float(np.finfo(np.float64).eps)
"""Machine epsilon of float64, ``2**-52``."""

GRADIENT_RTOL = 1e-6
"""Relative error above which a gradient is declared wrong (see the module docstring)."""

class Mistake(Protocol):
    """A known mistake that a wrong gradient may match: anything that can describe itself to a student
    (the course's catalogue, :class:`softgrad.mistakes.Mistake`, is one)."""

    def describe(self) -> str: ...


Candidate = np.ndarray | Callable[[], np.ndarray]
Candidates = Candidate | list[Candidate] | tuple[Candidate, ...]
"""What a known mistake would produce: an array, a function returning one, or several of them."""

Projection = Callable[[np.ndarray], np.ndarray]
Explain = Callable[[np.ndarray, np.ndarray, Projection, Callable[[np.ndarray, np.ndarray], bool]], list[str]]
"""``explain(actual, expected, project, agree) -> lines``: names the known mistakes behind a wrong
gradient. ``actual`` and ``expected`` are what the check compared; ``project`` maps a full gradient to
that form (the identity, or the directional derivatives of a large input); ``agree`` says whether two
such results agree to the check's accuracy. The course's checks pass one (:mod:`softgrad.testing`)."""

_GRADIENT = N_("the gradient")
_JACOBIAN = N_("the Jacobian")


def _shown(name: str) -> str:
    """The name of what is checked as a message shows it: the default names in the reader's language."""
    return _(name) if name in (_GRADIENT, _JACOBIAN) else name


# Above this many entries, check_gradient switches from the full numerical gradient
# (2 evaluations of f per entry) to directional derivatives plus sampled coordinates.
FULL_GRADIENT_MAX_SIZE = 512


def default_step(x: np.ndarray | float, dtype: type = np.float64) -> np.ndarray | float:
    """The central-difference step ``eps ** (1/3) * max(1, |x|)``, elementwise.

    ``eps ** (1/3)`` balances truncation error (``O(h**2)``) against round-off error
    (``O(eps / h)``); the factor ``max(1, |x|)`` makes the step relative for large ``x``.
    For float64 the step at ``|x| <= 1`` is ``6.06e-6``.
    """
    base = float(np.finfo(dtype).eps) ** (1.0 / 3.0)
    return base * np.maximum(1.0, np.abs(x))


def roundoff_floor(f_value: float, step: float) -> float:
    """The size of round-off error in one central difference, ``100 * eps * max(1, |f|) / h``.

    Each evaluation of ``f`` carries a relative error of a few ``eps`` (more for a sum of
    many terms, hence the factor 100); the difference of two of them, divided by ``2h``,
    is the noise below which a numerical derivative carries no information.
    """
    return 100.0 * EPS64 * max(1.0, abs(float(f_value))) / float(step)


def _scalar(f: Callable[[np.ndarray], float], x: np.ndarray) -> float:
    value = f(x)
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != 1:
        raise ValueError(
            f"the function being differentiated must return a scalar, but it returned shape {arr.shape}"
        )
    return float(arr.reshape(()))


def _as_float64(x: np.ndarray | float, name: str) -> np.ndarray:
    arr = np.array(x, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite to differentiate numerically; it contains nan or inf")
    return arr


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, *, step: np.ndarray | float | None = None
) -> np.ndarray:
    """Central-difference gradient of the scalar function ``f`` at ``x``, in float64.

    Costs ``2 * x.size`` evaluations of ``f``. ``step`` defaults to :func:`default_step`.
    ``x`` is copied and never modified.

    >>> import numpy as np
    >>> g = numerical_gradient(lambda x: float(np.sum(x ** 3)), np.array([1.0, -2.0]))
    >>> np.allclose(g, [3.0, 12.0])
    True
    """
    x = _as_float64(x, "x")
    steps = np.broadcast_to(default_step(x) if step is None else np.asarray(step, np.float64), x.shape)
    grad = np.empty_like(x)
    flat_x, flat_steps, flat_grad = x.reshape(-1), steps.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        original, h = flat_x[i], flat_steps[i]
        flat_x[i] = original + h
        f_plus = _scalar(f, x)
        flat_x[i] = original - h
        f_minus = _scalar(f, x)
        flat_x[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2.0 * h)
    return grad


def numerical_jacobian(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, step: np.ndarray | float | None = None
) -> np.ndarray:
    """Central-difference Jacobian of the array-valued ``f`` at ``x``, in float64.

    Entry ``[*i, *j]`` is ``d f(x)[i] / d x[j]``: the result has shape
    ``f(x).shape + x.shape``. Costs ``2 * x.size`` evaluations of ``f``; ``x`` is not modified.

    >>> import numpy as np
    >>> J = numerical_jacobian(lambda x: x ** 2, np.array([1.0, 3.0]))
    >>> np.allclose(J, [[2.0, 0.0], [0.0, 6.0]])
    True
    """
    x = _as_float64(x, "x")
    steps = np.broadcast_to(default_step(x) if step is None else np.asarray(step, np.float64), x.shape)
    out_shape = np.shape(f(x.copy()))
    jac = np.empty((int(np.prod(out_shape)), x.size))
    flat_x, flat_steps = x.reshape(-1), steps.reshape(-1)
    for j in range(x.size):
        original, h = flat_x[j], flat_steps[j]
        flat_x[j] = original + h
        f_plus = np.asarray(f(x.copy()), dtype=np.float64).reshape(-1)
        flat_x[j] = original - h
        f_minus = np.asarray(f(x.copy()), dtype=np.float64).reshape(-1)
        flat_x[j] = original
        jac[:, j] = (f_plus - f_minus) / (2.0 * h)
    return jac.reshape(*out_shape, *x.shape)


def directional_derivative(
    f: Callable[[np.ndarray], float], x: np.ndarray, v: np.ndarray, *, step: float | None = None
) -> float:
    """Central-difference estimate of ``<grad f(x), v>``: ``(f(x + h v) - f(x - h v)) / 2h``.

    Two evaluations of ``f`` whatever the size of ``x``. ``step`` defaults to
    ``eps ** (1/3) * max(1, max|x|) / max|v|``, the coordinate step of :func:`default_step`
    spread along ``v``.
    """
    x = _as_float64(x, "x")
    v = _as_float64(v, "v")
    if v.shape != x.shape:
        raise ValueError(f"the direction v has shape {v.shape} but x has shape {x.shape}")
    v_max = float(np.max(np.abs(v))) if v.size else 0.0
    if v_max == 0.0:
        raise ValueError("the direction v is zero")
    h = float(default_step(np.max(np.abs(x)) if x.size else 0.0)) / v_max if step is None else float(step)
    return (_scalar(f, x + h * v) - _scalar(f, x - h * v)) / (2.0 * h)


def relative_error(actual: np.ndarray | float, expected: np.ndarray | float, *, floor: float = 0.0) -> float:
    """Norm-wise relative error ``||a - b|| / max(||a||, ||b||, floor)``.

    Symmetric in its arguments, 0 for identical arrays, at most 2, and 1 when one side is
    zero and the other is not. ``floor`` keeps two tiny arrays (both noise) from reporting
    a large relative error; with the default 0, two zero arrays have relative error 0.
    """
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    diff = float(np.linalg.norm((a - b).ravel()))
    scale = max(float(np.linalg.norm(a.ravel())), float(np.linalg.norm(b.ravel())), float(floor))
    if scale == 0.0:
        return 0.0
    return diff / scale


@dataclass(frozen=True)
class GradientReport:
    """What a passing gradient check measured, for printing in the book."""

    name: str
    method: str
    relative_error: float
    tolerance: float
    evaluations: int

    def __str__(self) -> str:
        return (
            f"{self.name}: relative error {self.relative_error:.1e} "
            f"(tolerance {self.tolerance:.0e}, {self.method}, {self.evaluations} evaluations of f)"
        )


def _gradient_as_float64(grad: object, shape: tuple[int, ...], name: str) -> np.ndarray:
    name = _shown(name)
    if not isinstance(grad, np.ndarray | np.floating | float | int) or isinstance(grad, bool):
        fail(_("{name} should be a NumPy array of shape {shape}, but it is a {type}.").format(
            name=name, shape=shape, type=type(grad).__name__))
    arr = np.asarray(grad)
    if arr.shape != shape:
        fail(_("{name} has shape {actual}, but the gradient of a function of an array of shape {shape} has that "
               "same shape {shape}.").format(name=name, actual=arr.shape, shape=shape))
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        fail(_("{name} has dtype {dtype}; a gradient must hold real floating-point numbers.").format(
            name=name, dtype=arr.dtype))
    arr = np.array(arr, dtype=np.float64, copy=True)
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        fail(_("{name} contains {count} non-finite value(s) (nan or inf), the first at index {index}. A gradient "
               "at a finite point of a smooth function is finite: look for an overflow (exp of a large number) or "
               "a division by zero.").format(name=name, count=int(bad.sum()), index=format_index(first)))
    return arr


_TRANSPOSITION = re.compile(r"\[[a-z0-9-]*transpos[a-z0-9-]*\]")
"""A line that names (in brackets) a known mistake whose id says it is a transposition, such as
``[gradient-transposed]``. Mistake ids are the same in every language."""


def _names_a_transposition(line: str) -> bool:
    """Whether a line of a diagnosis names a transposed result: the checks of Jacobians and of directional
    derivatives leave such lines out (see :func:`_diagnose_gradient`)."""
    return _TRANSPOSITION.search(line) is not None


def _agree(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> tuple[bool, float]:
    """``||a - e|| <= rtol * max(||a||, ||e||) + atol``, and the relative error ``||a - e|| / max(...)``.

    ``atol`` is the round-off level of the numerical derivatives: below it, two gradients
    cannot be told apart (a saturated softmax has gradients of 1e-12 and less).
    """
    diff = float(np.linalg.norm((actual - expected).ravel()))
    scale = max(float(np.linalg.norm(actual.ravel())), float(np.linalg.norm(expected.ravel())))
    return diff <= rtol * scale + atol, (diff / scale if scale > 0 else 0.0)


def _candidate_values(candidate: Candidates) -> list[np.ndarray]:
    """The arrays a mistake would produce; candidates that cannot be built are skipped."""
    values = []
    for item in candidate if isinstance(candidate, list | tuple) else [candidate]:
        try:
            values.append(np.asarray(item() if callable(item) else item, dtype=np.float64))
        except Exception:  # this wrong implementation cannot even run on this input
            continue
    return values


def _diagnose_gradient(
    actual: np.ndarray,
    expected: np.ndarray,
    candidates: Mapping[Mistake, Candidates] | None,
    rtol: float,
    floor: float,
    batch_size: int | None,
    what: str = N_("gradient"),
    explain: Explain | None = None,
    project: Callable[[np.ndarray], np.ndarray] = lambda value: value,
    transposes: bool = True,
) -> list[str]:
    """Explanations for a wrong gradient: named mistakes first, then generic patterns.

    ``what`` (English, marked for the catalogue) is shown in the reader's language. With
    ``transposes=False`` no line says that the result is transposed: neither the generic pattern nor
    a known mistake whose id names a transposition (:func:`_names_a_transposition`; ids are the same
    in every language, so every language leaves out the same lines). The checks of Jacobians and of
    directional derivatives pass it: the Jacobian of a row-wise function such as softmax is
    symmetric, so its transpose is no evidence, and directional derivatives see projections of the
    gradient, not the matrix.
    """
    lines: list[str] = []
    if explain is not None:
        lines += explain(actual, expected, project, lambda a, b: _agree(a, b, max(rtol, 1e-4), floor)[0])
    for mistake, candidate in (candidates or {}).items():
        for value in _candidate_values(candidate):
            if value.shape == actual.shape and _agree(actual, value, max(rtol, 1e-4), floor)[0]:
                if not _agree(expected, value, max(rtol, 1e-4), floor)[0]:  # it must differ from right
                    lines.append(mistake.describe())
                    break
    if lines:
        return lines if transposes else [line for line in lines if not _names_a_transposition(line)]
    what = _(what)
    if np.linalg.norm(actual) <= floor:
        lines.append(_("Your {what} is zero (or numerically zero) everywhere, but the true {what} is not: check "
                       "that the function computes and returns the {what}, not a placeholder.").format(what=what))
        return lines
    # Is the whole gradient a multiple of the right one? Fit c in actual = c * expected.
    denom = float(np.vdot(expected, expected))
    if denom > 0:
        c = float(np.vdot(actual, expected)) / denom
        if relative_error(actual, c * expected, floor=floor) <= 1e-3 and abs(c - 1) > 1e-3:
            if abs(c + 1) <= 1e-3:
                lines.append(_("Your {what} is exactly the negative of the correct one: a sign is flipped.").format(
                    what=what))
            else:
                hint = ""
                if batch_size:
                    if abs(c - batch_size) <= 1e-3 * batch_size:
                        hint = _(" That is the batch size N = {batch_size}: a missing division by N?").format(
                            batch_size=batch_size)
                    elif abs(c * batch_size - 1) <= 1e-3:
                        hint = _(" That is 1/N for the batch size N = {batch_size}: divided by N once too "
                                 "often?").format(batch_size=batch_size)
                lines.append(_("Your {what} is the correct one multiplied by {factor:.6g}.{hint}").format(
                    what=what, factor=c, hint=hint))
    if transposes and actual.ndim == 2 and actual.shape[0] == actual.shape[1]:
        if relative_error(actual, expected.T, floor=floor) <= 1e-3:
            lines.append(_("Your {what} is the transpose of the correct one.").format(what=what))
    return lines


def check_gradient(
    f: Callable[[np.ndarray], float],
    grad: np.ndarray,
    x: np.ndarray,
    *,
    name: str = _GRADIENT,
    rtol: float = GRADIENT_RTOL,
    mistakes: Mapping[Mistake, Candidates] | None = None,
    explain: Explain | None = None,
    batch_size: int | None = None,
    directions: int = 6,
    coordinates: int = 6,
    seed: int = 0,
) -> GradientReport:
    """Check an analytic gradient ``grad`` of the trusted scalar function ``f`` at ``x``.

    Small inputs (up to 512 entries) are compared with the full central-difference
    gradient; larger ones with :func:`check_directional_derivatives`. Raises
    :class:`AssertionError` with a message that says where the worst entries are, how
    large the relative error is, and which known mistake the gradient looks like:
    ``mistakes`` maps :class:`~softgrad.mistakes.Mistake` objects to the gradient that
    mistake would produce here (an array, a function returning one, or a list of such);
    ``batch_size``
    lets the message recognise a gradient that is off by a factor N. ``explain`` (see
    :data:`Explain`) replaces the plain matching of ``mistakes`` with a caller's own rules: the
    course's checks pass one that also calls the student's function on other inputs.

    Returns a :class:`GradientReport` when the gradient is right.
    """
    __tracebackhide__ = True
    x = _as_float64(x, "x")
    actual = _gradient_as_float64(grad, x.shape, name)
    if x.size > FULL_GRADIENT_MAX_SIZE:
        return check_directional_derivatives(
            f, actual, x, name=name, rtol=rtol, mistakes=mistakes, explain=explain, batch_size=batch_size,
            directions=directions, coordinates=coordinates, seed=seed,
        )
    step = default_step(x)
    expected = numerical_gradient(f, x, step=step)
    floor = roundoff_floor(_scalar(f, x), float(np.min(step))) * np.sqrt(x.size)
    agree, error = _agree(actual, expected, rtol, floor)
    if not agree:
        rows = _failures.worst_entries(actual, expected, count=3)
        message = [
            _("{name} does not match the numerical gradient (central differences in float64).").format(
                name=_shown(name)),
            _("  Relative error {error:.2e}; a correct gradient gives about 4e-11, the limit is {rtol:.0e} (plus "
              "{floor:.0e} in absolute terms for round-off).").format(error=error, rtol=rtol, floor=floor),
            _("  Largest differences (the numerical gradient is the expected value):"),
            *(f"    {row}" for row in rows),
        ]
        diagnosis = _diagnose_gradient(actual, expected, mistakes, rtol, floor, batch_size, explain=explain)
        message += [f"  {line}" for line in diagnosis]
        fail("\n".join(message))
    return GradientReport(name, "full central differences", error, rtol, 2 * x.size)


def check_directional_derivatives(
    f: Callable[[np.ndarray], float],
    grad: np.ndarray,
    x: np.ndarray,
    *,
    name: str = _GRADIENT,
    rtol: float = GRADIENT_RTOL,
    mistakes: Mapping[Mistake, Candidates] | None = None,
    explain: Explain | None = None,
    batch_size: int | None = None,
    directions: int = 6,
    coordinates: int = 6,
    seed: int = 0,
) -> GradientReport:
    """Check ``grad`` along random unit directions and at a few random coordinates.

    For each of ``directions`` random unit vectors ``v`` (Gaussian, normalised), compare
    ``<grad, v>`` with a central difference along ``v``; then compare ``coordinates``
    randomly chosen entries of ``grad`` with coordinate differences. The directional
    values are compared as one vector, with the norm-wise :func:`relative_error`, so a
    gradient that is off by a factor ``c`` shows a relative error of ``|1 - c| / max(1, |c|)``.
    Costs ``2 * (directions + coordinates)`` evaluations of ``f`` whatever the size of ``x``.
    """
    __tracebackhide__ = True
    x = _as_float64(x, "x")
    actual = _gradient_as_float64(grad, x.shape, name)
    rng = np.random.default_rng(seed)
    f_x = _scalar(f, x)

    vs = rng.standard_normal((directions, *x.shape))
    vs /= np.linalg.norm(vs.reshape(directions, -1), axis=1).reshape(directions, *([1] * x.ndim))
    numeric_dirs = np.array([directional_derivative(f, x, v) for v in vs])
    analytic_dirs = np.array([float(np.vdot(actual, v)) for v in vs])

    flat_indices = rng.choice(x.size, size=min(coordinates, x.size), replace=False)
    indices = [tuple(int(i) for i in np.unravel_index(k, x.shape)) for k in flat_indices]
    numeric_coords, analytic_coords = [], []
    for index in indices:
        e = np.zeros_like(x)
        e[index] = 1.0
        h = float(default_step(x[index]))
        numeric_coords.append(directional_derivative(f, x, e, step=h))
        analytic_coords.append(actual[index])

    numeric = np.concatenate([numeric_dirs, numeric_coords])
    analytic = np.concatenate([analytic_dirs, analytic_coords])
    floor = roundoff_floor(f_x, float(default_step(np.min(np.abs(x))))) * np.sqrt(numeric.size)
    agree, error = _agree(analytic, numeric, rtol, floor)
    if not agree:
        message = [
            _("{name} does not match numerical derivatives of the loss (float64 central differences along "
              "{directions} random directions and at {entries} random entries).").format(
                name=_shown(name), directions=directions, entries=len(indices)),
            _("  Relative error {error:.2e}; a correct gradient gives about 4e-11, the limit is {rtol:.0e} (plus "
              "{floor:.0e} in absolute terms for round-off).").format(error=error, rtol=rtol, floor=floor),
        ]
        for k in range(min(3, directions)):
            # TRANSLATORS: <yours, v> is the inner product of the student's gradient with the random direction v
            message.append(_("    direction {k}: <yours, v> = {mine:.6g}, numerical = {numerical:.6g}").format(
                k=k, mine=analytic_dirs[k], numerical=numeric_dirs[k]))
        for index, a, n in list(zip(indices, analytic_coords, numeric_coords, strict=True))[:3]:
            message.append(_("    entry {index}: yours {mine:.6g}, numerical {numerical:.6g}").format(
                index=format_index(index), mine=a, numerical=n))
        # Project the candidates on the same directions and coordinates to name a mistake.
        projected: dict[Mistake, Candidates] = {}
        for mistake, candidate in (mistakes or {}).items():
            projected[mistake] = [_projector(value, vs, indices) for value in _candidate_values(candidate)]
        diagnosis = _diagnose_gradient(analytic, numeric, projected, rtol, floor, batch_size, explain=explain,
                                       project=_projection(vs, indices), transposes=False)
        message += [f"  {line}" for line in diagnosis]
        fail("\n".join(message))
    return GradientReport(name, "directional derivatives", error, rtol, 2 * (directions + len(indices)))


def _projection(vs: np.ndarray, indices: list[tuple[int, ...]]) -> Callable[[np.ndarray], np.ndarray]:
    """A full gradient as the directional derivatives and coordinates that a check compared."""

    def project(value: np.ndarray) -> np.ndarray:
        if value.shape != vs.shape[1:]:
            raise ValueError("a candidate of another shape cannot match")
        return np.array([float(np.vdot(value, v)) for v in vs] + [float(value[i]) for i in indices])

    return project


def _projector(value: np.ndarray, vs: np.ndarray, indices: list[tuple[int, ...]]) -> Callable[[], np.ndarray]:
    def project() -> np.ndarray:
        if value.shape != vs.shape[1:]:
            raise ValueError("a candidate of another shape cannot match")
        dirs = [float(np.vdot(value, v)) for v in vs]
        return np.array(dirs + [float(value[i]) for i in indices])

    return project


def check_jacobian(
    f: Callable[[np.ndarray], np.ndarray],
    jacobian: np.ndarray,
    x: np.ndarray,
    *,
    name: str = _JACOBIAN,
    rtol: float = GRADIENT_RTOL,
    mistakes: Mapping[Mistake, Candidates] | None = None,
    explain: Explain | None = None,
) -> GradientReport:
    """Check an analytic Jacobian of the trusted array function ``f`` at ``x``.

    ``x`` has shape ``(..., n)`` and ``f`` maps each row (the last axis, shape ``(n,)``) to a
    row of the same length, as softmax does; ``jacobian`` has shape ``(..., n, n)`` with
    ``jacobian[..., i, j] = d f(row)[i] / d row[j]``. Each row's Jacobian is compared with
    :func:`numerical_jacobian`; messages and ``mistakes`` work as in :func:`check_gradient`.
    """
    __tracebackhide__ = True
    x = _as_float64(x, "x")
    if x.ndim == 0:
        raise ValueError("x needs at least one axis")
    n = x.shape[-1]
    actual = _gradient_as_float64(jacobian, (*x.shape, n), name)
    rows = x.reshape(-1, n)
    expected = np.stack([numerical_jacobian(f, row) for row in rows]).reshape(actual.shape)
    f_scale = max((float(np.max(np.abs(f(row)))) for row in rows), default=1.0)
    floor = roundoff_floor(f_scale, float(np.min(default_step(x)))) * np.sqrt(actual.size)
    agree, error = _agree(actual, expected, rtol, floor)
    if not agree:
        message = [
            _("{name} does not match the numerical Jacobian (central differences in float64).").format(
                name=_shown(name)),
            _("  Relative error {error:.2e}; a correct Jacobian gives about 4e-11, the limit is {rtol:.0e} (plus "
              "{floor:.0e} in absolute terms for round-off).").format(error=error, rtol=rtol, floor=floor),
            _("  Largest differences (the numerical Jacobian is the expected value):"),
            *(f"    {row}" for row in _failures.worst_entries(actual, expected, count=3)),
        ]
        diagnosis = _diagnose_gradient(actual, expected, mistakes, rtol, floor, None, what=N_("Jacobian"),
                                       explain=explain, transposes=False)
        message += [f"  {line}" for line in diagnosis]
        fail("\n".join(message))
    return GradientReport(name, "full central differences", error, rtol, 2 * x.size)
