"""Tripwires in the sandbox: the course's own softmax code, out of reach of a student's functions.

In the re-run outside the kernel (:mod:`softgrad.grader.replay`) a student's functions run in a
sandbox process (:mod:`softgrad.grader.sandbox`). Before any of the student's code runs there,
:func:`arm` replaces, in every module of the course library:

* every function and class of the answer key (:data:`ANSWER_KEY`: the trusted reference
  implementations and the catalogue of mistakes, in every submodule), and
* every function or class defined anywhere in the library whose name says it computes a
  softmax, a log-softmax, a log-sum-exp or a cross-entropy (:data:`ANSWER_NAMES`; for example
  ``softgrad.scale.online_logsumexp``, which is the answer to problem set 6)

by a tripwire that raises ``RuntimeError`` saying that the exercise asks the student to write it.
A test that calls the student's function in the re-run then fails, and the lower of the two
grades counts.

Whatever import route the student's code takes reaches a tripwire: ``import``,
``from ... import``, ``importlib.import_module``, modules found with ``pkgutil``, submodules of
packages, ``importlib.reload``, and a module deleted from ``sys.modules`` and imported afresh. A
finder placed first on ``sys.meta_path`` arms every course module when it is executed, not only
those imported before the student's code ran. (Code that removes that finder, or reads a source
file and executes it, is outside what a process can defend against itself; the integrity report
flags ``sys.meta_path``, ``importlib`` and ``exec`` for an instructor to read.)
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import re
import sys
import types
from collections.abc import Iterable

__all__ = ["ANSWER_KEY", "ANSWER_NAMES", "PACKAGE", "arm", "is_tripwire"]

PACKAGE = "softgrad"
"""The course library: the modules whose functions the tripwires replace."""

ANSWER_KEY = ("softgrad.reference", "softgrad.mistakes")
"""Modules (and packages, with every submodule) whose every function and class is the answer key."""

ANSWER_NAMES = re.compile(r"softmax|log_?sum_?exp|cross_?entropy|(?:^|_)lse(?:_|$)|(?:^|_)nll(?:_|$)", re.IGNORECASE)
"""Names of functions that compute what the assignments ask students to write, anywhere in the library."""

# Modules never armed: the sandbox itself and the rest of the grading side run in this process.
_EXEMPT = (f"{PACKAGE}.grader",)
_MARK = "__softgrad_tripwire__"


def is_tripwire(value: object) -> bool:
    """Whether ``value`` is a tripwire that :func:`arm` put in place of a course function."""
    return bool(getattr(value, _MARK, False))


def _tripwire(name: str) -> types.FunctionType:
    def tripwire(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{name} is part of the course's answer key; this exercise asks you to write it yourself")

    setattr(tripwire, _MARK, True)
    tripwire.__name__ = tripwire.__qualname__ = name.rsplit(".", 1)[-1]
    return tripwire


def _in_package(module_name: str) -> bool:
    return (module_name == PACKAGE or module_name.startswith(PACKAGE + ".")) and not module_name.startswith(_EXEMPT)


def _answer(module_name: str, attribute: str, value: object) -> bool:
    """Whether ``module.attribute`` (bound to ``value``) is a course function a student may not call."""
    if attribute.startswith("__") or not callable(value) or is_tripwire(value):
        return False
    owner = getattr(value, "__module__", None) or ""
    if not _in_package(owner):  # NumPy's functions, imported by name into a course module
        return False
    return owner.startswith(ANSWER_KEY) or module_name.startswith(ANSWER_KEY) or bool(ANSWER_NAMES.search(attribute))


def _arm_module(module: types.ModuleType) -> None:
    for attribute, value in list(vars(module).items()):
        if _answer(module.__name__, attribute, value):
            owner = getattr(value, "__module__", module.__name__)
            setattr(module, attribute, _tripwire(f"{owner}.{getattr(value, '__qualname__', attribute)}"))


class _ArmingLoader(importlib.abc.Loader):
    """Executes a course module with its own loader, then arms it (fresh imports and reloads alike)."""

    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        _arm_module(module)

    def __getattr__(self, name: str) -> object:  # get_source, get_data, is_package, ... for inspect and pkgutil
        return getattr(self._loader, name)


class _ArmingFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: every course module found by the other finders gets an arming loader."""

    def find_spec(self, fullname: str, path: object, target: types.ModuleType | None = None):
        if not _in_package(fullname):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and not isinstance(spec.loader, _ArmingLoader):
                    spec.loader = _ArmingLoader(spec.loader)
                return spec
        return None


def arm(modules: Iterable[str] = ANSWER_KEY) -> None:
    """Arm the course library in this process (see the module docstring); idempotent.

    ``modules`` are imported first (with every submodule of a package), so that the answer key
    is armed even before the student's code imports it; every course module already imported
    is armed too, and every one imported later is armed as it is executed.
    """
    import pkgutil

    if not any(isinstance(finder, _ArmingFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ArmingFinder())
    for name in modules:
        module = importlib.import_module(name)
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{name}."):
            importlib.import_module(info.name)
    for name, module in list(sys.modules.items()):
        if module is not None and _in_package(name):
            if getattr(module, "__spec__", None) is not None and module.__spec__.loader is not None \
                    and not isinstance(module.__spec__.loader, _ArmingLoader):
                module.__spec__.loader = _ArmingLoader(module.__spec__.loader)
            _arm_module(module)
