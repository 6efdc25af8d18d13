"""The integrity report: what in a submission an instructor should look at, and where.

Three sources feed it, none of which fails a student by itself:

* **the intake** (:mod:`softgrad.grader.intake`, :mod:`softgrad.grader.preprocessors`): a
  notebook that is not JSON, missing, renamed, test cells deleted, edited, turned into
  Markdown, duplicated or split;
* **a static read of the student's cells** (:func:`scan_cells`): code that rebinds attributes
  of NumPy, PyTorch, IPython or the course library, reads the tests' frames, defines
  comparisons that may lie, calls the course's reference code, or ends the process;
* **the re-run outside the kernel** (:mod:`softgrad.grader.replay`): a test that passed while the
  notebook ran but fails when re-run where the student's code cannot reach the checks. This
  one does change the grade (the lower of the two counts), because the notebook run's pass
  was not earned.

Every finding names its rule, the cell (its nbgrader ``grade_id``, or its position) and the
line, so an instructor can open the notebook and judge.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass

from softgrad.grader.tripwires import ANSWER_KEY

__all__ = ["RULES", "WORTH_A_LOOK", "Finding", "scan_cells"]

RULES = {
    "patches-library": ("tampering", "assigns to an attribute of NumPy, PyTorch, IPython, builtins or the course "
                                     "library, which the tests also use"),
    "tampers-with-ipython": ("tampering", "reaches into IPython's error display or execution machinery"),
    "reads-test-internals": ("tampering", "inspects the caller's frames or the garbage collector, where the tests' "
                                          "expected values live"),
    "lying-comparison": ("tampering", "defines comparison or conversion methods, which can make any check say yes"),
    "uses-reference-code": ("tampering", "uses the course's reference solutions or mistake catalogue, which the "
                                         "exercises forbid"),
    "dynamic-code": ("suspicious", "runs code built at run time or changes the import system"),
    "ends-the-process": ("disruptive", "exits, kills or crashes the Python process, or changes its limits"),
    "retried-outside-kernel": ("confirmed", "a test passed while the notebook ran but failed when re-run outside "
                                            "the student's kernel; the cell scores 0"),
    "submission-problem": ("problem", "the submitted files were not what the assignment expects"),
    "test-cell-changed": ("problem", "a test cell was deleted, edited, retyped or duplicated; nbgrader restored it"),
    "output-flood": ("problem", "a cell printed more than the grader keeps; the rest was dropped"),
    "kernel-problem": ("problem", "the notebook's kernel died, ran out of memory, or ran out of time"),
}

# The severities that flag a student for a person to read (grades.csv, the class run's summary).
WORTH_A_LOOK = frozenset({"tampering", "confirmed", "suspicious"})

_LIBRARIES = {"np", "numpy", "torch", "F", "nn", "softgrad", "builtins", "__builtins__", "IPython", "sys", "math",
              "testing", "torch_testing", "reference", "gradcheck", "scipy"}
_ALLOWED_SETTINGS = ("torch.backends.",)
_IPYTHON_NAMES = {"showtraceback", "_showtraceback", "showsyntaxerror", "excepthook", "run_cell", "run_ast_nodes",
                  "InteractiveShell", "set_custom_exc", "displayhook", "settrace", "setprofile"}
_FRAME_NAMES = {"_getframe", "currentframe", "stack", "getouterframes", "f_back", "f_locals", "f_globals",
                "get_objects", "get_referrers", "get_referents", "getinnerframes", "trace"}
_COMPARISONS = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__float__", "__array__",
                "__array_ufunc__", "__array_function__", "__abs__", "__len__", "__index__", "__int__"}
_EXITS = {("os", "_exit"), ("sys", "exit"), ("os", "kill"), ("os", "abort"), ("signal", "signal"),
          ("resource", "setrlimit"), ("signal", "alarm"), ("os", "killpg")}
_DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__", "setattr", "delattr"}


@dataclass(frozen=True)
class Finding:
    """One thing an instructor should look at: which rule, which cell, which line, and what."""

    rule: str
    cell: str
    line: int
    detail: str

    @property
    def severity(self) -> str:
        return RULES[self.rule][0]

    def as_dict(self) -> dict:
        return {**asdict(self), "severity": self.severity}


def _dotted(node: ast.AST) -> str:
    """``np.testing.assert_allclose`` for an attribute chain, '' when it does not start at a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Call):
        inner = _dotted(node.func)
        return f"{inner}()." + ".".join(reversed(parts)) if inner else ""
    return ""


