"""Checks for the PyTorch assignment (problem set 5): a hand-written autograd.Function and devices.

The helpers here are what the test cells of ``ps5_pytorch`` call. Like
:mod:`softgrad.testing`, they call the student's code on copies of the inputs, check a
result's type, dtype, device and graph before trusting its value, compare in float64 with
the course's NumPy reference (computed from the inputs, never from the student's code), and
name the known mistake (:mod:`softgrad.mistakes`) that reproduces a wrong result.

They also watch what the student's Function calls while it runs: PyTorch's own loss
functions and autograd (which a hand-written Function must not use) and ``.numpy()`` (which
works on the CPU and fails on a GPU) are replaced, for the duration of one call, by
recorders that call the original and note the call.

PyTorch is needed (the ``torch`` extra); it is imported when this module is.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.gradcheck import GradcheckError

from softgrad import reference
from softgrad._failures import fail, format_value, worst_entries
from softgrad.gradcheck import numerical_gradient
from softgrad.mistakes import (
    BACKWARD_GRAD_FOR_TARGET,
    DEVICE_PREFERENCE,
    DTYPE_NOT_KEPT,
    FORBIDDEN_CALL_IN_FUNCTION,
    FUNCTION_NOT_APPLIED,
    GRADIENT_TRANSPOSED,
    HOST_ROUND_TRIP,
    MUTATES_INPUT,
    suspects,
)
from softgrad.testing.core import _matches
from softgrad.testing.diagnosis import Evidence, name_mistakes
from softgrad.torchtools import pick_device

__all__ = [
    "check_gradcheck",
    "check_pick_device",
    "check_softmax_cross_entropy",
    "describe_tensor",
    "watching_calls",
]

# The originals, captured when the module is imported: the checks themselves use these,
# so that the recorders (and anything a notebook rebinds later) never stand in for them.
_AUTOGRAD_BACKWARD = torch.autograd.backward
_GRADCHECK = torch.autograd.gradcheck

# What a hand-written Function must not call, as (owner, attribute, name shown to students).
_FORBIDDEN = [
    (F, "cross_entropy", "F.cross_entropy"),
    (F, "nll_loss", "F.nll_loss"),
    (F, "log_softmax", "F.log_softmax"),
    (torch, "log_softmax", "torch.log_softmax"),
    (torch.special, "log_softmax", "torch.special.log_softmax"),
    (torch.Tensor, "log_softmax", "Tensor.log_softmax"),
    (torch.autograd, "grad", "torch.autograd.grad"),
    (torch.autograd, "backward", "torch.autograd.backward"),
    (torch.Tensor, "backward", "Tensor.backward"),
]
# What works on the CPU only: a Function that calls these fails on a GPU.
_HOST_ONLY = [
    (torch.Tensor, "numpy", "Tensor.numpy()"),
    (torch.Tensor, "__array__", "np.asarray(tensor)"),
]


def describe_tensor(name: str, x: torch.Tensor) -> str:
    """``logits of shape (4, 3), dtype torch.float64 on cpu, values in [-1000, 2]`` (for messages)."""
    text = f"{name} of shape {tuple(x.shape)}, dtype {x.dtype} on {x.device}"
    if x.numel() and not x.dtype.is_complex:
        values = x.detach().to("cpu", torch.float64)
        text += f", values in [{format_value(float(values.min()))}, {format_value(float(values.max()))}]"
    return text


@dataclass
class _Watch:
    """What the student's Function called, and what its backward returned."""

    phase: str = ""  # "forward" or "backward" while the Function's own code runs
    forbidden: list[tuple[str, str]] = field(default_factory=list)
    host: list[tuple[str, str]] = field(default_factory=list)
    forward_calls: int = 0
    backward_outputs: list[object] = field(default_factory=list)

    def calls(self, kind: list[tuple[str, str]]) -> str:
        return ", ".join(f"{name} (in {phase})" for phase, name in dict.fromkeys(kind))


