"""Run a student's code in a separate Python process and call it with plain data.

The grader re-runs the test cells of a notebook in a trusted process (:mod:`softgrad.grader.replay`)
where NumPy, the course's checks and IPython are exactly as shipped: whatever a student's code
did to its own kernel (rebinding ``np.allclose``, patching the checks, hiding tracebacks,
reading the tests' variables) cannot reach them. The student's functions still have to run
somewhere; they run here, in a *sandbox* process, and the trusted side calls them through
:class:`Proxy` objects.

Only plain data crosses the boundary, in both directions: NumPy arrays and scalars (sent as
``.npy`` bytes, loaded with ``allow_pickle=False``), Python numbers, strings, ``None``, and
tuples, lists and dicts of those. Nothing the student returns is ever unpickled or executed
on the trusted side, so an object whose ``__eq__`` always says yes never gets there: it is
reported as "returned an object of type ...". Arguments that cannot be sent (a callable, a
tensor) make the trusted side give up on that test (:class:`Unverifiable`), and the grade
from the notebook run stands.

The protocol: length-prefixed frames on two pipes of their own (the student's prints go to
``/dev/null``), a JSON header followed by one frame per array.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import types
import warnings
import weakref
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from softgrad.grader import remote, template, tripwires
from softgrad.testing.rerun import PROXY_MARK

__all__ = ["Proxy", "Sandbox", "SandboxDied", "StudentError", "Unverifiable", "decode", "encode"]

# Names IPython and the kernel put into a namespace; they are not the student's definitions.
_SHELL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open", "_", "__", "___", "_ih", "_oh", "_dh", "_ii",
                "_iii", "_i", "__builtin__", "__builtins__", "__name__", "__doc__", "__spec__", "__loader__",
                "__package__"}


class Unverifiable(Exception):
    """A value that cannot cross the process boundary: the test cannot be re-run outside the notebook."""


class SandboxDied(Exception):
    """The sandbox process ended (the student's code exited, crashed, ran out of memory or time)."""


class StudentError(Exception):
    """An exception raised by the student's code, of a type the trusted side does not rebuild."""


class EncodeError(Exception):
    """A value of a type that is not plain data."""


# ---------------------------------------------------------------------------------------
# The codec: plain data only, arrays as .npy bytes


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def encode(value: object, blobs: list[bytes], *, iterators: bool = False) -> object:
    """A JSON-able description of ``value``; arrays are appended to ``blobs``.

    Exact types only: a subclass of ``float`` or ``tuple`` is not plain data (its methods
    could say anything). With ``iterators=True`` (arguments on their way to the student)
    a generator or iterator is sent as the list of its items, and rebuilt as a one-shot
    generator on the other side.
    """
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return {"t": "py", "v": value}
    if kind is float:
        return {"t": "float", "v": repr(value)}
    if kind is np.ndarray or isinstance(value, np.generic):
        array = np.asarray(value)
        if array.dtype.hasobject or array.dtype.kind not in "biufcSUM?m":
            raise EncodeError(f"a NumPy array of dtype {array.dtype}")
        blobs.append(_npy_bytes(np.array(array, copy=True)))
        return {"t": "scalar" if isinstance(value, np.generic) else "array", "b": len(blobs) - 1}
    if kind in (tuple, list):
        return {"t": kind.__name__, "v": [encode(v, blobs, iterators=iterators) for v in value]}
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise EncodeError("a dict whose keys are not all strings")
        return {"t": "dict", "v": {k: encode(v, blobs, iterators=iterators) for k, v in value.items()}}
    if remote.is_tensor(value):  # problem set 5: PyTorch tensors cross as their values
        return remote.encode_tensor(value, blobs)
    torch = sys.modules.get("torch")
    if torch is not None and kind is torch.device:
        return {"t": "device", "v": str(value)}
    if torch is not None and kind is torch.dtype:
        return {"t": "torch_dtype", "v": str(value).removeprefix("torch.")}
    if iterators and isinstance(value, (types.GeneratorType, Iterator)) and not hasattr(value, "__array__"):
        return {"t": "iter", "v": [encode(v, blobs, iterators=iterators) for v in value]}
    described = f"an object of type {kind.__module__}.{kind.__qualname__}"
    for base in (float, int, tuple, list, dict, str, np.ndarray):
        if isinstance(value, base):
            described += f" (a subclass of {base.__name__})"
            break
    raise EncodeError(described)


def decode(description: object, blobs: list[bytes]) -> object:
    """The value :func:`encode` described."""
    t = description["t"]
    if t == "py":
        return description["v"]
    if t == "float":
        return float(description["v"])
    if t in ("array", "scalar"):
        array = np.load(io.BytesIO(blobs[description["b"]]), allow_pickle=False)
        return array[()] if t == "scalar" else array
    if t in ("tuple", "list"):
        items = [decode(v, blobs) for v in description["v"]]
        return tuple(items) if t == "tuple" else items
    if t == "dict":
        return {k: decode(v, blobs) for k, v in description["v"].items()}
    if t == "iter":
        items = [decode(v, blobs) for v in description["v"]]
        return (item for item in items)
    if t in ("tensor", "graph"):
        tensor = remote.decode_tensor(description, blobs)
        if t == "tensor":
            return tensor
        return remote.RemoteGraph(tensor, description["node"], description["handle"], description["report"])
    if t in ("device", "torch_dtype"):
        import torch

        return torch.device(description["v"]) if t == "device" else getattr(torch, description["v"])
    raise ValueError(f"unknown value kind {t!r}")


# ---------------------------------------------------------------------------------------
# Frames on pipes


def _write_message(fd: int, header: dict, blobs: list[bytes]) -> None:
    payload = json.dumps({**header, "nblobs": len(blobs)}).encode()
    chunks = [struct.pack("<Q", len(payload)), payload]
    for blob in blobs:
        chunks += [struct.pack("<Q", len(blob)), blob]
    data = b"".join(chunks)
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, n: int, deadline: float | None) -> bytes:
    import select

    parts, remaining = [], n
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _read_message(fd: int, deadline: float | None = None) -> tuple[dict, list[bytes]]:
    (size,) = struct.unpack("<Q", _read_exactly(fd, 8, deadline))
    header = json.loads(_read_exactly(fd, size, deadline))
    blobs = []
    for _ in range(header.pop("nblobs")):
        (size,) = struct.unpack("<Q", _read_exactly(fd, 8, deadline))
        blobs.append(_read_exactly(fd, size, deadline))
    return header, blobs


