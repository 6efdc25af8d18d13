"""Checks for problem set 7: softmax and cross-entropy written as Triton kernels.

The graded functions are launchers: ``triton_softmax(x, block_size)`` and
``fused_cross_entropy(logits, target, block_size)`` take PyTorch tensors, allocate their outputs
and launch the student's ``@triton.jit`` kernel. Under Triton's interpreter (``TRITON_INTERPRET=1``,
no GPU) the kernels run on CPU tensors; with a CUDA GPU they are compiled and the tensors live on
it. The checks work the same way in both cases. While the student's launcher runs, they watch it
from the inside:

* **Launches.** Every launch of a ``@triton.jit`` function (through ``kernel[grid](...)``, an
  autotuner or ``kernel.run``) is counted; a call must launch exactly one kernel. Launches of the
  course's own kernels (:mod:`softgrad.gpu`) are not the student's work.
* **Forbidden calls.** PyTorch's softmax, log-softmax, log-sum-exp and losses, autograd, and
  ``torch.exp`` on a tensor as large as the input are replaced, for the duration of the call, by
  recorders that call the original and note the call (in their modules, on ``torch.Tensor``, and
  wherever the student's namespace binds them by name); so is ``.numpy()``, which works only
  for tensors in CPU memory. Calls made while a kernel runs (the interpreter's own) do not count.
* **Guard zones.** Every input is the start of a larger buffer whose remaining entries hold
  :data:`softgrad.mistakes.kernels.GUARD_VALUE`, so that a load past the end of the last row reads
  a known number; every tensor the launcher allocates (``torch.empty``, ``empty_like``, ``zeros``,
  ...) is likewise placed at the start of a larger buffer filled with a canary, so that a store
  past the end of the last row is found after the call.

Then they compare with the course's float64 reference (:mod:`softgrad.reference`, computed from
the inputs, never from the student's code), under a tolerance derived from the arithmetic (float32
inside for float16, bfloat16 and float32 data, float64 for float64, plus the rounding of the
output's dtype), and name the known mistake (:mod:`softgrad.mistakes.kernels`) that reproduces a
wrong result. A fully masked row (every entry ``-inf``) has softmax 0 (as FlashAttention's output)
and, in the cross-entropy, loss 0 and gradient 0: padding.

Triton and PyTorch are needed; they are imported when this module is, with :mod:`softgrad.gpu`,
which under the interpreter makes each launch patch ``triton.language`` once (a third of the
interpreter's time otherwise: ``softgrad.gpu._patch_each_grid_once``).
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from softgrad import gpu, reference
from softgrad._failures import fail, format_pair
from softgrad.i18n import N_, _, ngettext
from softgrad.mistakes import (
    DTYPE_NOT_KEPT,
    GRADIENT_TRANSPOSED,
    HOST_ROUND_TRIP,
    KERNEL_LAUNCHES,
    KERNEL_ROW_STRIDE,
    KERNEL_STORE_PAST_END,
    KERNEL_WORK_OUTSIDE,
    MUTATES_INPUT,
    Mistake,
    suspects,
)
from softgrad.mistakes.kernels import GUARD_VALUE
from softgrad.testing.core import _case, _matches, worst_entries
from softgrad.testing.diagnosis import Evidence, name_mistakes
from softgrad.testing.gradients import check_loss_and_gradients
from softgrad.testing.pytorch import _patched, describe_tensor
from softgrad.testing.rerun import watched_only_in_kernel

__all__ = [
    "KernelWatch",
    "check_fused_cross_entropy",
    "check_fused_cross_entropy_gradient",
    "check_triton_softmax",
    "guarded",
    "reference_cross_entropy",
    "reference_softmax",
    "watching_kernels",
]

# The originals, captured when the module is imported: the guard zones are made with these, so that
# the recorders (and anything a notebook rebinds later) never stand in for them.
_EMPTY = torch.empty
_FULL = torch.full

# Unit of the output's rounding (machine epsilon) of each floating dtype.
_EPS = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10, torch.float32: 2.0**-23, torch.float64: 2.0**-52}

# What a launcher must not call: (owner, attribute, name shown to students). The first list always
# counts; the second only on a tensor with at least as many entries as the graded input.
_FORBIDDEN = [
    (torch, "softmax", "torch.softmax"),
    (torch, "log_softmax", "torch.log_softmax"),
    (torch, "logsumexp", "torch.logsumexp"),
    (torch.special, "softmax", "torch.special.softmax"),
    (torch.special, "log_softmax", "torch.special.log_softmax"),
    (torch.special, "logsumexp", "torch.special.logsumexp"),
    (F, "softmax", "F.softmax"),
    (F, "log_softmax", "F.log_softmax"),
    (F, "cross_entropy", "F.cross_entropy"),
    (F, "nll_loss", "F.nll_loss"),
    (torch.Tensor, "softmax", "Tensor.softmax"),
    (torch.Tensor, "log_softmax", "Tensor.log_softmax"),
    (torch.Tensor, "logsumexp", "Tensor.logsumexp"),
    (torch.autograd, "grad", "torch.autograd.grad"),
    (torch.autograd, "backward", "torch.autograd.backward"),
    (torch.Tensor, "backward", "Tensor.backward"),
]
_FORBIDDEN_ON_THE_INPUT = [
    (torch, "exp", "torch.exp"),
    (torch.Tensor, "exp", "Tensor.exp"),
    (torch.Tensor, "exp_", "Tensor.exp_"),
    (torch.special, "exp2", "torch.special.exp2"),
    (torch, "exp2", "torch.exp2"),
]
_HOST_ONLY = [
    (torch.Tensor, "numpy", "Tensor.numpy()"),
    (torch.Tensor, "__array__", "np.asarray(tensor)"),
]
# The allocations whose results get a guard zone after them.
_ALLOCATORS = [
    (torch, "empty"), (torch, "empty_like"), (torch, "zeros"), (torch, "zeros_like"), (torch, "ones"),
    (torch, "ones_like"), (torch, "full"), (torch, "full_like"),
    (torch.Tensor, "new_empty"), (torch.Tensor, "new_zeros"), (torch.Tensor, "new_ones"), (torch.Tensor, "new_full"),
]
_CANARY = {torch.float16: -1234.5, torch.bfloat16: -1234.0, torch.float32: -1234.5, torch.float64: -1234.5,
           torch.int32: -123456789, torch.int64: -123456789}
_GUARD_ENTRIES = 4096  # after every allocation: more than any block a test's rows need


def _runners() -> list[type]:
    """The classes whose ``run`` launches a kernel: compiled, interpreted, autotuned."""
    found = []
    with contextlib.suppress(ImportError):
        from triton.runtime.jit import JITFunction

        found.append(JITFunction)
    with contextlib.suppress(ImportError):
        from triton.runtime.interpreter import InterpretedFunction

        found.append(InterpretedFunction)
    with contextlib.suppress(ImportError):
        from triton.runtime.autotuner import Autotuner, Heuristics

        found += [Autotuner, Heuristics]
    return found


def _course_kernels() -> dict[int, str]:
    """The course's own kernels (softgrad.gpu), by identity: launching one is not the student's work."""
    names = ("softmax_kernel", "softmax_one_block_kernel", "cross_entropy_kernel")
    return {id(getattr(gpu, name)): f"softgrad.gpu.{name}" for name in names if hasattr(gpu, name)}


# ---- inputs with a guard zone --------------------------------------------------------------------

def guarded(x: torch.Tensor, *, layout: str = "contiguous") -> torch.Tensor:
    """A copy of ``x`` that is the start of a larger buffer; the rest holds :data:`GUARD_VALUE`.

    ``layout``: ``"contiguous"``; ``"slice"`` (the first columns of a wider tensor, whose extra columns
    hold the guard value: the row stride is larger than a row); ``"transposed"`` (stored column by
    column, ``x.t().contiguous().t()``).
    """
    if layout == "slice":
        rows = x.reshape(-1, x.shape[-1])
        extra = 8 + x.shape[-1] // 3
        wide = guarded(_FULL((rows.shape[0], rows.shape[1] + extra), GUARD_VALUE, dtype=x.dtype, device=x.device))
        wide[:, : rows.shape[1]] = rows
        return wide[:, : rows.shape[1]].reshape(x.shape) if x.ndim == 2 else wide[:, : rows.shape[1]]
    if layout == "transposed":
        if x.ndim != 2:
            raise ValueError("a transposed layout needs a 2-D tensor")
        return guarded(x.t().contiguous()).t()
    if layout != "contiguous":
        raise ValueError(f"layout must be 'contiguous', 'slice' or 'transposed', got {layout!r}")
    n = max(x.shape[-1] if x.ndim else 1, 1)
    pad = (1 << (n - 1).bit_length()) + 64
    buffer = _FULL((x.numel() + pad,), GUARD_VALUE, dtype=x.dtype, device=x.device)
    view = buffer[: x.numel()].view(x.shape)
    view.copy_(x)
    return view


# ---- the float64 reference, with the course's convention for fully masked rows --------------------

def _masked_rows(z: np.ndarray) -> np.ndarray:
    return np.all(z == -np.inf, axis=-1)


def reference_softmax(z: np.ndarray) -> np.ndarray:
    """``reference.softmax`` along the last axis in float64, with 0 for a fully masked row (not nan)."""
    z = np.asarray(z, dtype=np.float64)
    masked = _masked_rows(z)
    safe = np.where(masked[..., None], 0.0, z)
    return np.where(masked[..., None], 0.0, reference.softmax(safe, axis=-1))


def reference_cross_entropy(logits: np.ndarray, target: np.ndarray, block_size: int | None = None) -> float:
    """The mean cross-entropy in float64, a fully masked row counting 0 (and N counting all rows).

    ``block_size`` is accepted and ignored, so that the trusted loss takes the graded arguments."""
    z = np.asarray(logits, dtype=np.float64)
    target = np.asarray(target)
    masked = _masked_rows(z)
    safe = np.where(masked[:, None], 0.0, z)
    with np.errstate(invalid="ignore"):
        rows = reference.logsumexp(safe) - safe[np.arange(len(target)), target]
    return float(np.sum(np.where(masked, 0.0, rows)) / z.shape[0])


def _reference_gradient(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    masked = _masked_rows(z)
    safe = np.where(masked[:, None], 0.0, z)
    return np.where(masked[:, None], 0.0, reference.cross_entropy_grad(safe, np.asarray(target)))


# ---- watching the launcher -----------------------------------------------------------------------

@dataclass
class KernelWatch:
    """What a launcher did while it ran: its launches, its forbidden calls, its allocations."""

    threshold: int = 0  # exp on a tensor this large is work on the whole input
    launches: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    host: list[str] = field(default_factory=list)
    zones: list[tuple[torch.Tensor, int, torch.Tensor]] = field(default_factory=list)
    depth: int = 0  # > 0 while a kernel runs: the interpreter's own calls do not count

    def overwritten(self) -> list[str]:
        """The allocations whose guard zone was written: ``"(shape), dtype: k entries"``."""
        found = []
        for buffer, numel, canary in self.zones:
            written = buffer[numel:] != canary
            if bool(written.any()):
                count = int(written.sum())
                found.append(ngettext("a tensor of {size} entries, dtype {dtype}: {count} entry after its end",
                                      "a tensor of {size} entries, dtype {dtype}: {count} entries after its end",
                                      count).format(size=numel, dtype=buffer.dtype, count=count))
        return found


def _size(args: Sequence[object]) -> int:
    first = next((a for a in args if isinstance(a, torch.Tensor)), None)
    return 0 if first is None else first.numel()


def _recorder(original: Callable[..., object], shown: str, into: list[str], watch: KernelWatch,
              sized: bool) -> Callable[..., object]:
    def recorded(*args, **kwargs):
        if watch.depth == 0 and (not sized or _size(args) >= watch.threshold):
            into.append(shown)
        return original(*args, **kwargs)

    recorded.__wrapped__ = original
    return recorded


def _counted(original: Callable[..., object], watch: KernelWatch, course: dict[int, str]) -> Callable[..., object]:
    def run(self, *args, **kwargs):
        if watch.depth == 0 and not kwargs.get("warmup", False):
            name = getattr(getattr(self, "fn", None), "__name__", None) or type(self).__name__
            watch.launches.append(name)
            if id(self) in course:
                watch.forbidden.append(course[id(self)])
        watch.depth += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            watch.depth -= 1

    return run


def _allocating(original: Callable[..., object], watch: KernelWatch) -> Callable[..., object]:
    def allocate(*args, **kwargs):
        result = original(*args, **kwargs)
        if (watch.depth or not isinstance(result, torch.Tensor) or result.numel() == 0 or result.requires_grad
                or result.dtype not in _CANARY or not result.is_contiguous()):
            return result
        numel = result.numel()
        buffer = _EMPTY(numel + _GUARD_ENTRIES, dtype=result.dtype, device=result.device)
        buffer[numel:] = _CANARY[result.dtype]
        view = buffer[:numel].view(result.shape)
        view.copy_(result)
        watch.zones.append((buffer, numel, buffer[numel:].clone()))
        return view

    allocate.__wrapped__ = original
    return allocate


@contextlib.contextmanager
def watching_kernels(function: Callable[..., object], threshold: int) -> Iterator[KernelWatch]:
    """Watch ``function`` (a launcher) while the block runs; see the module docstring.

    ``threshold``: the number of entries of the graded input (``torch.exp`` on a tensor that large
    counts as work outside the kernel). Everything is restored on exit.
    """
    watch = KernelWatch(threshold=threshold)
    course = _course_kernels()
    student_globals = getattr(function, "__globals__", {})
    with contextlib.ExitStack() as stack:
        for runner in _runners():
            if "run" in vars(runner):
                stack.enter_context(_patched(runner, "run", _counted(vars(runner)["run"], watch, course)))
        tables = ((_FORBIDDEN, watch.forbidden, False), (_FORBIDDEN_ON_THE_INPUT, watch.forbidden, True),
                  (_HOST_ONLY, watch.host, False))
        for table, into, sized in tables:
            for owner, attribute, shown in table:
                if not hasattr(owner, attribute):
                    continue
                original = getattr(owner, attribute)
                recorder = _recorder(original, shown, into, watch, sized)
                stack.enter_context(_patched(owner, attribute, recorder))
                # `from torch import softmax` binds the original by name in the student's namespace
                for name, value in list(student_globals.items()):
                    if value is original:
                        stack.callback(student_globals.__setitem__, name, value)
                        student_globals[name] = recorder
        for owner, attribute in _ALLOCATORS:
            stack.enter_context(_patched(owner, attribute, _allocating(getattr(owner, attribute), watch)))
        yield watch


# ---- calling the student's launcher ----------------------------------------------------------------

def _cause(error: BaseException) -> BaseException:
    """The exception inside Triton's ``InterpreterError`` (or compilation error), if there is one."""
    inner = error.__cause__ or error.__context__
    return inner if inner is not None and type(error).__name__ in ("InterpreterError", "CompilationError") else error