def _recorder(original: Callable[..., object], shown: str, into: list[tuple[str, str]],
              watch: _Watch) -> Callable[..., object]:
    def recorded(*args, **kwargs):
        if watch.phase:  # only calls made by the Function's forward or backward count
            into.append((watch.phase, shown))
        return original(*args, **kwargs)

    recorded.__wrapped__ = original
    return recorded


@contextlib.contextmanager
def _patched(owner: object, attribute: str, value: object) -> Iterator[None]:
    had_own = attribute in vars(owner)
    original = vars(owner)[attribute] if had_own else None
    setattr(owner, attribute, value)
    try:
        yield
    finally:
        if had_own:
            setattr(owner, attribute, original)
        else:
            delattr(owner, attribute)


@contextlib.contextmanager
def watching_calls(function_class: type) -> Iterator[_Watch]:
    """Watch ``function_class`` (a ``torch.autograd.Function``) while the block runs.

    Its ``forward`` and ``backward`` are wrapped so that the watch knows which one is
    running and what ``backward`` returned; the forbidden functions (PyTorch's losses,
    log-softmax and autograd) and the CPU-only conversions (``.numpy()``) are replaced by
    recorders, in their modules and wherever the student's module has imported them by
    name. Everything is restored on exit.
    """
    watch = _Watch()
    forward = vars(function_class).get("forward")
    backward = vars(function_class).get("backward")
    if not isinstance(forward, staticmethod) or not isinstance(backward, staticmethod):
        fail(f"{function_class.__name__} must define forward and backward as @staticmethod methods, "
             "as a torch.autograd.Function does.")

    def watched_forward(*args, **kwargs):
        watch.forward_calls += 1
        watch.phase = "forward"
        try:
            return forward.__func__(*args, **kwargs)
        finally:
            watch.phase = ""

    def watched_backward(*args, **kwargs):
        watch.phase = "backward"
        try:
            result = backward.__func__(*args, **kwargs)
        finally:
            watch.phase = ""
        watch.backward_outputs.append(result)
        return result

    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(function_class, "forward", staticmethod(watched_forward)))
        stack.enter_context(_patched(function_class, "backward", staticmethod(watched_backward)))
        # the notebook's namespace (once, even when forward and backward share it)
        student_globals = list({id(m.__globals__): m.__globals__ for m in (forward.__func__, backward.__func__)}
                               .values())
        for table, into in ((_FORBIDDEN, watch.forbidden), (_HOST_ONLY, watch.host)):
            for owner, attribute, shown in table:
                original = getattr(owner, attribute)
                recorder = _recorder(original, shown, into, watch)
                stack.enter_context(_patched(owner, attribute, recorder))
                # `from torch.nn.functional import cross_entropy` binds the original by name
                for namespace in student_globals:
                    for name, value in list(namespace.items()):
                        if value is original:
                            stack.callback(namespace.__setitem__, name, value)
                            namespace[name] = recorder
        yield watch


def _fail_on_watched_calls(watch: _Watch, what: str) -> None:
    __tracebackhide__ = True
    if watch.forbidden:
        fail(f"{what} called {watch.calls(watch.forbidden)}: the forward and the backward must be written by "
             "hand.\n" + FORBIDDEN_CALL_IN_FUNCTION.describe())
    if watch.host:
        fail(f"{what} called {watch.calls(watch.host)}: that works only for tensors in CPU memory, so the "
             "same code fails on a GPU.\n" + HOST_ROUND_TRIP.describe())


def _student_error(what: str, error: BaseException) -> None:
    __tracebackhide__ = True
    if isinstance(error, NotImplementedError):
        fail(f"{what} raised NotImplementedError: replace `raise NotImplementedError()` with your "
             "implementation.", error)
    fail(f"{what} raised {type(error).__name__}: {error}", error)


