"""The mutation suite: wrong implementations lose points and are named; correct ones keep full marks."""

from __future__ import annotations

import pytest
from conftest import ASSIGNMENTS, source_notebooks
from mutants import catalogues, matrix
from support import scaffold

from softgrad.mistakes import CATALOGUE

pytestmark = pytest.mark.slow

CATALOGUES = catalogues()
CASES = [
    pytest.param(assignment, mutant, id=f"{assignment}-{mutant.name}", marks=pytest.mark.xdist_group(assignment))
    for assignment, module in CATALOGUES.items()
    for mutant in module.MUTANTS
]


@pytest.mark.parametrize(("assignment", "mutant"), CASES)
def test_mutant(assignment, mutant, graded_class, record_property):
    record_property("assignment", assignment)
    record_property("mutant_kind", "wrong" if mutant.wrong else "correct")
    graded = graded_class(assignment)
    # A submission nbgrader could not run scores 0 for a reason that has nothing to do with its code.
    assert graded.not_graded(mutant.name) is None, (
        f"{mutant.name!r} was not graded: {graded.not_graded(mutant.name)} "
        f"(log: {graded.course / 'reports' / assignment / 'autograde.log'})"
    )
    result = graded.results[mutant.name]
    if mutant.wrong:
        assert result.auto_score < result.auto_max_score, (
            f"the wrong implementation {mutant.name!r} kept full marks ({result.auto_score}/{result.auto_max_score})"
        )
        if mutant.diagnosis:
            feedback = result.output_of_failed_cells()
            assert mutant.diagnosis in " ".join(feedback.split()), (
                f"{mutant.name!r} lost points, but no failing test says {mutant.diagnosis!r}. Its messages:\n"
                f"{feedback[:3000]}"
            )
    else:
        assert result.auto_score == result.auto_max_score, (
            f"the correct implementation {mutant.name!r} lost points in {result.failed_cells()}:\n"
            f"{result.output_of_failed_cells()[:3000]}"
        )


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_mutant_names_are_unique_student_ids(assignment):
    names = [m.name for m in CATALOGUES[assignment].MUTANTS]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    assert not duplicated, f"two mutants would overwrite each other's submission: {duplicated}"


def test_every_assignment_has_a_catalogue():
    assert set(ASSIGNMENTS) <= set(CATALOGUES), f"no mutant catalogue for {set(ASSIGNMENTS) - set(CATALOGUES)}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_known_mistake_of_the_assignment_has_a_mutant(assignment):
    """Each catalogued mistake that applies to a graded function of the assignment is exercised."""
    graded = set()
    for notebook in source_notebooks(assignment):
        graded |= set(scaffold.solution_sources(notebook))
    applicable = {m.id for m in CATALOGUE.values() if set(m.implementations) & graded}
    applicable.add("mutates-input")
    named = {m.diagnosis.strip("[]") for m in CATALOGUES[assignment].MUTANTS if m.wrong and m.diagnosis}
    # the bug-class matrix's student-style mutants, each of which must be named by an id of its class
    named |= {i for m in matrix.MATRIX if m.assignment == assignment for i in matrix.BY_ID[m.bug].ids}
    assert applicable <= named, (f"known mistakes with no mutant in tests/mutants/{assignment}.py or in the "
                                 f"matrix (tests/mutants/matrix.py): {applicable - named}")
    kinds = {m.wrong for m in CATALOGUES[assignment].MUTANTS}
    assert kinds == {True, False}, "a catalogue needs both wrong and correct implementations"
