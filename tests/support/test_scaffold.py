"""The test scaffolding's notebook helpers (tests/support/scaffold.py; the full pipeline is tested in
tests/grader/test_grading_pipeline.py)."""

from __future__ import annotations

import nbformat
import pytest
from conftest import REPO

from support import scaffold

SOURCE = REPO / "solutions" / "ps1_softmax" / "softmax.ipynb"
RELEASE = REPO / "exercises" / "ps1_softmax" / "softmax.ipynb"


def test_solution_sources_strip_the_markers_and_keep_the_code():
    answers = scaffold.solution_sources(SOURCE)
    assert {"softmax", "logsumexp", "log_softmax"} <= set(answers)
    assert "BEGIN SOLUTION" not in answers["softmax"] and "def softmax(" in answers["softmax"]


def test_fill_notebook_replaces_only_the_named_solution_cells():
    nb = scaffold.fill_notebook(RELEASE, {"softmax": "def softmax(z, axis=-1):\n    return z"})
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells}
    assert cells["softmax"].source.endswith("return z")
    assert "raise NotImplementedError()" in cells["logsumexp"].source
    nbformat.validate(nb)


def test_fill_notebook_rejects_unknown_cells():
    with pytest.raises(KeyError, match="no_such_function"):
        scaffold.fill_notebook(RELEASE, {"no_such_function": "pass"})


def test_submit_rejects_student_ids_nbgrader_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        scaffold.submit(tmp_path, "ps1_softmax", "../escape", {})


def test_make_course_rejects_an_unknown_assignment(tmp_path):
    with pytest.raises(FileNotFoundError, match="ps9_missing"):
        scaffold.make_course(tmp_path, REPO, ["ps9_missing"])


def test_a_failing_nbgrader_command_raises_with_its_log(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text())
    with pytest.raises(RuntimeError, match="autograde"):
        scaffold.autograde(tmp_path, "ps_does_not_exist")