# ---------------------------------------------------------------------------------------
# The trusted side


class Sandbox:
    """A Python process that runs a notebook's non-test cells (:meth:`run_cell`) and answers calls.

    The process is forked from ``origin``, a template (:mod:`softgrad.grader.template`; by default
    the one the re-run was forked from), or started as a new Python when there is none.
    It gets ``memory_limit_mb`` of address space and each call ``call_timeout`` seconds; a call
    that overruns is interrupted (``SIGINT``), and the process is killed if it does not answer
    ``interrupt_grace`` seconds later.
    """

    def __init__(self, *, cwd: Path, memory_limit_mb: int = 4096,
                 call_timeout: float = 60.0, setup_timeout: float = 300.0, interrupt_grace: float = 3.0,
                 forbidden_modules: tuple[str, ...] = tripwires.ANSWER_KEY, origin: template.Template | None = None):
        self.call_timeout = call_timeout
        # handles of sandbox graphs whose stand-ins here were freed: the next request tells the sandbox
        self._released: deque[int] = deque()
        self.interrupt_grace = interrupt_grace
        self.dead_reason: str | None = None
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        limit = memory_limit_mb * 1024 * 1024

        def limit_memory() -> None:  # runs in the child, before Python starts
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
        # Forked from ``origin``, by default (in the re-run) the template that forked this process
        # (softgrad.grader.template); without one, or if it cannot, a new Python process.
        self.process = _forked(origin or template.inherited(), cwd, env, memory_limit_mb, (to_child_r, from_child_w))
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __spec__.name, str(to_child_r), str(from_child_w)],
                cwd=cwd, env=env, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=limit_memory,
            )
        os.close(to_child_r)
        os.close(from_child_w)
        self._to_child, self._from_child = to_child_w, from_child_r
        self._request({"op": "start", "forbidden": list(forbidden_modules)}, [], timeout=setup_timeout)
        self.cell_errors: list[str] = []

    def run_cell(self, kind: str, source: str) -> None:
        """Run one cell (``kind`` is ``"student"`` or ``"provided"``) with the time a call gets."""
        reply, _ = self._request({"op": "cell", "kind": kind, "source": source}, [], timeout=self.call_timeout)
        if reply.get("error"):
            self.cell_errors.append(reply["error"])

    def names(self) -> dict[str, str]:
        """The names the student's cells defined so far, each with its kind: ``"function"`` (anything
        callable), ``"torch-function"`` (a ``torch.autograd.Function`` class) or ``"value"``."""
        reply, _ = self._request({"op": "names"}, [], timeout=self.call_timeout)
        return reply["names"]

    def _request(self, header: dict, blobs: list[bytes], *, timeout: float) -> tuple[dict, list[bytes]]:
        if self.dead_reason:
            raise SandboxDied(self.dead_reason)
        released = []
        while self._released:
            released.append(self._released.popleft())
        if released:
            header = {**header, "release": released}
        try:
            _write_message(self._to_child, header, blobs)
            return _read_message(self._from_child, time.monotonic() + timeout)
        except TimeoutError:
            self.process.send_signal(signal.SIGINT)
            try:
                return _read_message(self._from_child, time.monotonic() + self.interrupt_grace)
            except (TimeoutError, EOFError):
                self._kill(f"your code was still running after {timeout:g} s and did not stop when interrupted")
        except (EOFError, BrokenPipeError):
            code = self.process.wait()
            self._kill(_exit_reason(code))
        raise SandboxDied(self.dead_reason)

    def _kill(self, reason: str) -> None:
        self.dead_reason = reason
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def call(self, name: str, args: tuple, kwargs: dict) -> object:
        """``name(*args, **kwargs)`` in the sandbox; NumPy array arguments it changed are changed here too."""
        blobs: list[bytes] = []
        try:
            header = {"op": "call", "name": name, "args": encode(list(args), blobs, iterators=True),
                      "kwargs": encode(dict(kwargs), blobs, iterators=True)}
        except EncodeError as error:
            raise Unverifiable(f"an argument of {name}() is {error}, which the re-run cannot send") from None
        reply, reply_blobs = self._request(header, blobs, timeout=self.call_timeout)
        for message, category in reply.get("warnings", []):
            warnings.warn(message, getattr(builtins, category, UserWarning), stacklevel=3)
        for position, changed in reply.get("changed_args", {}).items():
            _change_in_place(args[int(position)] if position.isdigit() else kwargs[position],
                             decode(changed, reply_blobs))
        if not reply["ok"]:
            raise _rebuild(reply)
        value = decode(reply["value"], reply_blobs)
        if isinstance(value, remote.RemoteGraph):  # a tensor with a graph, which stays in the sandbox
            self._track(value)
            return remote.attach(value, tuple(a for a in args if remote.is_tensor(a)))
        return value

    def backward(self, handle: int, grad_output: object) -> tuple[list, dict]:
        """The student's backward through the graph of an earlier call (see :mod:`softgrad.grader.remote`):
        the gradients of that call's tensor arguments, and what the student's Functions did."""
        blobs: list[bytes] = []
        header = {"op": "backward", "handle": handle, "grad": encode(grad_output, blobs)}
        reply, reply_blobs = self._request(header, blobs, timeout=self.call_timeout)
        if not reply["ok"]:
            raise _rebuild(reply)
        grads = [decode(g, reply_blobs) for g in reply["grads"]]
        report = dict(reply["report"])
        report["changed"] = [None if c is None else decode(c, reply_blobs) for c in reply.get("changed", [])]
        return grads, report

    def apply_function(self, name: str, inputs: tuple) -> remote.RemoteGraph:
        """``name.apply(*inputs)`` in the sandbox, for the student's autograd.Function class ``name``."""
        blobs: list[bytes] = []
        try:
            header = {"op": "apply", "name": name, "args": encode(list(inputs), blobs)}
        except EncodeError as error:
            raise Unverifiable(f"an argument of {name}.apply() is {error}, which the re-run cannot send") from None
        reply, reply_blobs = self._request(header, blobs, timeout=self.call_timeout)
        if not reply["ok"]:
            raise _rebuild(reply)
        value = decode(reply["value"], reply_blobs)
        if not isinstance(value, remote.RemoteGraph):
            raise StudentError(f"{name}.apply returned no tensor with a graph")
        self._track(value)
        return value

    def _track(self, graph: remote.RemoteGraph) -> None:
        """Route ``graph``'s backward here, and free its graph in the sandbox once nothing here uses it."""
        graph.backward = self.backward
        weakref.finalize(graph, self._released.append, graph.handle)

    def get(self, name: str) -> object:
        """The value of a (non-callable) name the student defined."""
        reply, blobs = self._request({"op": "get", "name": name}, [], timeout=self.call_timeout)
        if not reply["ok"]:
            raise _rebuild(reply)
        return decode(reply["value"], blobs)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                _write_message(self._to_child, {"op": "exit"}, [])
                self.process.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _forked(source: template.Template | None, cwd: Path, env: dict[str, str], memory_limit_mb: int,
            fds: tuple[int, int]) -> template.Child | None:
    """The sandbox forked by ``source``, or None."""
    if source is None:
        return None
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        return source.spawn(__spec__.name, ["{0}", "{1}"], cwd=cwd, env=env, memory_limit_mb=memory_limit_mb,
                            stdin=devnull, stdout=devnull, stderr=devnull, pass_fds=fds)
    except template.TemplateError:
        return None
    finally:
        os.close(devnull)