def _reference_inputs(logits: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return (logits.detach().to("cpu", torch.float64).numpy().copy(),
            target.detach().to("cpu").numpy().copy())


# Unit roundoff of each floating dtype (bfloat16 has 8 significant bits, float16 11).
_EPS = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10, torch.float32: 2.0**-23, torch.float64: 2.0**-52}


def _tolerance(dtype: torch.dtype, logits: np.ndarray, factor: float, expected: float = 0.0) -> float:
    """The error allowed in a loss or a gradient entry computed in ``dtype``, times ``|factor|``.

    :func:`softgrad.testing.forward_tolerance`'s bound, ``2 eps (2 scale + C + 2 + |expected|)``,
    with ``scale`` the largest logit magnitude, ``C`` the number of classes and ``expected``
    the value itself (its own rounding): the gradient ``(p - q) / N`` inherits the absolute
    error of the probabilities, the loss that of a log-softmax.
    """
    if dtype not in _EPS:
        raise TypeError(f"the logits must be a floating tensor, not {dtype}")
    scale = float(np.max(np.abs(logits))) if logits.size else 0.0
    return abs(factor) * 2.0 * _EPS[dtype] * (2.0 * scale + logits.shape[-1] + 2.0 + abs(expected))


def check_softmax_cross_entropy(
    function: Callable[..., object],
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    function_class: type,
    grad_output: float = 1.0,
    case: str = "",
) -> None:
    """Check ``function(logits, target)`` (the student's ``softmax_cross_entropy``) forward and backward.

    In order: the call succeeds without PyTorch's losses, log-softmax, autograd or
    ``.numpy()`` inside ``function_class``; the loss is a 0-dimensional tensor of the
    logits' dtype, on their device, produced by ``function_class``'s backward node (so
    ``function`` goes through ``.apply``); the inputs are unchanged; the loss agrees with
    the float64 reference; ``(grad_output * loss).backward()`` gives ``grad_output`` times
    the reference gradient ``(softmax(logits) - onehot(target)) / N``, with the logits'
    shape, dtype and device; and backward returned ``None`` for the target.
    """
    __tracebackhide__ = True
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("check_softmax_cross_entropy needs tensors for logits and target")
    logits_np, target_np = _reference_inputs(logits, target)
    scale = f"{grad_output:g} * " if grad_output != 1.0 else ""
    what = (f"softmax_cross_entropy(logits, target) with {describe_tensor('logits', logits)}"
            + (f" ({case})" if case else ""))
    x = logits.detach().clone().requires_grad_(True)
    t = target.detach().clone()

    with warnings.catch_warnings(record=True) as caught, watching_calls(function_class) as watch:
        warnings.simplefilter("always")
        try:
            loss = function(x, t)
        except Exception as error:
            _fail_on_watched_calls(watch, what)
            _student_error(what, error)
        _fail_on_watched_calls(watch, what)
        _check_loss_tensor(loss, x, what, function_class, watch)
        upstream = torch.tensor(grad_output, dtype=loss.dtype, device=loss.device)
        try:
            _AUTOGRAD_BACKWARD(upstream * loss)
        except Exception as error:
            _fail_on_watched_calls(watch, f"The backward of {what}")
            if _transposed_gradient(error, logits):
                fail(f"({scale}loss).backward() for {what} raised {type(error).__name__}: {error}\n"
                     + GRADIENT_TRANSPOSED.describe(), error)
            _student_error(f"({scale}loss).backward() for {what}", error)
        _fail_on_watched_calls(watch, f"The backward of {what}")
    warned = "; ".join(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))

    if not torch.equal(x.detach(), logits.detach()) or not torch.equal(t, target):
        fail(f"{what} modified its input: it must leave the caller's tensors unchanged.\n"
             + MUTATES_INPUT.describe())

    known = suspects("softmax_cross_entropy")
    args = (logits_np, target_np, grad_output)
    expected_loss = reference.cross_entropy(logits_np, target_np)
    actual_loss = float(loss.detach().to("cpu", torch.float64))
    allowed = _tolerance(logits.dtype, logits_np, 1.0, expected_loss)
    if not (np.isfinite(actual_loss) and abs(actual_loss - expected_loss) <= allowed):
        lines = [f"The loss of {what} is {format_value(actual_loss)}, but the correct value is "
                 f"{format_value(expected_loss)} (PyTorch's F.cross_entropy agrees with it).",
                 f"  (Allowed error for {logits.dtype} here: {allowed:.1e}.)"]
        if warned:
            lines.append(f"  Warnings while it ran: {warned}")
        evidence = Evidence(known, args, {}, student=_numpy_version(function), part=0, rows=(0, 1))
        lines += [m.describe() for m in name_mistakes(evidence, np.asarray(actual_loss), np.asarray(expected_loss),
                                                      lambda a, b: _matches(b, a, allowed))]
        fail("\n".join(lines))

    grad = x.grad
    backward_what = f"The gradient from ({scale}loss).backward() for {what}"
    if grad is None:
        fail(f"{backward_what} is None: PyTorch received no gradient for the logits. backward must return "
             "the gradient for logits first, then None for the target.")
    if grad.shape != logits.shape or grad.dtype != logits.dtype or grad.device != logits.device:
        fail(f"{backward_what} has shape {tuple(grad.shape)}, dtype {grad.dtype} on {grad.device}; it must "
             f"match the logits: shape {tuple(logits.shape)}, dtype {logits.dtype} on {logits.device}.")
    expected_grad = grad_output * reference.cross_entropy_grad(logits_np, target_np)
    actual_grad = grad.detach().to("cpu", torch.float64).numpy()
    allowed_grad = _tolerance(logits.dtype, logits_np, grad_output)
    with np.errstate(invalid="ignore"):
        wrong = ~(np.abs(actual_grad - expected_grad) <= allowed_grad)
    if wrong.any():
        lines = [f"{backward_what} is wrong in {int(wrong.sum())} of {wrong.size} entries. Largest differences:"]
        lines += [f"    {row}" for row in worst_entries(actual_grad, expected_grad, count=3)]
        lines.append(f"  (Expected {scale}(softmax(logits) - onehot(target)) / N; allowed error "
                     f"{allowed_grad:.1e}.)")
        # The loss was right, so only mistakes that get the loss right can explain the gradient.
        right_loss = {m: [impl for impl in impls if _same_loss(impl, args, actual_loss, allowed)]
                      for m, impls in known.items()}
        evidence = Evidence(right_loss, args, {}, student=_numpy_version(function), part=1,
                            outcome=(actual_loss, actual_grad), rows=(0, 1))
        lines += [m.describe() for m in name_mistakes(evidence, actual_grad, expected_grad,
                                                      lambda a, b: _matches(b, a, max(allowed_grad, 1e-12)))]
        fail("\n".join(lines))

    returned = watch.backward_outputs[-1] if watch.backward_outputs else None
    if isinstance(returned, tuple | list) and len(returned) >= 2 and returned[1] is not None:
        fail(f"The backward of {what} returned {type(returned[1]).__name__} as the gradient for the "
             "target; it must return None there (PyTorch dropped it silently here).\n"
             + BACKWARD_GRAD_FOR_TARGET.describe())


