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
from softgrad._failures import fail, format_value
from softgrad.gradcheck import numerical_gradient
from softgrad.i18n import _, ngettext
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
from softgrad.testing.core import _case, _matches, worst_entries
from softgrad.testing.diagnosis import Evidence, name_mistakes
from softgrad.testing.rerun import REMOTE_CALLS, watched_only_in_kernel
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
    if x.numel() and not x.dtype.is_complex:
        values = x.detach().to("cpu", torch.float64)
        return _("{name} of shape {shape}, dtype {dtype} on {device}, values in [{low}, {high}]").format(
            name=name, shape=tuple(x.shape), dtype=x.dtype, device=x.device, low=format_value(float(values.min())),
            high=format_value(float(values.max())))
    return _("{name} of shape {shape}, dtype {dtype} on {device}").format(
        name=name, shape=tuple(x.shape), dtype=x.dtype, device=x.device)


@dataclass
class _Watch:
    """What the student's Function called, and what its backward returned."""

    phase: str = ""  # "forward" or "backward" while the Function's own code runs
    forbidden: list[tuple[str, str]] = field(default_factory=list)
    host: list[tuple[str, str]] = field(default_factory=list)
    forward_calls: int = 0
    backward_outputs: list[object] = field(default_factory=list)

    def calls(self, kind: list[tuple[str, str]]) -> str:
        # TRANSLATORS: {phase} is "forward" or "backward", the names of the Function's two methods
        return ", ".join(_("{name} (in {phase})").format(name=name, phase=phase) for phase, name in dict.fromkeys(kind))


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
        fail(_("{name} must define forward and backward as @staticmethod methods, as a torch.autograd.Function "
               "does.").format(name=function_class.__name__))

    def remote_calls() -> None:
        # In the re-run the Function is a stand-in for the student's, which ran in another process:
        # what it called there is reported here (softgrad.grader.remote).
        reported = vars(function_class).get(REMOTE_CALLS)
        while reported:
            kind, phase, shown = reported.pop(0)
            (watch.forbidden if kind == "forbidden" else watch.host).append((phase, shown))

    def watched_forward(*args, **kwargs):
        watch.forward_calls += 1
        watch.phase = "forward"
        try:
            return forward.__func__(*args, **kwargs)
        finally:
            watch.phase = ""
            remote_calls()

    def watched_backward(*args, **kwargs):
        watch.phase = "backward"
        try:
            result = backward.__func__(*args, **kwargs)
        finally:
            watch.phase = ""
            remote_calls()
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
        fail(_("{what} called {calls}: the forward and the backward must be written by hand.").format(
            what=what, calls=watch.calls(watch.forbidden)) + "\n" + FORBIDDEN_CALL_IN_FUNCTION.describe())
    if watch.host:
        fail(_("{what} called {calls}: that works only for tensors in CPU memory, so the same code fails on a "
               "GPU.").format(what=what, calls=watch.calls(watch.host)) + "\n" + HOST_ROUND_TRIP.describe())