def _line_text(source: str, line: int) -> str:
    lines = source.splitlines()
    return lines[line - 1].strip()[:160] if 0 < line <= len(lines) else ""


def scan_cells(cells: list[tuple[str, str]], *, modules: set[str] | frozenset[str] = frozenset()) -> list[Finding]:
    """Findings in the student's cells, given as ``(cell label, source)`` pairs.

    ``modules`` are extra names bound to modules in the notebook (its imports), treated like
    ``np`` and ``torch``. Cells that are not valid Python (IPython magics, a syntax error)
    are read after dropping the lines that start with ``%`` or ``!``.
    """
    findings: list[Finding] = []
    modules = set(modules) | _LIBRARIES
    for label, source in cells:
        tree = _parse(source)
        if tree is None:
            continue
        for name in _imported_modules(tree):
            modules.add(name)
        for node in ast.walk(tree):
            findings += _check_node(node, label, source, modules)
    unique = {(f.rule, f.cell, f.line): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.cell, f.line, f.rule))


def _parse(source: str) -> ast.AST | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        cleaned = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
        try:
            return ast.parse(cleaned)
        except SyntaxError:
            return None


def _imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _stored(target: ast.AST) -> list[ast.AST]:
    """The attributes an assignment target rebinds: ``a.b`` in ``a.b = ...`` and ``(a.b, c) = ...``."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return [node for element in target.elts for node in _stored(element)]
    if isinstance(target, ast.Starred):
        return _stored(target.value)
    if isinstance(target, ast.Subscript):
        # Item assignment (plt.rcParams["x"] = ...) changes a container, not a module's function,
        # unless the container is a namespace itself (np.__dict__["allclose"] = ...).
        inner = target.value
        return [inner] if isinstance(inner, ast.Attribute) and inner.attr in ("__dict__", "__builtins__") else []
    return [target]


def _check_node(node: ast.AST, label: str, source: str, modules: set[str]) -> list[Finding]:
    line = getattr(node, "lineno", 0)

    def found(rule: str) -> list[Finding]:
        return [Finding(rule, label, line, _line_text(source, line))]

    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        for target in targets:
            for sub in _stored(target):
                if isinstance(sub, ast.Attribute):
                    dotted = _dotted(sub)
                    root = dotted.split(".")[0].split("(")[0]
                    if root in modules and not dotted.startswith(_ALLOWED_SETTINGS):
                        return found("tampers-with-ipython" if sub.attr in _IPYTHON_NAMES else "patches-library")
                    if sub.attr in _IPYTHON_NAMES or "get_ipython()" in dotted:
                        return found("tampers-with-ipython")
    if isinstance(node, ast.Attribute):
        dotted = _dotted(node)
        if node.attr in _IPYTHON_NAMES and (node.attr != "run_cell" or "get_ipython" in dotted):
            return found("tampers-with-ipython")
        if node.attr in _FRAME_NAMES and dotted.split(".")[0] in {"sys", "inspect", "gc", "traceback"} | {""}:
            return found("reads-test-internals")
        if node.attr in _FRAME_NAMES and node.attr.startswith("f_"):
            return found("reads-test-internals")
        if dotted.split(".")[0] in {"softgrad", "reference", "mistakes"} and (
                "reference" in dotted.split(".")[:2] or "mistakes" in dotted.split(".")[:2]):
            return found("uses-reference-code")
        if dotted in {"sys.modules", "sys.meta_path", "sys.path_hooks"}:
            return found("dynamic-code")
        parts = tuple(dotted.split(".")[-2:])
        if parts in _EXITS:
            return found("ends-the-process")
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        module = node.module if isinstance(node, ast.ImportFrom) else None
        names = [a.name for a in node.names]
        full = [f"{module}.{n}" if module else n for n in names]
        answer_key = {name.rsplit(".", 1)[-1] for name in ANSWER_KEY}
        if any(n.startswith(ANSWER_KEY) for n in full) or (module == "softgrad" and answer_key & set(names)):
            return found("uses-reference-code")
        if any(n.split(".")[0] in {"ctypes", "importlib", "faulthandler", "resource"} for n in full + [module or ""]):
            return found("ends-the-process" if "ctypes" in str(full) or "resource" in str(full) else "dynamic-code")
        if any(n.split(".")[0] in {"inspect", "gc"} for n in full + [module or ""]):
            return found("reads-test-internals")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in _DYNAMIC_CALLS:
            return found("dynamic-code")
        if node.func.id in {"exit", "quit"}:
            return found("ends-the-process")
    if isinstance(node, ast.FunctionDef) and node.name in _COMPARISONS:
        return found("lying-comparison")
    return []
