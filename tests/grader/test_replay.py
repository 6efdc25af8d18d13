"""The re-run outside the kernel (softgrad.grader.replay, VerifyOutsideKernel): a test cell that scored nothing in
the notebook run is not run again, a later cell that needed one of its names is unverifiable (never a failure the
student did not cause), and every other cell is re-run as before."""

from __future__ import annotations

import json

import nbformat
import pytest

from softgrad.grader.preprocessors import VerifyOutsideKernel
from softgrad.grader.replay import _assigned_names, replay_notebook


def cell(source: str, kind: str, grade_id: str, outputs: list | None = None) -> nbformat.NotebookNode:
    meta = {"grade_id": grade_id, "locked": kind != "student", "solution": kind == "student",
            "grade": kind == "test", "schema_version": 3}
    if kind == "test":
        meta["points"] = 1
    made = nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})
    made.outputs = outputs or []
    return made


def notebook() -> nbformat.NotebookNode:
    """A provided cell, a student's function (off by one), and three tests: the second reads the first's ``y``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        cell("import math", "provided", "setup"),
        cell("def plus_one(x):\n    return x + 2", "student", "plus_one"),
        cell("y = plus_one(1)\nassert y == 2, f'plus_one(1) gave {y}'", "test", "test_value",
             outputs=[nbformat.v4.new_output("error", ename="AssertionError", evalue="plus_one(1) gave 3",
                                             traceback=[])]),
        cell("assert y > 0", "test", "test_reads_y"),
        cell("assert plus_one(-1) == 0, 'plus_one(-1)'", "test", "test_negative"),
    ]
    return nb


@pytest.fixture(autouse=True)
def no_shell_left_behind():
    """The re-run makes this process an IPython shell (in the grader, every re-run is a new process): each test
    starts without one and leaves none, since the checks behave as in a notebook wherever a shell exists."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    yield
    InteractiveShell.clear_instance()


def replay(nb: nbformat.NotebookNode, tmp_path, skip=frozenset()) -> dict:
    return replay_notebook(json.loads(nbformat.writes(nb)), cwd=tmp_path, call_timeout=30, memory_limit_mb=2048,
                           forbidden_modules=(), skip=frozenset(skip))


@pytest.mark.slow
def test_every_test_cell_is_re_run_when_none_is_skipped(tmp_path):
    """Without skips, each test cell runs again against the student's function in the sandbox."""
    cells = replay(notebook(), tmp_path)["cells"]
    assert cells["test_value"] == {"outcome": "fail", "message": "AssertionError: plus_one(1) gave 3"}
    assert cells["test_reads_y"]["outcome"] == "pass", "y was assigned before the assertion failed"
    assert cells["test_negative"]["outcome"] == "fail"


@pytest.mark.slow
def test_a_skipped_cell_is_not_run_and_its_names_make_later_cells_unverifiable(tmp_path):
    """A skipped cell's outcome says why; the cell reading its ``y`` is unverifiable; another cell still fails."""
    cells = replay(notebook(), tmp_path, skip={"test_value"})["cells"]
    assert cells["test_value"] == {"outcome": "skipped", "message": "it scored nothing in the notebook run"}
    assert cells["test_reads_y"] == {"outcome": "unverifiable",
                                     "message": "it reads 'y', which a test cell that was not re-run assigns"}
    assert cells["test_negative"] == {"outcome": "fail", "message": "AssertionError: plus_one(-1)"}


def test_the_preprocessor_skips_exactly_the_test_cells_that_scored_nothing(monkeypatch):
    """VerifyOutsideKernel asks the re-run to skip the failed test cell, and no passing one."""
    nb = notebook()
    sent = {}

    def run(self, nb, data, cwd, environment):
        sent.update(json.loads(data))
        return json.dumps({"cells": {"test_value": {"outcome": "skipped", "message": "..."},
                                     "test_reads_y": {"outcome": "fail", "message": "AssertionError: y"},
                                     "test_negative": {"outcome": "pass", "message": ""}}}).encode(), b""

    monkeypatch.setattr(VerifyOutsideKernel, "_run_forked", run)
    VerifyOutsideKernel().preprocess(nb, {"nbgrader": {"assignment": "ps0"}})
    assert sent["skip"] == ["test_value"]
    assert nb.metadata["softgrad"]["replay"]["outcomes"] == {"test_value": "skipped", "test_reads_y": "fail",
                                                             "test_negative": "pass"}
    assert nb.cells[2].outputs[0].ename == "AssertionError", "the skipped cell keeps the notebook run's failure"
    assert nb.cells[3].outputs[0].ename == "GradingIntegrityError", "a cell that passed and failed the re-run loses"


def test_assigned_names_are_read_from_the_cell_s_code():
    """Assignments, imports, definitions and loop targets; IPython's magics do not stop the reading."""
    source = "%matplotlib inline\nimport numpy as np\nfrom math import inf\nfor i, (a, b) in []: pass\n" \
             "def f(): z = 1\nclass C: pass\nx: int = 3\nprint(y)"
    assert _assigned_names(source) == {"np", "inf", "i", "a", "b", "f", "z", "C", "x"}
    assert _assigned_names("def broken(:") == set()
