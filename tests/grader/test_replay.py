"""The re-run outside the kernel (softgrad.grader.replay, VerifyOutsideKernel): a test cell that scored nothing in
the notebook run is not run again unless a later test cell reads a name it assigns, and every other cell is re-run
as before."""

from __future__ import annotations

import json

import nbformat
import pytest

from softgrad.grader.cells import ALL_NAMES, assigned_names, read_names
from softgrad.grader.preprocessors import VerifyOutsideKernel
from softgrad.grader.replay import replay_notebook


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
def test_a_zero_scored_cell_is_skipped_unless_a_later_test_reads_its_names(tmp_path):
    """test_value assigns the ``y`` test_reads_y reads, so it runs again; test_negative, needed by none, is skipped."""
    cells = replay(notebook(), tmp_path, skip={"test_value", "test_negative"})["cells"]
    assert cells["test_value"] == {"outcome": "fail", "message": "AssertionError: plus_one(1) gave 3"}
    assert cells["test_reads_y"]["outcome"] == "pass", "the later test sees what it saw in the notebook run"
    assert cells["test_negative"] == {"outcome": "skipped", "message": "it scored nothing in the notebook run"}


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


def test_the_names_a_cell_binds_and_reads_are_read_from_its_code():
    """Every way Python binds a name counts; IPython's magics do not stop the reading; a star import binds anything."""
    source = ("%matplotlib inline\nimport numpy as np\nfrom math import inf\nfor i, (a, b) in []: pass\n"
              "def f(): z = 1\nclass C: pass\nx: int = 3\ntry: pass\nexcept ValueError as err: pass\n"
              "match x:\n    case [1, *rest]: pass\n    case {'k': 1, **others}: pass\n    case int() as n: pass\n"
              "with open('f') as handle: pass\nprint(y, (w := 2))")
    assert assigned_names(source) == {"np", "inf", "i", "a", "b", "f", "z", "C", "x", "err", "rest", "others", "n",
                                      "handle", "w"}
    assert read_names(source) == {"get_ipython", "open", "print", "x", "y", "ValueError", "int"}  # %magic: a call
    assert ALL_NAMES in assigned_names("from numpy import *")
    assert assigned_names("def broken(:") == set() == read_names("def broken(:")
