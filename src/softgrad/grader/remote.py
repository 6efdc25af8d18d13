"""PyTorch across the sandbox's boundary: tensors as arrays, and a student's autograd.Function run remotely.

Problem set 5 asks for a ``torch.autograd.Function`` with a hand-written backward. Its tests need a
loss tensor with a graph: they call ``loss.backward()`` and read the gradient of the logits. In the
re-run outside the student's kernel (:mod:`softgrad.grader.replay`) the student's code runs in the
sandbox process, so the graph lives there. This module connects the two processes:

* **Tensors cross as arrays** (:func:`encode_tensor`, :func:`decode_tensor`): their values as
  ``.npy`` bytes, with their dtype and whether they require a gradient; nothing is unpickled.
* **In the sandbox** (:class:`Graphs`), a call of the student's function that returns a tensor with
  a graph (through the student's Function's ``apply``) keeps that graph under a handle, and
  sends back its value and the name of the node that made it. The student's Function classes are
  watched while they run (:func:`softgrad.testing.pytorch.watching_calls`): what they call
  (PyTorch's losses, autograd, ``.numpy()``) and what their backward returns go back too. A later
  ``backward`` request runs the student's backward there, through the kept graph (its ``ctx``
  never leaves the sandbox), and sends back the gradients of the inputs.
* **In the trusted process** (:func:`remote_function`), each of the student's Function classes is
  stood for by a real ``torch.autograd.Function`` of the same name, whose forward and backward send
  arrays to the sandbox. The course's checks then run unchanged: ``loss.grad_fn`` is named after
  the student's class when the student's wrapper went through its ``apply``, the calls its
  forward and backward made are reported to the checks' watch, and ``loss.backward()`` gives the
  gradients the student's backward computed.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from softgrad.testing.rerun import REMOTE_CALLS

__all__ = ["Graphs", "RemoteGraph", "decode_tensor", "encode_tensor", "is_tensor", "remote_function"]

KEPT_GRAPHS = 2048
"""The most graphs a sandbox keeps for later backward calls. A graph is freed as soon as the trusted side
drops its result; this bounds what a test that keeps thousands of results alive can pin down."""


def _torch():
    return sys.modules.get("torch")


def is_tensor(value: object) -> bool:
    torch = _torch()
    return torch is not None and type(value) is torch.Tensor


def encode_tensor(value, blobs: list[bytes]) -> dict:
    """A tensor as plain data: its values (bfloat16 as float32), dtype and whether it requires a gradient."""
    torch = _torch()
    data = value.detach().to("cpu")
    dtype = str(data.dtype).removeprefix("torch.")
    if data.dtype == torch.bfloat16:
        data = data.to(torch.float32)
    buffer = io.BytesIO()
    # torch.Tensor.numpy may be the checks' recorder of host round trips just now: this conversion is
    # the grader's own, so it calls the method of the C base class, which nothing replaces
    np.save(buffer, torch._C.TensorBase.numpy(data).copy(), allow_pickle=False)
    blobs.append(buffer.getvalue())
    return {"t": "tensor", "b": len(blobs) - 1, "dtype": dtype, "grad": bool(value.requires_grad)}


def decode_tensor(description: dict, blobs: list[bytes]):
    import torch

    array = np.load(io.BytesIO(blobs[description["b"]]), allow_pickle=False)
    tensor = torch.from_numpy(array.copy()).to(getattr(torch, description["dtype"]))
    if description.get("grad") and tensor.is_floating_point():
        tensor.requires_grad_(True)
    return tensor


# ---------------------------------------------------------------------------------------
# The sandbox's side


@dataclass
class _Kept:
    inputs: list  # the call's tensor arguments, as the student's code received them
    result: object  # the loss tensor, with its graph


@dataclass
class Graphs:
    """The graphs of the student's calls, kept for backward requests, and the watch on their Functions."""

    namespace: dict
    kept: dict[int, _Kept] = field(default_factory=dict)
    counter: int = 0

    def _functions(self) -> list[type]:
        torch = _torch()
        if torch is None:
            return []
        return [v for v in self.namespace.values()
                if isinstance(v, type) and issubclass(v, torch.autograd.Function) and v is not torch.autograd.Function
                and v.__module__ == "__main__"]

    def watched(self, run: Callable[[], object]) -> tuple[object, dict]:
        """``run()`` with every Function class the student defined watched; its result and the report."""
        import contextlib

        report = {"forbidden": [], "host": [], "forward_calls": 0, "returned": None}
        functions = self._functions()
        if not functions:  # no PyTorch in this assignment: nothing to watch (and no PyTorch to import)
            return run(), report
        from softgrad.testing.pytorch import watching_calls

        with contextlib.ExitStack() as stack:
            watches = []
            for cls in functions:
                try:
                    watches.append(stack.enter_context(watching_calls(cls)))
                except AssertionError:  # not a well-formed Function (no static forward/backward): not watched
                    continue
            value = run()
        for watch in watches:
            report["forbidden"] += [list(call) for call in watch.forbidden]
            report["host"] += [list(call) for call in watch.host]
            report["forward_calls"] += watch.forward_calls
            if watch.backward_outputs:
                returned = watch.backward_outputs[-1]
                items = returned if isinstance(returned, tuple | list) else (returned,)
                report["returned"] = [None if item is None else type(item).__name__ for item in items]
        return value, report

    def keep(self, inputs: list, result: object) -> int:
        self.counter += 1
        self.kept[self.counter] = _Kept(inputs, result)
        while len(self.kept) > KEPT_GRAPHS:
            self.kept.pop(next(iter(self.kept)))
        return self.counter

    def backward(self, handle: int, grad_output) -> tuple[list, dict]:
        """The student's backward through a kept graph; the gradients of its inputs (None where none)."""
        import torch

        kept = self.kept.get(handle)
        if kept is None:
            raise RuntimeError(f"the graph of this result is no longer kept: more than {KEPT_GRAPHS} results that "
                               "need a gradient were alive at once")
        for tensor in kept.inputs:
            if tensor.requires_grad:
                tensor.grad = None
        _, report = self.watched(lambda: torch.autograd.backward(kept.result, grad_output, retain_graph=True))
        return [t.grad if t.requires_grad else None for t in kept.inputs], report


