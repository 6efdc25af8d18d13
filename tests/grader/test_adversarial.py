"""The adversarial suite: a class of broken, hostile and gaming submissions, graded in one real run.

Every case in ``tests/support/adversarial.py`` must get its expected score (never more than earned),
the instructor must see the reason, and the honest students graded in the same run keep
full marks.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import REPO
from support import scaffold
from support.adversarial import ASSIGNMENT, CASES, FULL, HONEST_STUDENTS, NBGRADER_ARGS, NOTEBOOK, write

from softgrad.grader import intake, report

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("adversarial")]
_GRADED = {}


@pytest.fixture(scope="module")
def adversarial_class(tmp_path_factory):
    """The whole adversarial class graded once: results, findings, report."""
    if "class" not in _GRADED:
        course = scaffold.make_course(tmp_path_factory.mktemp("adversarial"), REPO, [ASSIGNMENT])
        release = scaffold.generate_assignment(course, ASSIGNMENT)
        answers = scaffold.solution_sources(REPO / "solutions" / ASSIGNMENT / NOTEBOOK)
        for student in HONEST_STUDENTS:
            write(scaffold.fill_notebook(release / NOTEBOOK, answers), course / "submitted" / student / ASSIGNMENT)
        for case in CASES:
            case.build(scaffold.fill_notebook(release / NOTEBOOK, answers),
                       course / "submitted" / case.name / ASSIGNMENT)
        scaffold.autograde(course, ASSIGNMENT, *NBGRADER_ARGS)
        _GRADED["class"] = (course, report.read_results(course, ASSIGNMENT),
                            report.read_findings(course, ASSIGNMENT), report.grading_report(course, ASSIGNMENT))
    return _GRADED["class"]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_adversarial_case_gets_its_expected_outcome(case, adversarial_class):
    _, results, findings, _ = adversarial_class
    result = results.get(case.name)
    score = result.auto_score if result else 0.0
    found = findings.get(case.name, [])
    shown = _flat((result.output_of_failed_cells() if result else "") + " "
                  + " ".join(f["detail"] for f in found))
    assert score == case.score, (
        f"{case.name}: scored {score}, the rules say {case.score} ({case.outcome}).\n"
        f"failed cells: {result.failed_cells() if result else 'not graded'}\n{shown[:3000]}")
    if case.says:
        assert _flat(case.says) in shown, (
            f"{case.name}: the instructor should see {case.says!r}; shown:\n{shown[:3000]}")
    rules = {f["rule"] for f in found}
    assert case.flags <= rules, f"{case.name}: expected the flags {case.flags}, the report has {rules}"


def test_honest_students_in_the_same_run_keep_full_marks_and_no_flags(adversarial_class):
    _, results, findings, _ = adversarial_class
    for student in HONEST_STUDENTS:
        assert results[student].auto_score == FULL, f"{student} lost points: {results[student].failed_cells()}"
        assert not findings.get(student), f"{student} was flagged: {findings[student]}"


def test_the_grading_report_lists_every_student_with_a_reason(adversarial_class):
    course, _, _, report = adversarial_class
    text = report.read_text()
    for case in CASES:
        assert re.search(rf"^\| {case.name} \|", text, re.M), f"{case.name} is missing from {report}"
    assert "| corrupted_notebook | 0 / 15 |" in text
    assert "not a readable notebook" in text


def test_regrading_a_student_changes_no_one_elses_grades(adversarial_class):
    """A second run for one student (nbgrader --force) leaves the gradebook's other grades as they were."""
    course, before, _, _ = adversarial_class
    scaffold.autograde(course, ASSIGNMENT, *NBGRADER_ARGS, "--student", "rebinds_allclose", "--force")
    after = report.read_results(course, ASSIGNMENT)
    assert {s: r.auto_score for s, r in after.items()} == {s: r.auto_score for s, r in before.items()}


def test_the_feedback_shows_the_reason_but_not_the_hidden_tests(adversarial_class):
    course, _, _, _ = adversarial_class
    feedback = scaffold.generate_feedback(course, ASSIGNMENT, "--student", "calls_reference", "--force")
    html = next((feedback / "calls_reference" / ASSIGNMENT).glob("*.html")).read_text()
    assert "GradingIntegrityError" in html and "answer key" in html
    assert "BEGIN HIDDEN TESTS" not in html and "default_rng(101)" not in html


def test_a_broken_notebook_is_reported_before_grading(tmp_path):
    """The intake alone: a cut-off notebook and a renamed one, without running nbgrader."""
    course = scaffold.make_course(tmp_path, REPO, [ASSIGNMENT])
    source = nbformat.read(REPO / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4)
    (course / "submitted" / "cut" / ASSIGNMENT).mkdir(parents=True)
    (course / "submitted" / "cut" / ASSIGNMENT / NOTEBOOK).write_text('{"cells": [')
    write(source, course / "submitted" / "renamed" / ASSIGNMENT, "Softmax-final.ipynb")
    problems = intake.inspect_submissions(course, ASSIGNMENT)
    assert "not a readable notebook" in problems["cut"][0]["detail"]
    assert "submitted as 'Softmax-final.ipynb'" in problems["renamed"][0]["detail"]
    assert (course / "submitted" / "renamed" / ASSIGNMENT / NOTEBOOK).exists()
    assert (course / "submitted" / "renamed" / ASSIGNMENT / "Softmax-final.ipynb").exists()


