"""Undo, before each test cell, what a student's code rebound in the libraries the tests use.

This runs inside the student's kernel, so it only raises the bar: code written to defeat it
can. It turns the common attempts (``np.allclose = lambda *a, **k: True``, replacing one of
the course's checks, silencing IPython's tracebacks) into nothing, and it tells the grader
what it undid, which goes into the integrity report. The re-run outside the kernel
(:mod:`softgrad.grader.replay`) is the real defence; this one also covers problem set 5, which is
not re-run.

:class:`softgrad.grader.preprocessors.SafeExecute` calls :func:`snapshot` once, before the first cell the
student wrote (the setup cells have imported NumPy, PyTorch and the course's checks by
then), and :func:`restore` before every test cell.
"""

from __future__ import annotations

import sys
import types

__all__ = ["restore", "snapshot"]

# Module names (and their submodules) whose attributes the tests rely on.
GUARDED_PREFIXES = ("numpy", "torch", "softgrad", "builtins", "math", "IPython.core")
# Settings a student may legitimately change (they are state, not functions the tests call).
UNGUARDED_PREFIXES = ("torch.backends", "torch._dynamo", "torch._inductor", "torch.cuda", "torch.mps",
                      "numpy.random", __name__)
# IPython shell methods that decide what a failing cell shows.
SHELL_METHODS = ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_ast_nodes",
                 "run_code", "displayhook", "excepthook", "set_custom_exc")

_MISSING = object()
_saved: dict[str, tuple[types.ModuleType | type, dict[str, object]]] = {}
_shell_saved: dict[str, object] = {}


def _guarded(name: str) -> bool:
    return name.startswith(GUARDED_PREFIXES) and not name.startswith(UNGUARDED_PREFIXES)


# Imported before the snapshot, so that a student cannot be the first to import (and patch) them.
TEST_MODULES = ("numpy.testing", "numpy.linalg", "softgrad.testing", "softgrad.gradcheck", "softgrad.reference",
                "softgrad.mistakes")
TORCH_TEST_MODULES = ("torch.testing", "torch.autograd", "torch.nn.functional", "softgrad.torch_testing",
                      "softgrad.torchtools")


def snapshot() -> int:
    """Remember the attributes of every guarded module imported so far (and of ``torch.Tensor``).

    The modules the tests use are imported first (PyTorch's only when the notebook imported
    PyTorch: importing it costs seconds).
    """
    import importlib

    for name in TEST_MODULES + (TORCH_TEST_MODULES if "torch" in sys.modules else ()):
        importlib.import_module(name)
    for name, module in list(sys.modules.items()):
        if module is not None and _guarded(name) and name not in _saved:
            _saved[name] = (module, dict(vars(module)))
    tensor = getattr(sys.modules.get("torch"), "Tensor", None)
    if tensor is not None:
        _saved["torch.Tensor"] = (tensor, dict(vars(tensor)))
    shell = _shell()
    if shell is not None:
        _shell_saved.update({m: vars(shell).get(m, _MISSING) for m in SHELL_METHODS})
    return len(_saved)


def restore() -> list[str]:
    """Put back every remembered attribute that was rebound or deleted; return their names."""
    restored = []
    for name, (owner, attributes) in _saved.items():
        current = vars(owner)
        for attribute, value in attributes.items():
            # Functions, classes and modules only: a changed number or flag is a setting, not a patch.
            if attribute in ("__dict__", "__doc__", "__weakref__") or not (
                    callable(value) or isinstance(value, types.ModuleType)):
                continue
            if current.get(attribute, _MISSING) is not value:
                try:
                    setattr(owner, attribute, value)
                except (AttributeError, TypeError):
                    continue
                restored.append(f"{name}.{attribute}")
    shell = _shell()
    if shell is not None:
        for method, value in _shell_saved.items():
            current = vars(shell).get(method, _MISSING)
            if current is value:
                continue
            if value is _MISSING:  # an instance attribute now hides the class's method
                delattr(shell, method)
            else:
                setattr(shell, method, value)
            restored.append(f"get_ipython().{method}")
    if sys.excepthook is not sys.__excepthook__ and shell is None:
        sys.excepthook = sys.__excepthook__
    return restored


def _shell() -> object | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()