def _student_error(what: str, error: BaseException) -> None:
    __tracebackhide__ = True
    inner = _cause(error)
    if isinstance(inner, NotImplementedError) or "NotImplementedError" in repr(error):
        fail(_("{what} raised NotImplementedError: replace `raise NotImplementedError()` with your implementation "
               "(in the kernel and in the launcher).").format(what=what), error)
    if inner is not error:
        fail(_("{what} raised {error_type} inside the kernel: {error}").format(
            what=what, error_type=type(inner).__name__, error=inner), error)
    fail(_("{what} raised {error_type}: {error}").format(what=what, error_type=type(inner).__name__, error=inner),
         error)


@dataclass
class _Run:
    value: object
    warnings: list[str]
    overwritten: list[str]


def _run(function: Callable[..., object], args: tuple, kwargs: dict, *, what: str, originals: Sequence[torch.Tensor],
         threshold: int, launches: int = 1, rejected: bool = False) -> _Run | None:
    """Call the launcher under the watch; fail for an exception, a forbidden call, a wrong number of
    launches or a modified input. With ``rejected``, an error whose message says the layout is not
    supported ("contiguous", "stride") is an acceptable answer: None is returned."""
    __tracebackhide__ = True
    inputs = [a for a in args if isinstance(a, torch.Tensor)]
    with warnings.catch_warnings(record=True) as caught, watching_kernels(function, threshold) as watch:
        warnings.simplefilter("always")
        try:
            value = function(*args, **kwargs)
        except Exception as error:
            inner = _cause(error)
            if rejected and any(word in str(inner).lower() for word in ("contiguous", "stride")):
                return None
            _fail_on_watch(watch, what)
            if rejected:
                fail(_("{what} raised {error_type}: {error}").format(
                    what=what, error_type=type(inner).__name__, error=inner) + "\n"
                     + _("  A launcher may refuse a tensor whose rows are not contiguous, but its message must say so "
                         "(mention 'contiguous' or 'stride'); or it can handle it (pass the strides to the kernel, or "
                         "call .contiguous())."), error)
            _student_error(what, error)
    _fail_on_watch(watch, what)
    if len(watch.launches) != launches:
        count = ngettext("{count} kernel launch", "{count} kernel launches", len(watch.launches)).format(
            count=len(watch.launches))
        tally = Counter(watch.launches)
        names = " (" + ", ".join(name if k == 1 else _("{name} {count} times").format(name=name, count=k)
                                 for name, k in tally.items()) + ")" if watch.launches else ""
        fail(_("{what} made {count}{names}; it must launch exactly {launches}, whatever the number of rows.").format(
            what=what, count=count, names=names, launches=launches) + "\n" + KERNEL_LAUNCHES.describe())
    for given, original in zip(inputs, originals, strict=True):
        if not torch.equal(given, original):
            fail(_("{what} modified its input: the kernel must leave the caller's tensor unchanged (store into a new "
                   "output tensor).").format(what=what) + "\n" + MUTATES_INPUT.describe())
    messages = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    return _Run(value, messages, watch.overwritten())


