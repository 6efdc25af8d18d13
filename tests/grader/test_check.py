"""`softgrad check`: a self-study reader runs every test against their own notebook."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from conftest import REPO
from support import scaffold

from softgrad.grader.check import merge_tests

pytestmark = pytest.mark.slow
RELEASE = REPO / "exercises" / "ps1_softmax" / "softmax.ipynb"
SOURCE = REPO / "solutions" / "ps1_softmax" / "softmax.ipynb"


def check(path, *extra):
    return subprocess.run([sys.executable, "-m", "softgrad", "check", str(path), "--course", str(REPO), *extra],
                          capture_output=True, text=True, timeout=300)


def learner_notebook(tmp_path, **answers):
    filled = scaffold.fill_notebook(RELEASE, {**scaffold.solution_sources(SOURCE), **answers})
    path = tmp_path / "my softmax.ipynb"
    nbformat.write(filled, path)
    return path


def test_a_right_notebook_passes_every_test_hidden_ones_included(tmp_path):
    done = check(learner_notebook(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  test_softmax_stability  (2/2)" in done.stdout
    assert "15 of 15 points" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my softmax.ipynb"], "the check writes nothing"


def test_a_notebook_copied_out_of_the_clone_finds_the_course_it_was_installed_from(tmp_path):
    """No --course, and no course folder above the notebook or here: the library knows its clone."""
    done = subprocess.run([sys.executable, "-m", "softgrad", "check", str(learner_notebook(tmp_path))],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "15 of 15 points" in done.stdout
    progress = done.stderr.splitlines()
    assert progress[0].startswith("softgrad check: my softmax.ipynb against ps1_softmax (10 tests, hidden ones too)")
    assert "[1/10] test_softmax_values" in done.stderr and "[10/10] test_log_softmax_dtypes_and_input" in done.stderr


def test_a_wrong_answer_fails_with_the_name_of_its_mistake(tmp_path):
    wrong = "def softmax(z, axis=-1):\n    e = np.exp(z)\n    return e / e.sum(axis=axis, keepdims=True)\n"
    done = check(learner_notebook(tmp_path, softmax=wrong))
    assert done.returncode == 1
    assert "FAIL  test_softmax_stability  (0/2)" in done.stdout
    assert "[softmax-no-max-shift]" in done.stdout
    assert "PASS  test_logsumexp_values" in done.stdout


def test_deleted_and_edited_tests_are_run_as_the_course_wrote_them(tmp_path):
    learner = nbformat.read(learner_notebook(tmp_path, softmax="def softmax(z, axis=-1):\n    return z\n"), 4)
    learner.cells = [c for c in learner.cells
                     if c.metadata.get("nbgrader", {}).get("grade_id") != "test_softmax_stability"]
    for cell in learner.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_softmax_values":
            cell.source = "assert True"
    merged = merge_tests(nbformat.read(SOURCE, 4), learner)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in merged.cells]
    assert "test_softmax_stability" in ids
    values = merged.cells[ids.index("test_softmax_values")].source
    assert "BEGIN HIDDEN TESTS" in values and "check_against_reference" in values


def test_a_cell_the_learner_added_stays_after_the_cell_it_followed():
    learner = nbformat.read(RELEASE, 4)
    index = next(i for i, c in enumerate(learner.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == "softmax")
    learner.cells.insert(index + 1, nbformat.v4.new_code_cell("helper = 42"))
    merged = merge_tests(nbformat.read(SOURCE, 4), learner)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in merged.cells]
    assert merged.cells[ids.index("softmax") + 1].source == "helper = 42"


def test_a_file_that_is_not_a_notebook_gets_a_clear_error(tmp_path):
    broken = tmp_path / "softmax.ipynb"
    broken.write_text('{"cells": [')
    done = check(broken)
    assert done.returncode == 2 and "is not a readable notebook" in done.stderr


def test_a_notebook_of_no_exercise_gets_a_clear_error(tmp_path):
    other = tmp_path / "scratch.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), other)
    done = check(other)
    assert done.returncode == 2 and "none of the course's graded cells" in done.stderr
