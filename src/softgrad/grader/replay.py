"""Re-run a graded notebook's test cells outside the student's kernel.

While nbgrader runs a notebook, the student's code and the tests share one Python process:
code in a solution cell can rebind ``np.allclose``, replace the course's checks, silence
tracebacks or read the tests' expected values, and a test that should fail then passes. So
after the notebook has run, the grader re-runs every test cell here, in a fresh trusted
process: the provided cells (setup, given functions) run in this process, the student's cells
run in a :class:`~softgrad.grader.sandbox.Sandbox`, and each name the student defined is bound to a
:class:`~softgrad.grader.sandbox.Proxy`. The test cells, restored by nbgrader from the gradebook,
then run exactly as written, against NumPy and checks that the student's code never touched.

Each test cell gets one of four outcomes: ``pass``, ``fail`` (with the message),
``unverifiable`` (the cell hands the student's function something that cannot cross the
process boundary, or uses a check that only makes sense in the student's own process, such
as counting the lines it runs), or ``skipped`` (the cell scored nothing in the notebook run).
:class:`softgrad.grader.preprocessors.VerifyOutsideKernel` keeps the lower of the two grades, so
this re-run can take points away that the notebook run gave, never add any: a cell that
scored nothing has nothing to lose, and is not run again, unless a later test cell reads a
name it assigns. Skipping never changes what another test sees, so a student cannot fail one
test on purpose to weaken the re-run of the next.

Run as ``python -m softgrad.grader.replay`` with a request as JSON on stdin; the answer is JSON on
stdout.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback
from pathlib import Path

from softgrad.grader.cells import ALL_NAMES, assigned_names, cell_kind, read_names
from softgrad.testing.rerun import UNVERIFIABLE

__all__ = ["replay_notebook"]

def _first_line(text: str, limit: int = 1500) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def replay_notebook(nb: dict, *, cwd: Path, call_timeout: float, memory_limit_mb: int,
                    forbidden_modules: tuple[str, ...], skip: frozenset[str] = frozenset()) -> dict:
    """Re-run the test cells of an executed notebook (a dict in nbformat 4); see the module docstring.

    ``skip``: the grade ids of test cells that need not run again (those that scored nothing in the notebook
    run); each is skipped unless a later test cell reads a name it may assign.
    """
    from softgrad.grader.sandbox import Sandbox, SandboxDied, Unverifiable, new_shell

    cells = [(cell_kind(c), c) for c in nb["cells"]]
    results: dict[str, dict] = {}
    notes: list[str] = []
    shell = new_shell()
    namespace = shell.user_ns
    provided: set[str] = set()
    skip = _skippable(cells, skip)
    sandbox = None
    # In notebook order, as the kernel ran them: a cell that loops or exits costs what comes
    # after it, not the tests that ran before.
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        try:
            sandbox = stack.enter_context(Sandbox(cwd=cwd, call_timeout=call_timeout, memory_limit_mb=memory_limit_mb,
                                                  forbidden_modules=forbidden_modules))
        except SandboxDied as died:
            notes.append(f"sandbox: {died}")
        for kind, cell in cells:
            if kind in ("student", "provided") and sandbox is not None:
                try:
                    sandbox.run_cell(kind, _source(cell))
                except SandboxDied:
                    pass  # the tests that follow say so
            if kind == "provided":
                before = {k: id(v) for k, v in namespace.items()}
                outcome = shell.run_cell(_source(cell), store_history=False, silent=True)
                provided |= {k for k, v in namespace.items() if before.get(k) != id(v)}
                if not outcome.success:
                    notes.append(f"provided cell {_grade_id(cell)} failed in the re-run: "
                                 f"{outcome.error_in_exec or outcome.error_before_exec!r}")
            if kind != "test":
                continue
            grade_id = _grade_id(cell)
            if grade_id in skip:
                results[grade_id] = {"outcome": "skipped", "message": "it scored nothing in the notebook run"}
                continue
            if sandbox is None or sandbox.dead_reason:
                reason = sandbox.dead_reason if sandbox is not None else notes[-1]
                results[grade_id] = {"outcome": "fail", "message": f"SandboxDied: {reason}"}
                continue
            try:
                _bind_student_names(namespace, sandbox, provided)
            except SandboxDied as died:
                results[grade_id] = {"outcome": "fail", "message": f"SandboxDied: {died}"}
                continue
            UNVERIFIABLE.clear()
            outcome = shell.run_cell(_source(cell), store_history=False, silent=True)
            error = outcome.error_in_exec or outcome.error_before_exec
            if isinstance(error, Unverifiable) or UNVERIFIABLE:
                reason = str(error) if isinstance(error, Unverifiable) else UNVERIFIABLE[0]
                results[grade_id] = {"outcome": "unverifiable", "message": reason}
            elif error is None:
                results[grade_id] = {"outcome": "pass", "message": ""}
            else:
                results[grade_id] = {"outcome": "fail", "message": _first_line(f"{type(error).__name__}: {error}")}
    if sandbox is not None:
        notes += [f"sandbox {e}" for e in sandbox.cell_errors[:5]]
    return {"cells": results, "notes": notes}


def _bind_student_names(namespace: dict, sandbox, provided: set[str]) -> None:
    """A proxy for each function the student defined, a stand-in for each autograd.Function class
    (:mod:`softgrad.grader.remote`), and a copy of each plain value."""
    from softgrad.grader.remote import remote_function
    from softgrad.grader.sandbox import Proxy

    for name, kind in sandbox.names().items():
        if name in provided:
            continue  # the tests use the course's version of a provided name
        if kind == "torch-function":
            namespace[name] = remote_function(name, sandbox.apply_function)
        elif kind == "function":
            if not isinstance(namespace.get(name), Proxy):
                namespace[name] = Proxy(sandbox, name)
        else:
            try:
                namespace[name] = sandbox.get(name)
            except Exception:  # noqa: BLE001 (not plain data: a test that uses it cannot be re-run)
                namespace.pop(name, None)


def _skippable(cells: list[tuple[str | None, dict]], requested: frozenset[str]) -> frozenset[str]:
    """The test cells of ``requested`` that no later test cell depends on: none reads a name they may assign
    without assigning that name itself."""
    tests = [(_grade_id(cell), _source(cell)) for kind, cell in cells if kind == "test"]
    skippable = set()
    for position, (grade_id, source) in enumerate(tests):
        if grade_id not in requested:
            continue
        bound = assigned_names(source)
        later = [read_names(s) - assigned_names(s) for _, s in tests[position + 1:]]
        if ALL_NAMES not in bound and not any(bound & reads for reads in later):
            skippable.add(grade_id)
    return frozenset(skippable)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _grade_id(cell: dict) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "?")


def main() -> None:
    request = json.load(sys.stdin)
    try:
        answer = replay_notebook(request["notebook"], cwd=Path(request["cwd"]),
                                 call_timeout=request["call_timeout"], memory_limit_mb=request["memory_limit_mb"],
                                 forbidden_modules=tuple(request["forbidden_modules"]),
                                 skip=frozenset(request.get("skip", ())))
    except Exception:  # a bug on the trusted side: nothing is verified, the notebook run stands
        answer = {"error": traceback.format_exc()[-3000:]}
    sys.__stdout__.write(json.dumps(answer))
    sys.__stdout__.flush()


if __name__ == "__main__":
    main()