def _fail_on_watch(watch: KernelWatch, what: str) -> None:
    __tracebackhide__ = True
    if watch.forbidden:
        fail(_("{what} called {calls}: the kernel must do the work itself.").format(
            what=what, calls=", ".join(dict.fromkeys(watch.forbidden))) + "\n" + KERNEL_WORK_OUTSIDE.describe())
    if watch.host:
        fail(_("{what} called {calls}: that works only for tensors in CPU memory, so the same launcher fails on a "
               "GPU.").format(what=what, calls=", ".join(dict.fromkeys(watch.host))) + "\n"
             + HOST_ROUND_TRIP.describe())


def _guard_lines(run: _Run) -> list[str]:
    if not run.overwritten:
        return []
    return [_("  Your kernel wrote past the end of {tensor} (the checks place a guard zone after every tensor your "
              "launcher allocates).").format(tensor=run.overwritten[0]), KERNEL_STORE_PAST_END.describe()]


def _warning_lines(run: _Run) -> list[str]:
    if not run.warnings:
        return []
    return [_("  Warnings while it ran: {warnings}").format(warnings="; ".join(run.warnings[:3]))]


# ---- tolerances ---------------------------------------------------------------------------------------

def _allowed(dtype: torch.dtype, z: np.ndarray, expected: np.ndarray | float, divide: float = 1.0) -> np.ndarray:
    """The error allowed in a result computed in float32 (float64 for float64 data) and stored in ``dtype``.

    :func:`softgrad.testing.forward_tolerance`'s bound in the kernel's arithmetic,
    ``2 eps (2 scale + C + 2 + |expected|)`` (divided by ``divide``: N for a gradient), plus the
    rounding of the result to ``dtype``, ``2 eps_out |expected|``.
    """
    compute = _EPS[torch.float64] if dtype == torch.float64 else _EPS[torch.float32]
    finite = z[np.isfinite(z)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    size = np.abs(np.where(np.isfinite(expected), expected, 0.0))
    return 2.0 * compute * (2.0 * scale + z.shape[-1] + 2.0 + size) / divide + 2.0 * _EPS[dtype] * size


def _compare(actual: np.ndarray, expected: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Which entries are right: finite where the reference is, within ``allowed``, and equal where it is not."""
    with np.errstate(invalid="ignore"):
        return (np.isfinite(actual) == np.isfinite(expected)) & np.where(
            np.isfinite(expected), np.abs(actual - expected) <= allowed, actual == expected)


# ---- the student's launcher with NumPy in and out (for naming a mistake) -------------------------------

def _numpy_softmax(function: Callable[..., object], device: torch.device) -> Callable[..., np.ndarray]:
    """The student's launcher with NumPy in and out (for the probes of a diagnosis). It runs with its
    allocations guarded, so that a kernel that stores past the end of a row cannot corrupt memory."""

    def triton_softmax(z: np.ndarray, block_size: int = 1024) -> np.ndarray:
        x = guarded(torch.from_numpy(np.array(z, copy=True)).to(device))
        with watching_kernels(function, x.numel()):
            y = function(x, block_size=block_size)
        return y.detach().to("cpu", torch.float64).numpy()

    return triton_softmax


def _numpy_cross_entropy(function: Callable[..., object], device: torch.device) -> Callable[..., tuple]:
    """As :func:`_numpy_softmax`, for ``fused_cross_entropy``: ``(loss as a float, gradient)``."""

    def fused_cross_entropy(logits: np.ndarray, target: np.ndarray, block_size: int = 1024) -> tuple:
        z = guarded(torch.from_numpy(np.array(logits, copy=True)).to(device))
        with watching_kernels(function, z.numel()):
            loss, grad = function(z, torch.from_numpy(np.array(target, copy=True)).to(device), block_size=block_size)
        return (float(torch.as_tensor(loss).detach().to("cpu", torch.float64)),
                grad.detach().to("cpu", torch.float64).numpy())

    return fused_cross_entropy


def _kernel_data(x: torch.Tensor) -> np.ndarray:
    """The input in the kernel's arithmetic, for the reproductions: float64 stays, the rest is float32."""
    return x.detach().to("cpu", torch.float64 if x.dtype == torch.float64 else torch.float32).numpy().copy()


def _stride_candidates(x: torch.Tensor) -> list[np.ndarray]:
    """What a kernel that ignores the strides of a 2-D input reads as its rows: the entries at
    ``row * n + col`` of the storage (no strides at all), and at ``row * stride(0) + col`` (the row
    stride, with the columns taken as adjacent)."""
    if x.ndim != 2:
        return []
    n_rows, n = x.shape
    storage = torch.empty(0, dtype=x.dtype, device=x.device).set_(x.untyped_storage())
    flat = storage.to("cpu", torch.float64).numpy()[x.storage_offset():]
    found = []
    for row_stride in sorted({n, x.stride(0)}):
        index = np.arange(n_rows)[:, None] * row_stride + np.arange(n)[None, :]
        if index.max() < flat.size and not (row_stride == x.stride(0) and x.stride(1) == 1):
            found.append(flat[index])
    return found


def _what(name: str, tensors: Sequence[tuple[str, torch.Tensor]], block_size: int, case: str) -> str:
    shown = ", ".join(describe_tensor(label, t) for label, t in tensors)
    call = f"{name}({', '.join(label for label, _tensor in tensors)}, block_size={block_size})"
    return _("{call} with {inputs}").format(call=call, inputs=shown) + _case(case)


def _layout_case(layout: str) -> str:
    """The words for a layout that is not the usual one, as a test's case."""
    return {"slice": N_("a slice layout"), "transposed": N_("a transposed layout")}.get(
        layout, f"a {layout} layout") if layout != "contiguous" else ""


def _result_tensor(value: object, *, what: str, shape: tuple, dtype: torch.dtype, device: torch.device,
                   name: str, transposed: Mistake | None = None) -> torch.Tensor:
    __tracebackhide__ = True
    name = _(name)
    if not isinstance(value, torch.Tensor):
        kind = _("None (is a `return` missing?)") if value is None else _("a {type}").format(type=type(value).__name__)
        fail(_("{what} returned {kind} as {name}; it should be a tensor of shape {shape} and dtype {dtype}.").format(
            what=what, kind=kind, name=name, shape=shape, dtype=dtype))
    if tuple(value.shape) != tuple(shape):
        hint = ""
        if transposed is not None and len(shape) == 2 and tuple(value.shape) == tuple(shape)[::-1]:
            hint = "\n" + transposed.describe()
        fail(_("{what} returned {name} of shape {actual}; expected {shape}.").format(
            what=what, name=name, actual=tuple(value.shape), shape=tuple(shape)) + hint)
    if value.dtype != dtype:
        fail(_("{what} returned {name} of dtype {actual}; the kernels compute in float32 inside, but store their "
               "results in the input's dtype ({dtype}): allocate outputs with dtype=x.dtype "
               "(torch.empty_like(x)).").format(what=what, name=name, actual=value.dtype, dtype=dtype) + "\n"
             + DTYPE_NOT_KEPT.describe())
    if value.device != device:
        fail(_("{what} returned {name} on {actual}; it must be on the input's device ({device}).").format(
            what=what, name=name, actual=value.device, device=device))
    return value


# ---- the checks -----------------------------------------------------------------------------------------

def check_triton_softmax(function: Callable[..., object], x: torch.Tensor, *, block_size: int,
                         layout: str = "contiguous", case: str = "") -> None:
    """Check ``function(x, block_size=block_size)``, the student's ``triton_softmax``, on ``x``.

    In order: one kernel launch, no forbidden call, the input unchanged; the result a tensor of
    ``x``'s shape, dtype and device; its values within the tolerance of the float64 reference (a fully
    masked row: zeros); nothing written past the end of an output. ``layout`` ("slice", "transposed")
    hands the launcher a tensor whose rows are not contiguous: it may handle it or refuse it with an
    error that says so. On a wrong result the known mistake it matches is named.
    """
    __tracebackhide__ = True
    if watched_only_in_kernel(function, "check_triton_softmax"):
        return
    given = guarded(x.detach(), layout=layout)
    original = given.clone()
    what = _what("triton_softmax", [("x", given)], block_size, case or _layout_case(layout))
    run = _run(function, (given,), {"block_size": block_size}, what=what, originals=[original],
               threshold=given.numel(), rejected=layout != "contiguous")
    if run is None:
        return  # a layout the launcher refuses, with a message that says why
    y = _result_tensor(run.value, what=what, shape=tuple(x.shape), dtype=x.dtype, device=x.device,
                       name=N_("the probabilities"))
    z = _kernel_data(given)
    expected = reference_softmax(z)
    actual = y.detach().to("cpu", torch.float64).numpy()
    allowed = _allowed(x.dtype, z, expected)
    ok = _compare(actual, expected, allowed)
    if not ok.all():
        wrong = int(ok.size - ok.sum())
        lines = [ngettext("{what} is wrong in {wrong} of {count} entry.", "{what} is wrong in {wrong} of {count} "
                          "entries.", ok.size).format(what=what, wrong=wrong, count=ok.size),
                 _("  Largest differences:")]
        lines += [f"    {row}" for row in worst_entries(actual, expected, count=3, wrong=~ok)]
        lines.append(_("  (Allowed error for {dtype} data, computed in float32 inside: {allowed:.1e} at most.)").format(
            dtype=x.dtype, allowed=float(np.max(allowed))))
        lines += _warning_lines(run) + _guard_lines(run)
        tolerance = float(np.max(allowed))
        if layout != "contiguous" and any(candidate.shape == actual.shape
                                          and _matches(reference_softmax(candidate), actual, tolerance)
                                          for candidate in _stride_candidates(given)):
            lines.append(KERNEL_ROW_STRIDE.describe())
        else:
            evidence = Evidence(suspects("triton_softmax"), (z.reshape(-1, z.shape[-1]),), {"block_size": block_size},
                                student=_numpy_softmax(function, x.device))
            lines += [m.describe() for m in name_mistakes(evidence, actual.reshape(-1, z.shape[-1]),
                                                          expected.reshape(-1, z.shape[-1]),
                                                          lambda a, b: _matches(b, a, tolerance))]
        fail("\n".join(lines))
    guard = _guard_lines(run)
    if guard:
        fail(_("{what} gives the right probabilities, but:").format(what=what) + "\n" + "\n".join(guard))


def check_fused_cross_entropy(function: Callable[..., object], logits: torch.Tensor, target: torch.Tensor, *,
                              block_size: int, layout: str = "contiguous", case: str = "") -> None:
    """Check ``function(logits, target, block_size=block_size)``, the student's ``fused_cross_entropy``.

    In order: one kernel launch, no forbidden call, the inputs unchanged; ``(loss, grad)`` with the
    loss a 0-d tensor and the gradient an ``(N, C)`` tensor, both in the logits' dtype and on their
    device; the loss and then the gradient ``(softmax - onehot) / N`` within the tolerance of the
    float64 reference (a fully masked row counts 0 in both); nothing written past the end of an
    output. ``layout`` as in :func:`check_triton_softmax`. A wrong result is matched against the
    known mistakes.
    """
    __tracebackhide__ = True
    if watched_only_in_kernel(function, "check_fused_cross_entropy"):
        return
    given = guarded(logits.detach(), layout=layout)
    labels = target.detach().clone()
    originals = [given.clone(), labels.clone()]
    what = _what("fused_cross_entropy", [("logits", given)], block_size, case or _layout_case(layout))
    what = what.replace("(logits, block_size", "(logits, target, block_size")
    run = _run(function, (given, labels), {"block_size": block_size}, what=what, originals=originals,
               threshold=given.numel(), rejected=layout != "contiguous")
    if run is None:
        return
    value = run.value
    if not isinstance(value, tuple | list) or len(value) != 2:
        kind = (_("a {type} of length {length}").format(type=type(value).__name__, length=len(value))
                if isinstance(value, tuple | list) else _("a {type}").format(type=type(value).__name__))
        fail(_("{what} returned {kind}; it should return the tuple {names}.").format(
            what=what, kind=kind, names="(loss, grad)"))
    loss = _result_tensor(value[0], what=what, shape=(), dtype=logits.dtype, device=logits.device,
                          name=N_("the loss"))
    grad = _result_tensor(value[1], what=what, shape=tuple(logits.shape), dtype=logits.dtype, device=logits.device,
                          name=N_("the gradient"), transposed=GRADIENT_TRANSPOSED)
    z = _kernel_data(given)
    t = labels.to("cpu").numpy().copy()
    n = z.shape[0]
    expected_loss = reference_cross_entropy(z, t)
    expected_grad = _reference_gradient(z, t)
    actual_loss = float(loss.detach().to("cpu", torch.float64))
    actual_grad = grad.detach().to("cpu", torch.float64).numpy()
    outcome = (actual_loss, actual_grad)
    student = _numpy_cross_entropy(function, logits.device)
    stride_named = layout != "contiguous" and any(
        candidate.shape == z.shape and _matches(_reference_gradient(candidate, t), actual_grad, 1e-3)
        for candidate in _stride_candidates(given))

    allowed_loss = float(_allowed(logits.dtype, z, expected_loss))
    if not _compare(np.asarray(actual_loss), np.asarray(expected_loss), np.asarray(allowed_loss)).all():
        mine, right = format_pair(actual_loss, expected_loss)
        lines = [_("{what} is {mine}, but the correct value is {right}.").format(
                     what=_("The loss of {what}").format(what=what), mine=mine, right=right),
                 _("  (Allowed error for {dtype} data, computed in float32 inside: {allowed:.1e}.)").format(
                     dtype=logits.dtype, allowed=allowed_loss)]
        lines += _warning_lines(run) + _guard_lines(run)
        if stride_named:
            lines.append(KERNEL_ROW_STRIDE.describe())
        else:
            evidence = Evidence(suspects("fused_cross_entropy"), (z, t), {"block_size": block_size}, student=student,
                                part=0, outcome=outcome)
            lines += [m.describe() for m in name_mistakes(evidence, np.asarray(actual_loss), np.asarray(expected_loss),
                                                          lambda a, b: _matches(b, a, allowed_loss))]
        fail("\n".join(lines))

    allowed = _allowed(logits.dtype, z, expected_grad, divide=n)
    ok = _compare(actual_grad, expected_grad, allowed)
    if not ok.all():
        wrong = int(ok.size - ok.sum())
        lines = [ngettext("{what} is wrong in {wrong} of {count} entry.", "{what} is wrong in {wrong} of {count} "
                          "entries.", ok.size).format(what=_("The gradient from {what}").format(what=what), wrong=wrong,
                                                      count=ok.size) + " " + _("Largest differences:")]
        lines += [f"    {row}" for row in worst_entries(actual_grad, expected_grad, count=3, wrong=~ok)]
        lines.append(_("  (Expected {scale}(softmax(logits) - onehot(target)) / N; allowed error "
                       "{allowed:.1e}.)").format(scale="", allowed=float(np.max(allowed))))
        lines += _warning_lines(run) + _guard_lines(run)
        if stride_named:
            lines.append(KERNEL_ROW_STRIDE.describe())
        else:
            tolerance = float(np.max(allowed))
            evidence = Evidence(suspects("fused_cross_entropy"), (z, t), {"block_size": block_size}, student=student,
                                part=1, outcome=outcome)
            lines += [m.describe() for m in name_mistakes(evidence, actual_grad, expected_grad,
                                                          lambda a, b: _matches(b, a, tolerance))]
        fail("\n".join(lines))
    guard = _guard_lines(run)
    if guard:
        fail(_("{what} gives the right loss and gradient, but:").format(what=what) + "\n" + "\n".join(guard))


def check_fused_cross_entropy_gradient(function: Callable[..., object], logits: torch.Tensor, target: torch.Tensor,
                                       *, block_size: int, case: str = "") -> None:
    """The gradient of ``function`` checked numerically, as in every assignment: the kernel runs on float64
    logits, and its gradient must agree with central differences of the trusted float64 loss
    (:func:`softgrad.testing.check_loss_and_gradients`); its loss with the trusted loss."""
    __tracebackhide__ = True
    if watched_only_in_kernel(function, "check_fused_cross_entropy_gradient"):
        return
    z = logits.detach().to("cpu", torch.float64).numpy().copy()
    t = target.detach().to("cpu").numpy().copy()
    check_loss_and_gradients(_numpy_cross_entropy(function, logits.device), reference_cross_entropy, z, t, block_size,
                             name="fused_cross_entropy", wrt=(0,), output_names=(N_("the gradient"),),
                             arg_names=("logits", "target", "block_size"), batch_size=z.shape[0],
                             case=case or N_("float64 logits, against central differences of the float64 loss"))