def _change_in_place(target: object, new: object) -> None:
    """What the student's code did to an argument in place, done to the trusted side's argument too."""
    with contextlib.suppress(ValueError, TypeError, RuntimeError):  # reshaped in place: the check sees the old shape
        if remote.is_tensor(target):
            import torch

            with torch.no_grad():
                target.copy_(new.to(target.device, target.dtype))
        else:
            target[...] = new


def _exit_reason(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return f"the Python process running your code was killed by signal {name}"
    return f"your code ended the Python process running it (exit code {code})"


def _rebuild(reply: dict) -> Exception:
    """The student's exception on the trusted side: a built-in exception type is rebuilt as itself."""
    etype, message = reply["etype"], reply["message"]
    if reply.get("error_kind") == "return":
        return StudentError(message)
    rebuilt = getattr(builtins, etype, None)
    if isinstance(rebuilt, type) and issubclass(rebuilt, Exception) and etype not in ("SystemExit",):
        try:
            return rebuilt(message)
        except TypeError:
            pass
    return StudentError(f"{etype}: {message}")


class Proxy:
    """Stands for a function (or class) the student defined: calling it calls it in the sandbox."""

    def __init__(self, sandbox: Sandbox, name: str):
        self._sandbox, self.__name__, self.__qualname__ = sandbox, name, name
        setattr(self, PROXY_MARK, True)

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._sandbox.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__}>"