# ---------------------------------------------------------------------------------------
# The trusted side


@dataclass
class RemoteGraph:
    """A tensor result whose graph is in the sandbox: its value, its node's name, and how to reach it."""

    value: object
    node: str
    handle: int
    report: dict
    backward: Callable[[int, object], tuple[list, dict]] | None = None


_PENDING = threading.local()
_CLASSES: dict[str, type] = {}


def _class_name(node: str) -> str:
    """``SoftmaxCrossEntropyBackward`` -> ``SoftmaxCrossEntropy``; ``NllLossBackward0`` -> ``NllLoss``."""
    name = node.rstrip("0123456789")
    return name.removesuffix("Backward") or "Remote"


def remote_function(name: str, apply_remotely: Callable[[str, tuple], RemoteGraph] | None = None) -> type:
    """The stand-in ``torch.autograd.Function`` class named ``name`` (one per name, cached).

    Its ``apply`` takes the graph of a call made in the sandbox (handed over by :func:`attach`), or,
    called directly, runs the student's class of that name there (``apply_remotely``); its backward
    sends ``grad_output`` to the sandbox and returns what the student's backward gave, with a
    tensor (zeros) where the student's backward returned one for an input that needs no gradient,
    so that the checks see what the student's code returned.
    """
    import torch

    cached = _CLASSES.get(name)
    if cached is not None:
        if apply_remotely is not None:
            cached._apply_remotely = staticmethod(apply_remotely)
        return cached

    def forward(ctx, *inputs):
        graph = getattr(_PENDING, "graph", None)
        _PENDING.graph = None
        if graph is None:
            if cls._apply_remotely is None:
                raise RuntimeError(f"{name}.apply: no graph to stand for")
            graph = cls._apply_remotely(name, inputs)
        ctx.graph = graph
        ctx.inputs = list(inputs)
        _report(cls, graph.report, "forward")
        first = next((x for x in inputs if isinstance(x, torch.Tensor)), None)
        return graph.value.to(first.device) if first is not None else graph.value

    def backward(ctx, grad_output):
        graph = ctx.graph
        grads, report = graph.backward(graph.handle, grad_output.detach().to("cpu"))
        _report(cls, report, "backward")
        returned = report.get("returned") or []
        out, k = [], 0  # k: the position among the tensor inputs, as the sandbox numbers them
        for i, x in enumerate(ctx.inputs):
            if not isinstance(x, torch.Tensor):
                out.append(None)
                continue
            grad = grads[k] if k < len(grads) else None
            if grad is not None:
                out.append(grad.to(x.device))
            elif i < len(returned) and returned[i] is not None:
                out.append(torch.zeros(x.shape, device=x.device))  # the student returned a gradient here
            else:
                out.append(None)
            k += 1
        for x, new in zip([x for x in ctx.inputs if isinstance(x, torch.Tensor)], report.get("changed", []),
                          strict=False):
            if new is not None:  # the student's backward changed an input in place: so does this
                with torch.no_grad():
                    x.copy_(new.to(x.device, x.dtype))
        return tuple(out)

    cls = type(name, (torch.autograd.Function,), {"forward": staticmethod(forward),
                                                  "backward": staticmethod(backward),
                                                  "_apply_remotely": staticmethod(apply_remotely)
                                                  if apply_remotely else None,
                                                  REMOTE_CALLS: []})
    _CLASSES[name] = cls
    return cls


def _report(cls: type, report: dict, phase: str) -> None:
    calls = getattr(cls, REMOTE_CALLS)
    calls += [("forbidden", *call) for call in report.get("forbidden", [])]
    calls += [("host", *call) for call in report.get("host", [])]


def attach(graph: RemoteGraph, inputs: tuple) -> object:
    """The trusted result of a sandbox call that returned a tensor with a graph: the same value, made by
    the stand-in Function named after the sandbox's node, on the inputs that need a gradient."""
    cls = remote_function(_class_name(graph.node))
    _PENDING.graph = graph
    return cls.apply(*inputs)