def _transposed_gradient(error: BaseException, logits: torch.Tensor) -> bool:
    """Whether PyTorch refused a backward's gradient because it has the logits' shape transposed."""
    shape = list(logits.shape)
    found = re.search(r"invalid gradient at index 0 - got \[([\d, ]+)\] but expected shape compatible with "
                      r"\[([\d, ]+)\]", str(error))
    if not found or len(shape) != 2 or shape[0] == shape[1]:
        return False
    got = [int(v) for v in found.group(1).split(",")]
    return got == shape[::-1] and [int(v) for v in found.group(2).split(",")] == shape


def _numpy_version(function: Callable[..., object]) -> Callable[..., tuple[float, np.ndarray]]:
    """The student's ``softmax_cross_entropy`` with NumPy in and out, as the catalogue's reproductions are
    called: ``(loss, gradient of grad_output * loss)`` for NumPy logits and targets (for diagnosis only)."""

    def numpy_version(logits: np.ndarray, target: np.ndarray, grad_output: float = 1.0) -> tuple[float, np.ndarray]:
        x = torch.from_numpy(np.array(logits, copy=True)).requires_grad_(True)
        loss = function(x, torch.from_numpy(np.array(target, copy=True)))
        _AUTOGRAD_BACKWARD(torch.tensor(grad_output, dtype=loss.dtype) * loss)
        return float(loss.detach().to(torch.float64)), x.grad.detach().to(torch.float64).numpy()

    return numpy_version