# ---------------------------------------------------------------------------------------
# The sandbox side (``python -m softgrad.grader.sandbox IN_FD OUT_FD``)


def new_shell():
    """IPython's shell, to run cells outside a kernel (the re-run, the sandbox), without IPython's history and
    without its clean-up at exit.

    By default every shell records its session in the user's ``~/.ipython`` history database: a
    row written and synced to the disk as it starts and as it ends, and a thread; with two such
    processes per submission, the instructor's history grew with every submission graded (one file
    for every grading worker). At exit, the shell empties its namespace (50 to 70 ms of collecting
    garbage, which the process waiting for its end waits through) in a process that ends without
    tearing anything down (:mod:`softgrad.grader.template`), or whose answer has been sent already.
    """
    import atexit

    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    atexit.unregister(shell.atexit_operations)
    return shell


def _serve(in_fd: int, out_fd: int) -> None:
    header, _ = _read_message(in_fd)
    tripwires.arm(header.get("forbidden", []))
    shell = new_shell()
    namespace = shell.user_ns
    graphs = remote.Graphs(namespace)
    student_names: set[str] = set()
    _write_message(out_fd, {"ok": True}, [])
    while True:
        header, blobs = _read_message(in_fd)
        for handle in header.get("release", ()):  # results the trusted side no longer holds
            graphs.kept.pop(handle, None)
        op = header["op"]
        if op == "exit":
            return
        reply_blobs: list[bytes] = []
        if op == "cell":
            before = {k: id(v) for k, v in namespace.items()}
            result = shell.run_cell(header["source"], store_history=False, silent=True)
            error = None if result.success else (result.error_in_exec or result.error_before_exec)
            changed = {k for k, v in namespace.items() if before.get(k) != id(v)}
            if header["kind"] == "student":
                student_names |= changed
            else:  # a provided cell defines the name again: the provided version is what the tests use
                student_names -= changed
            reply = {"error": f"{type(error).__name__}: {error}" if error else None}
        elif op == "names":
            reply = {"names": {k: _kind(namespace[k]) for k in sorted(student_names)
                               if k in namespace and k not in _SHELL_NAMES and not k.startswith("_")
                               and not isinstance(namespace[k], types.ModuleType)}}
        else:
            try:
                if op == "get":
                    reply = {"ok": True, "value": _encode_result(namespace[header["name"]], reply_blobs)}
                elif op == "backward":
                    reply = _backward(graphs, header, blobs, reply_blobs)
                elif op == "apply":
                    reply = _call(namespace[header["name"]].apply, header, blobs, reply_blobs, graphs)
                else:
                    reply = _call(namespace[header["name"]], header, blobs, reply_blobs, graphs)
            except BaseException as error:  # the student's code may raise anything, even SystemExit
                reply = {"ok": False, "etype": type(error).__name__, "message": str(error)[:4000]}
                if isinstance(error, _ReturnError):
                    reply["error_kind"] = "return"
                if isinstance(error, KeyboardInterrupt):
                    reply["etype"], reply["message"] = "TimeoutError", "interrupted: your code took too long"
        _write_message(out_fd, reply, reply_blobs)