def test_the_instructor_guide_lists_every_case_with_its_score():
    guide = (REPO / "instructors.md").read_text()
    missing = [c.name for c in CASES if f"| {c.what} | {c.outcome} | {c.score:g} / 15 |" not in guide]
    assert not missing, ("the instructor guide's tables of hostile submissions lack (or have outdated rows for): "
                         f"{missing}")


def test_softgrad_grade_regrades_a_student_and_points_at_the_report(adversarial_class):
    import subprocess
    import sys

    course, _, _, _ = adversarial_class
    done = subprocess.run([sys.executable, "-m", "softgrad", "grade", ASSIGNMENT, "--course", str(course),
                           "--student", "patches_the_checks", "--force", "--", *NBGRADER_ARGS],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{ASSIGNMENT}: graded 1, failed 0" in done.stdout
    assert "worth a look (integrity flags):" in done.stdout and "patches_the_checks" in done.stdout
    assert "report: reports/ps1_softmax/grading_report.md" in done.stdout
    assert report.read_results(course, ASSIGNMENT)["patches_the_checks"].auto_score == 8.0


def test_softgrad_grade_outside_a_course_says_what_is_missing(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "softgrad", "grade", ASSIGNMENT, "--course", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "has no nbgrader_config.py" in done.stderr


# ---- problem set 5: the in-kernel guard, and the re-run outside the kernel behind it ----

PS5 = "ps5_pytorch"
PS5_PATCHES = """
import softgrad.torch_testing
softgrad.torch_testing.check_softmax_cross_entropy = lambda *a, **k: None
softgrad.torch_testing.check_gradcheck = lambda *a, **k: None
torch.allclose = lambda *a, **k: True
torch.autograd.gradcheck = lambda *a, **k: True
get_ipython().showtraceback = lambda *a, **k: None
"""
# The guard switched off first (it is itself a module the student's code can reach), then the patches:
# they survive in the kernel, and only the re-run outside it can take the points back.
PS5_GUARD_OFF = "import softgrad.grader.guard\nsoftgrad.grader.guard.restore = lambda: []\n" + PS5_PATCHES


@pytest.fixture(scope="module")
def ps5_class(tmp_path_factory):
    """ps5 graded for the solution, an honest wrong backward, and the same backward with patches, with
    and without the guard switched off first."""
    from mutants import catalogues

    course = scaffold.make_course(tmp_path_factory.mktemp("adversarial_ps5"), REPO, [PS5])
    release = scaffold.generate_assignment(course, PS5)
    notebook = next((REPO / "solutions" / PS5).glob("*.ipynb")).name
    answers = scaffold.solution_sources(REPO / "solutions" / PS5 / notebook)
    wrong = {m.name: m for m in catalogues()[PS5].MUTANTS}["backward_ignores_grad_output"].answers()
    patched = dict(wrong, SoftmaxCrossEntropy=PS5_PATCHES + wrong["SoftmaxCrossEntropy"])
    guard_off = dict(wrong, SoftmaxCrossEntropy=PS5_GUARD_OFF + wrong["SoftmaxCrossEntropy"])
    for student, cells in [("ps5_solution", {}), ("ps5_wrong", wrong), ("ps5_wrong_and_patches", patched),
                           ("ps5_guard_off_and_patches", guard_off)]:
        scaffold.submit(course, PS5, student, {notebook: scaffold.fill_notebook(release / notebook,
                                                                                  {**answers, **cells})})
    scaffold.autograde(course, PS5, *NBGRADER_ARGS)
    return report.read_results(course, PS5), report.read_findings(course, PS5)


def test_ps5_patching_the_checks_gains_nothing_over_the_honest_wrong_answer(ps5_class):
    results, findings = ps5_class
    solution, wrong, patched = (results[s].auto_score for s in ("ps5_solution", "ps5_wrong",
                                                                "ps5_wrong_and_patches"))
    assert solution == results["ps5_solution"].auto_max_score
    assert wrong < solution, "the wrong backward must lose points"
    assert patched == wrong, f"patching the checks changed the score: {patched} against {wrong} without patches"
    details = " ".join(f["detail"] for f in findings["ps5_wrong_and_patches"])
    assert "put back what had been rebound" in details and "torch.allclose" in details
    assert not findings.get("ps5_solution")


def test_ps5_switching_the_guard_off_first_gains_nothing_either(ps5_class):
    """The patches survive in the kernel, but the re-run outside it runs the student's Function behind a
    stand-in, with the real checks: the cells that passed on patched checks score 0."""
    results, findings = ps5_class
    attack, wrong = results["ps5_guard_off_and_patches"], results["ps5_wrong"]
    assert attack.auto_score == wrong.auto_score, (
        f"the guard switched off and the checks patched scored {attack.auto_score}, the honest wrong backward "
        f"{wrong.auto_score}")
    assert "GradingIntegrityError" in attack.output_of_failed_cells()
    rules = {f["rule"] for f in findings["ps5_guard_off_and_patches"]}
    assert "retried-outside-kernel" in rules
