"""The real nbgrader pipeline: release regenerated exactly, solutions full marks, blanks zero, feedback.

Each assignment's class is graded once (see conftest.py); the tests of one assignment share
an xdist group so that they run on the worker that graded it.
"""

from __future__ import annotations

import filecmp
import html
import re

import nbformat
import pytest
from conftest import ASSIGNMENTS, CHINESE_MISTAKE, CHINESE_STUDENT, REPO, SOLUTION_STUDENT, UNTOUCHED_STUDENT
from support import scaffold

pytestmark = pytest.mark.slow


def _tree(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def test_release_is_exactly_what_nbgrader_generates(assignment, graded_class):
    """exercises/<assignment> is byte for byte what `nbgrader generate_assignment` makes from solutions/."""
    generated = graded_class(assignment).release
    committed = REPO / "exercises" / assignment
    assert committed.is_dir(), f"{committed} is missing: run `nbgrader generate_assignment {assignment} --force`"
    assert _tree(committed) == _tree(generated), "the release folder has different files than nbgrader generates"
    different = [name for name in _tree(committed)
                 if not filecmp.cmp(committed / name, generated / name, shallow=False)]
    assert not different, (
        f"{different} in exercises/{assignment} differ from what nbgrader generates from solutions/: "
        f"never edit the release by hand; run `nbgrader generate_assignment {assignment} --force --no-db`"
    )


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def test_solution_scores_full_marks(assignment, graded_class):
    result = graded_class(assignment).results[SOLUTION_STUDENT]
    assert result.auto_max_score > 0
    assert result.auto_score == result.auto_max_score, (
        f"the instructor's solution lost points in {result.failed_cells()}:\n{result.output_of_failed_cells()}"
    )


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def test_the_chinese_notebook_scores_what_the_english_one_does(assignment, graded_class):
    """The Chinese release, filled in, is graded by the same gradebook cell for cell like the English one."""
    graded = graded_class(assignment)
    mistake = next(m for m in graded.mutants.values() if m.wrong and m.diagnosis)
    for chinese, english in ((CHINESE_STUDENT, SOLUTION_STUDENT), (CHINESE_MISTAKE, mistake.name)):
        assert graded.not_graded(chinese) is None, graded.not_graded(chinese)
        scores = {g: c.score for g, c in graded.results[chinese].cells.items()}
        assert scores == {g: c.score for g, c in graded.results[english].cells.items()}, (
            f"{chinese} and {english} differ: {graded.results[chinese].output_of_failed_cells()[:2000]}")
    # the mistake is named in the notebook's language
    failed = graded.results[CHINESE_MISTAKE].output_of_failed_cells()
    assert mistake.diagnosis in failed and re.search(r"[\u4e00-\u9fff]", failed), (
        f"the Chinese notebook's feedback should name {mistake.diagnosis} in Chinese:\n{failed[:2000]}")


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def test_untouched_release_scores_zero(assignment, graded_class):
    result = graded_class(assignment).results[UNTOUCHED_STUDENT]
    passed = [g for g, c in result.cells.items() if c.autograded and c.score > 0]
    assert result.auto_max_score > 0
    assert not passed, f"cells {passed} give points to a notebook with no work in it"
    assert all("NotImplementedError" in result.cells[g].output for g in result.failed_cells())


def _hidden_lines(assignment):
    """Substantial lines of code that occur only inside the hidden-test regions of the sources."""
    hidden, visible = [], set()
    pattern = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", flags=re.S)
    for notebook in (REPO / "solutions" / assignment).glob("*.ipynb"):
        for cell in nbformat.read(notebook, as_version=4).cells:
            for block in pattern.findall(cell.source):
                hidden += [line.strip() for line in block.splitlines() if len(line.strip()) > 25]
            visible |= {line.strip() for line in pattern.sub("", cell.source).splitlines()}
    # a hidden line that is part of a visible one (a shared prefix) proves nothing
    return [line for line in hidden if not any(line in seen for seen in visible)]


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def test_feedback_shows_scores_and_messages_but_not_hidden_tests(assignment, graded_class):
    graded = graded_class(assignment)
    # the first wrong mutant with a named diagnosis: its feedback must carry the explanation
    mutant = next((m for m in graded.mutants.values() if m.wrong and m.diagnosis), None)
    students = [SOLUTION_STUDENT] + ([mutant.name] if mutant else [])
    for student in students:
        scaffold.generate_feedback(graded.course, assignment, "--student", student)
    hidden = _hidden_lines(assignment)
    assert hidden, "expected hidden tests in the source notebooks"
    for student in students:
        pages = list((graded.course / "feedback" / student / assignment).glob("*.html"))
        assert pages, f"no feedback generated for {student}"
        text = html.unescape(re.sub(r"<[^>]+>", "", "".join(p.read_text() for p in pages)))
        result = graded.results[student]
        assert f"{result.auto_score:g}" in text or f"{result.auto_score}" in text
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"hidden test code appears in {student}'s feedback: {leaked[:3]}"
        if student != SOLUTION_STUDENT:
            assert mutant.diagnosis in " ".join(text.split()), f"the feedback does not name {mutant.diagnosis}"