class _ReturnError(Exception):
    pass


def _encode_result(value: object, blobs: list[bytes]) -> object:
    try:
        return encode(value, blobs)
    except EncodeError as error:
        raise _ReturnError(
            f"returned {error}; expected NumPy arrays, numbers, or tuples, lists and dicts of those"
        ) from None


def _kind(value: object) -> str:
    torch = sys.modules.get("torch")
    if (torch is not None and isinstance(value, type) and issubclass(value, torch.autograd.Function)
            and value is not torch.autograd.Function):
        return "torch-function"
    return "function" if callable(value) else "value"


def _snapshot(value: object) -> object:
    return value.detach().clone() if remote.is_tensor(value) else value.copy()


def _same(old: object, new: object) -> bool:
    if remote.is_tensor(old):
        new = new.detach()
        if old.shape != new.shape:
            return False
        equal = old == new
        if old.is_floating_point():
            equal |= old.isnan() & new.isnan()
        return bool(equal.all())
    return bool(np.array_equal(old, new, equal_nan=old.dtype.kind in "fc"))


def _call(function: object, header: dict, blobs: list[bytes], reply_blobs: list[bytes],
          graphs: remote.Graphs) -> dict:
    args = decode(header["args"], blobs)
    kwargs = decode(header.get("kwargs", {"t": "dict", "v": {}}), blobs)
    watched = [str(i) for i, a in enumerate(args) if type(a) is np.ndarray or remote.is_tensor(a)]
    watched += [k for k, a in kwargs.items() if type(a) is np.ndarray or remote.is_tensor(a)]
    before = {key: _snapshot(args[int(key)] if key.isdigit() else kwargs[key]) for key in watched}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        value, report = graphs.watched(lambda: function(*args, **kwargs))
    if remote.is_tensor(value) and value.grad_fn is not None:  # its graph stays here, for a backward request
        handle = graphs.keep([a for a in args if remote.is_tensor(a)], value)
        encoded = remote.encode_tensor(value, reply_blobs)
        encoded.update(t="graph", node=type(value.grad_fn).__name__, handle=handle, report=report)
        reply = {"ok": True, "value": encoded}
    else:
        reply = {"ok": True, "value": _encode_result(value, reply_blobs)}
    reply["warnings"] = [[str(w.message), w.category.__name__] for w in seen[:20]]
    changed = {}
    for key, old in before.items():
        new = args[int(key)] if key.isdigit() else kwargs[key]
        if not _same(old, new):
            changed[key] = encode(new, reply_blobs)
    reply["changed_args"] = changed
    return reply


def _backward(graphs: remote.Graphs, header: dict, blobs: list[bytes], reply_blobs: list[bytes]) -> dict:
    kept = graphs.kept.get(header["handle"])
    before = [_snapshot(t) for t in kept.inputs] if kept is not None else []
    grads, report = graphs.backward(header["handle"], decode(header["grad"], blobs))
    changed = [None if _same(old, new) else encode(new, reply_blobs)
               for old, new in zip(before, kept.inputs, strict=True)]
    return {"ok": True, "grads": [encode(g, reply_blobs) for g in grads], "report": report, "changed": changed}


if __name__ == "__main__":
    # The interrupt is how a call is stopped. A grader started in the background (`cmd &` in a
    # script, nohup) passes SIGINT on as ignored, and Python then installs no handler for it:
    # put KeyboardInterrupt back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _serve(int(sys.argv[1]), int(sys.argv[2]))