def _student_error(what: str, error: BaseException) -> None:
    __tracebackhide__ = True
    if isinstance(error, NotImplementedError):
        fail(_("{call} raised NotImplementedError: replace `raise NotImplementedError()` with your "
               "implementation.").format(call=what), error)
    fail(_("{what} raised {error_type}: {error}").format(what=what, error_type=type(error).__name__, error=error),
         error)


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
    what = _("{call} with {inputs}").format(call="softmax_cross_entropy(logits, target)",
                                            inputs=describe_tensor("logits", logits)) + _case(case)
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
            _fail_on_watched_calls(watch, _("The backward of {what}").format(what=what))
            backward = _("({scale}loss).backward() for {what}").format(scale=scale, what=what)
            if _transposed_gradient(error, logits):
                fail(_("{what} raised {error_type}: {error}").format(
                    what=backward, error_type=type(error).__name__, error=error) + "\n"
                     + GRADIENT_TRANSPOSED.describe(), error)
            _student_error(backward, error)
        _fail_on_watched_calls(watch, _("The backward of {what}").format(what=what))
    warned = "; ".join(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))

    if not torch.equal(x.detach(), logits.detach()) or not torch.equal(t, target):
        fail(_("{what} modified its input: it must leave the caller's tensors unchanged.").format(what=what) + "\n"
             + MUTATES_INPUT.describe())

    known = suspects("softmax_cross_entropy")
    args = (logits_np, target_np, grad_output)
    expected_loss = reference.cross_entropy(logits_np, target_np)
    actual_loss = float(loss.detach().to("cpu", torch.float64))
    allowed = _tolerance(logits.dtype, logits_np, 1.0, expected_loss)
    if not (np.isfinite(actual_loss) and abs(actual_loss - expected_loss) <= allowed):
        lines = [_("The loss of {what} is {mine}, but the correct value is {right} (PyTorch's F.cross_entropy agrees "
                   "with it).").format(what=what, mine=format_value(actual_loss), right=format_value(expected_loss)),
                 _("  (Allowed error for {dtype} here: {allowed:.1e}.)").format(dtype=logits.dtype, allowed=allowed)]
        if warned:
            lines.append(_("  Warnings while it ran: {warnings}").format(warnings=warned))
        evidence = Evidence(known, args, {}, student=_numpy_version(function), part=0, rows=(0, 1))
        lines += [m.describe() for m in name_mistakes(evidence, np.asarray(actual_loss), np.asarray(expected_loss),
                                                      lambda a, b: _matches(b, a, allowed))]
        fail("\n".join(lines))

    grad = x.grad
    backward_what = _("The gradient from ({scale}loss).backward() for {what}").format(scale=scale, what=what)
    if grad is None:
        fail(_("{what} is None: PyTorch received no gradient for the logits. backward must return the gradient for "
               "logits first, then None for the target.").format(what=backward_what))
    if grad.shape != logits.shape or grad.dtype != logits.dtype or grad.device != logits.device:
        fail(_("{what} has shape {shape}, dtype {dtype} on {device}; it must match the logits: shape {logits_shape}, "
               "dtype {logits_dtype} on {logits_device}.").format(
            what=backward_what, shape=tuple(grad.shape), dtype=grad.dtype, device=grad.device,
            logits_shape=tuple(logits.shape), logits_dtype=logits.dtype, logits_device=logits.device))
    expected_grad = grad_output * reference.cross_entropy_grad(logits_np, target_np)
    actual_grad = grad.detach().to("cpu", torch.float64).numpy()
    allowed_grad = _tolerance(logits.dtype, logits_np, grad_output)
    with np.errstate(invalid="ignore"):
        wrong = ~(np.abs(actual_grad - expected_grad) <= allowed_grad)
    if wrong.any():
        lines = [ngettext("{what} is wrong in {wrong} of {count} entry.",
                          "{what} is wrong in {wrong} of {count} entries.", wrong.size).format(
                     what=backward_what, wrong=int(wrong.sum()), count=wrong.size)
                 + " " + (_("Largest differences:") if wrong.sum() > 1 else _("The difference:"))]
        lines += [f"    {row}" for row in worst_entries(actual_grad, expected_grad, count=3, wrong=wrong)]
        lines.append(_("  (Expected {scale}(softmax(logits) - onehot(target)) / N; allowed error "
                       "{allowed:.1e}.)").format(scale=scale, allowed=allowed_grad))
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
        fail(_("The backward of {what} returned {type} as the gradient for the target; it must return None there "
               "(PyTorch dropped it silently here).").format(what=what, type=type(returned[1]).__name__) + "\n"
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
        kind = _("None (is a `return` missing?)") if loss is None else _("a {type}").format(type=type(loss).__name__)
        fail(_("{what} returned {kind}; it should return the mean loss as a 0-dimensional tensor.").format(
            what=what, kind=kind))
    if loss.ndim != 0:
        fail(_("{what} returned a tensor of shape {shape}; the loss is the mean over the batch, a 0-dimensional "
               "tensor (shape ()).").format(what=what, shape=tuple(loss.shape)))
    if loss.dtype != x.dtype or loss.device != x.device:
        fail(_("{what} returned a loss of dtype {dtype} on {device}; it must keep the logits' dtype ({logits_dtype}) "
               "and device ({logits_device}). Create new tensors with dtype=logits.dtype and "
               "device=logits.device.").format(what=what, dtype=loss.dtype, device=loss.device, logits_dtype=x.dtype,
                                               logits_device=x.device)
             + (f"\n{DTYPE_NOT_KEPT.describe()}" if loss.dtype != x.dtype else ""))
    node = type(loss.grad_fn).__name__ if loss.grad_fn is not None else None
    if watch.forward_calls == 0 or node != f"{function_class.__name__}Backward":
        made_by = (_("a {node} node").format(node=node) if node
                   else _("no autograd node at all (loss.grad_fn is None)"))
        fail(_("{what} returned a loss made by {made_by}, not by {name}.apply.").format(
            what=what, made_by=made_by, name=function_class.__name__) + "\n" + FUNCTION_NOT_APPLIED.describe())


def check_gradcheck(function: Callable[..., object], logits: torch.Tensor, target: torch.Tensor,
                    *, case: str = "") -> None:
    """``torch.autograd.gradcheck`` of ``function(logits, target)`` with respect to the logits, in float64.

    gradcheck compares the backward with central differences of the forward (step 1e-6,
    PyTorch's defaults ``atol=1e-5``, ``rtol=1e-3``). In float32 the differences
    themselves would be wrong in the third digit, so the logits are converted to float64.
    """
    __tracebackhide__ = True
    x = logits.detach().to(torch.float64).clone().requires_grad_(True)
    what = _("{call} with {inputs}").format(call=_("torch.autograd.gradcheck of softmax_cross_entropy"),
                                            inputs=describe_tensor("logits", x)) + _case(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _GRADCHECK(lambda z: function(z, target), (x,), eps=1e-6, atol=1e-5, rtol=1e-3)
        except GradcheckError as error:
            lines = [_("{what} failed: your backward disagrees with central differences of your forward.").format(
                         what=what),
                     _("  PyTorch says: {message}.").format(message=str(error).splitlines()[0].rstrip(","))]
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
    return [_("  Largest differences (yours = your backward, expected = central differences of your forward):")] + [
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
    # TRANSLATORS: {cuda} and {mps} are each "available" or "not available"
    return _("CUDA {cuda}, MPS {mps}").format(cuda=_("available") if cuda else _("not available"),
                                               mps=_("available") if mps else _("not available"))


def _device_result(function: Callable[[], object], where: str) -> torch.device:
    __tracebackhide__ = True
    try:
        value = function()
    except Exception as error:
        _student_error(_("pick_device() on a machine with {machine}").format(machine=where), error)
    if not isinstance(value, torch.device):
        kind = (_("None (is a `return` missing?)") if value is None
                else _("{value}, a {type}").format(value=repr(value), type=type(value).__name__))
        fail(_("pick_device() on a machine with {machine} returned {kind}; it should return a torch.device, for "
               "example torch.device(\"cuda\").").format(machine=where, kind=kind))
    return value


def check_pick_device(function: Callable[[], object], *, simulate: bool = True) -> None:
    """Check ``pick_device()``: a ``torch.device`` that works here and follows CUDA, MPS, CPU.

    On this machine the device must be the one PyTorch reports as best, and a tensor must be
    created and used on it. With ``simulate``, the function is also called while
    ``torch.cuda.is_available()``, ``torch.backends.mps.is_available()`` (and
    ``torch.accelerator``) report other machines; no device is touched then.
    """
    __tracebackhide__ = True
    if watched_only_in_kernel(function, "check_pick_device"):
        return  # the machines it simulates exist in this process only, not where the student's code runs
    here = _machine(torch.cuda.is_available(), torch.backends.mps.is_available())
    device = _device_result(function, _("{machine} (this grading machine)").format(machine=here))
    expected = pick_device()
    if device.type != expected.type:
        fail(_("pick_device() returned {device} on this machine ({machine}); the best device here is {best}.").format(
            device=device, machine=here, best=expected.type) + "\n" + DEVICE_PREFERENCE.describe())
    try:
        value = float((torch.ones(3, device=device) * 2).sum())
    except Exception as error:
        fail(_("pick_device() returned {device}, but a tensor cannot be used there: {error}").format(
            device=device, error=error) + "\n" + DEVICE_PREFERENCE.describe(), error)
    if value != 6.0:
        fail(_("A tensor on {device}, the device pick_device() returned, computes wrong results.").format(
            device=device))
    if not simulate:
        return
    for cuda, mps, best in ((True, False, "cuda"), (True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        where = _("{machine} (simulated)").format(machine=_machine(cuda, mps))
        with _simulated_machine(cuda, mps):
            device = _device_result(function, where)
        if device.type != best:
            fail(_("pick_device() on a machine with {machine} returned {device}; it should return "
                   "torch.device({best}).").format(machine=where, device=device, best=repr(best)) + "\n"
                 + DEVICE_PREFERENCE.describe())