def _same_loss(implementation: Callable[..., tuple[float, np.ndarray]], args: tuple, loss: float,
               allowed: float) -> bool:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            theirs = float(implementation(*args)[0])
        except Exception:
            return False
    return bool(abs(theirs - loss) <= allowed)


def _check_loss_tensor(loss: object, x: torch.Tensor, what: str, function_class: type, watch: _Watch) -> None:
    """The loss must be a scalar tensor like the logits, made by the student's Function."""
    __tracebackhide__ = True
    if not isinstance(loss, torch.Tensor):
        kind = "None (is a `return` missing?)" if loss is None else f"a {type(loss).__name__}"
        fail(f"{what} returned {kind}; it should return the mean loss as a 0-dimensional tensor.")
    if loss.ndim != 0:
        fail(f"{what} returned a tensor of shape {tuple(loss.shape)}; the loss is the mean over the batch, a "
             "0-dimensional tensor (shape ()).")
    if loss.dtype != x.dtype or loss.device != x.device:
        fail(f"{what} returned a loss of dtype {loss.dtype} on {loss.device}; it must keep the logits' dtype "
             f"({x.dtype}) and device ({x.device}). Create new tensors with dtype=logits.dtype and "
             "device=logits.device." + (f"\n{DTYPE_NOT_KEPT.describe()}" if loss.dtype != x.dtype else ""))
    node = type(loss.grad_fn).__name__ if loss.grad_fn is not None else None
    if watch.forward_calls == 0 or node != f"{function_class.__name__}Backward":
        made_by = f"a {node} node" if node else "no autograd node at all (loss.grad_fn is None)"
        fail(f"{what} returned a loss made by {made_by}, not by {function_class.__name__}.apply.\n"
             + FUNCTION_NOT_APPLIED.describe())


