"""The bug-class matrix, graded by the real pipeline: every student-style wrong implementation loses points
and is named by one of its own mistakes, and by no mistake it does not make; every correct variant keeps
full marks. The terminal summary prints the table (graded function x class of bug) and the diagnosis's
precision and recall."""

from __future__ import annotations

import re

import pytest
from conftest import ASSIGNMENTS, source_notebooks
from mutants import matrix
from support import scaffold

from softgrad.mistakes import CATALOGUE

pytestmark = pytest.mark.slow

NAMED = re.compile(r"\[([a-z0-9-]+)\]")


def named_ids(feedback: str) -> set[str]:
    """The catalogue's ids that a feedback text names (as "[id]")."""
    return set(NAMED.findall(feedback)) & set(CATALOGUE)


WRONG = [pytest.param(m, id=f"{m.assignment}-{m.name}", marks=pytest.mark.xdist_group(m.assignment))
         for m in matrix.MATRIX]
RIGHT = [pytest.param(assignment, c, id=f"{assignment}-{c.name}", marks=pytest.mark.xdist_group(assignment))
         for assignment, variants in matrix.CORRECT.items() for c in variants]


def test_the_matrix_is_complete_and_consistent():
    """Every cell is a mutant or a reason; every graded function of every assignment has a row."""
    assert matrix.check_consistency() == []
    graded = set()
    for assignment in ASSIGNMENTS:
        for notebook in source_notebooks(assignment):
            graded |= {name for name in scaffold.solution_sources(notebook) if not name.startswith("written_")}
    # pick_device and the wrapper of ps5 compute no softmax: the Function (through its wrapper) is the row
    rows = set(matrix.functions()) | {"SoftmaxCrossEntropy", "pick_device"}
    assert graded <= rows, f"graded functions without a row in the matrix: {sorted(graded - rows)}"
    for mutant in matrix.MATRIX:
        assert mutant.own <= set(CATALOGUE), f"{mutant.name}: unknown ids {sorted(mutant.own - set(CATALOGUE))}"


@pytest.mark.parametrize("mutant", WRONG)
def test_a_student_style_mistake_is_caught_and_named_for_what_it_is(mutant, graded_class, record_property):
    graded = graded_class(mutant.assignment)
    assert graded.not_graded(mutant.name) is None, f"{mutant.name!r} was not graded: {graded.not_graded(mutant.name)}"
    result = graded.results[mutant.name]
    feedback = result.output_of_failed_cells()
    named = named_ids(feedback)
    record_property("matrix", (f"{mutant.function} ({mutant.assignment.split('_')[0]})", mutant.bug,
                               result.auto_score < result.auto_max_score,
                               sorted(named & mutant.own), sorted(named - mutant.own)))
    assert result.auto_score < result.auto_max_score, (
        f"{mutant.name} kept full marks ({result.auto_score}/{result.auto_max_score})")
    assert not named - mutant.own, (
        f"{mutant.name} is named for mistakes it does not make: {sorted(named - mutant.own)}; its own are "
        f"{sorted(mutant.own)}. Its messages:\n{feedback[:3000]}")
    assert named & mutant.own, (
        f"{mutant.name} lost points but none of {sorted(mutant.own)} was named:\n{feedback[:3000]}")


@pytest.mark.parametrize(("assignment", "variant"), RIGHT)
def test_a_student_style_correct_implementation_keeps_full_marks(assignment, variant, graded_class):
    result = graded_class(assignment).results[variant.name]
    assert result.auto_score == result.auto_max_score, (
        f"{variant.name} lost points in {result.failed_cells()}:\n{result.output_of_failed_cells()[:3000]}")