def check_gradcheck(function: Callable[..., object], logits: torch.Tensor, target: torch.Tensor,
                    *, case: str = "") -> None:
    """``torch.autograd.gradcheck`` of ``function(logits, target)`` with respect to the logits, in float64.

    gradcheck compares the backward with central differences of the forward (step 1e-6,
    PyTorch's defaults ``atol=1e-5``, ``rtol=1e-3``). In float32 the differences
    themselves would be wrong in the third digit, so the logits are converted to float64.
    """
    __tracebackhide__ = True
    x = logits.detach().to(torch.float64).clone().requires_grad_(True)
    what = (f"torch.autograd.gradcheck of softmax_cross_entropy with {describe_tensor('logits', x)}"
            + (f" ({case})" if case else ""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _GRADCHECK(lambda z: function(z, target), (x,), eps=1e-6, atol=1e-5, rtol=1e-3)
        except GradcheckError as error:
            lines = [f"{what} failed: your backward disagrees with central differences of your forward.",
                     f"  PyTorch says: {str(error).splitlines()[0].rstrip(',')}."]
            lines += _gradcheck_evidence(function, x, target)
            fail("\n".join(lines), error)
        except Exception as error:
            _student_error(what, error)


def _gradcheck_evidence(function: Callable[..., object], x: torch.Tensor, target: torch.Tensor) -> list[str]:
    """The entries where the backward and central differences of the forward differ most."""
    try:
        z = x.detach().clone().requires_grad_(True)
        _AUTOGRAD_BACKWARD(function(z, target))
        analytical = z.grad.detach().to("cpu", torch.float64).numpy()
        numerical = numerical_gradient(
            lambda v: float(function(torch.as_tensor(v, dtype=x.dtype, device=x.device), target)),
            x.detach().to("cpu", torch.float64).numpy())
    except Exception:  # the evidence is a courtesy; gradcheck's verdict stands without it
        return []
    return ["  Largest differences (yours = your backward, expected = central differences of your forward):"] + [
        f"    {row}" for row in worst_entries(analytical, numerical, count=3)]


# ---- devices ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _simulated_machine(cuda: bool, mps: bool) -> Iterator[None]:
    """Make PyTorch report CUDA and MPS as available or not (no device is created or used)."""
    accelerator = "cuda" if cuda else ("mps" if mps else None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(torch.cuda, "is_available", lambda: cuda))
        stack.enter_context(_patched(torch.cuda, "device_count", lambda: 1 if cuda else 0))
        stack.enter_context(_patched(torch.backends.mps, "is_available", lambda: mps))
        stack.enter_context(_patched(torch.backends.mps, "is_built", lambda: mps))
        if hasattr(torch, "accelerator"):
            stack.enter_context(_patched(torch.accelerator, "is_available", lambda: accelerator is not None))
            stack.enter_context(_patched(torch.accelerator, "current_accelerator",
                                         lambda *a, **k: torch.device(accelerator) if accelerator else None))
        yield


def _machine(cuda: bool, mps: bool) -> str:
    return f"CUDA {'available' if cuda else 'not available'}, MPS {'available' if mps else 'not available'}"


def _device_result(function: Callable[[], object], where: str) -> torch.device:
    __tracebackhide__ = True
    try:
        value = function()
    except Exception as error:
        _student_error(f"pick_device() on a machine with {where}", error)
    if not isinstance(value, torch.device):
        kind = "None (is a `return` missing?)" if value is None else f"{value!r}, a {type(value).__name__}"
        fail(f"pick_device() on a machine with {where} returned {kind}; it should return a torch.device, "
             "for example torch.device(\"cuda\").")
    return value


def check_pick_device(function: Callable[[], object], *, simulate: bool = True) -> None:
    """Check ``pick_device()``: a ``torch.device`` that works here and follows CUDA, MPS, CPU.

    On this machine the device must be the one PyTorch reports as best, and a tensor must be
    created and used on it. With ``simulate``, the function is also called while
    ``torch.cuda.is_available()``, ``torch.backends.mps.is_available()`` (and
    ``torch.accelerator``) report other machines; no device is touched then.
    """
    __tracebackhide__ = True
    here = _machine(torch.cuda.is_available(), torch.backends.mps.is_available())
    device = _device_result(function, f"{here} (this grading machine)")
    expected = pick_device()
    if device.type != expected.type:
        fail(f"pick_device() returned {device} on this machine ({here}); the best device here is "
             f"{expected.type}.\n" + DEVICE_PREFERENCE.describe())
    try:
        value = float((torch.ones(3, device=device) * 2).sum())
    except Exception as error:
        fail(f"pick_device() returned {device}, but a tensor cannot be used there: {error}\n"
             + DEVICE_PREFERENCE.describe(), error)
    if value != 6.0:
        fail(f"A tensor on {device}, the device pick_device() returned, computes wrong results.")
    if not simulate:
        return
    for cuda, mps, best in ((True, False, "cuda"), (True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        where = _machine(cuda, mps) + " (simulated)"
        with _simulated_machine(cuda, mps):
            device = _device_result(function, where)
        if device.type != best:
            fail(f"pick_device() on a machine with {where} returned {device}; it should return "
                 f"torch.device({best!r}).\n" + DEVICE_PREFERENCE.describe())
