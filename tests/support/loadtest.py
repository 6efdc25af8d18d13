"""A simulated class for the load test of ``softgrad grade``, and the grading benchmark.

The class is problem set 1 with a known mix: 70% right (the model solution), 10% wrong (a
softmax that returns uniform probabilities: 8 of 15 points), 10% blank (the release as
handed out: 0 points) and 10% broken or hostile (the fast cases of ``tests/support/adversarial.py``,
each with the score its rules give: a corrupted or missing notebook, a renamed one, a
process exit, deleted or edited test cells, patched checks...). Every student's expected
automatic score is known in advance, so a grading run can be checked student by student.

As a benchmark (numbers for the closing note and the instructor guide's "How fast")::

    PYTHONPATH=tests python -m support.loadtest --students 500 --workers 1 2 --baseline

grades the same class with plain serial ``nbgrader autograde`` (``--baseline``) and with
``softgrad grade`` on 1 and 2 workers, checks every grade, and prints submissions per minute
and the speed-ups. Each configuration grades its own copy of the class.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from softgrad.grader import report
from support import scaffold
from support.adversarial import ASSIGNMENT, CASES, FULL, NOTEBOOK, SOFTMAX_POINTS, WRONG_SOFTMAX, cell, write

REPO = Path(__file__).resolve().parents[2]
# Broken and hostile cases that cost no time limit (the loops, the memory bomb and the output
# flood each wait for a limit: they are the adversarial suite's, not the load test's).
FAST_CASES = ["corrupted_notebook", "missing_notebook", "renamed_notebook", "os_exit", "sys_exit",
              "deleted_test_cell", "edited_test_cell", "duplicated_cell_id", "patches_the_checks",
              "rebinds_allclose", "lying_eq", "fakes_a_partial_score", "stderr_warning", "segfault"]
MIX = ["right"] * 7 + ["wrong", "blank", "broken"]


def _wrong(nb, folder):
    cell(nb, "softmax").source = WRONG_SOFTMAX
    write(nb, folder)


def make_class(workdir: Path, students: int) -> tuple[Path, dict[str, float]]:
    """A course with ``students`` submissions of ps1; returns it and every student's expected score."""
    course = scaffold.make_course(workdir, REPO, [ASSIGNMENT])
    release = scaffold.generate_assignment(course, ASSIGNMENT)
    answers = scaffold.solution_sources(REPO / "solutions" / ASSIGNMENT / NOTEBOOK)
    cases = {case.name: case for case in CASES}
    expected = {}
    for index in range(students):
        kind = MIX[index % len(MIX)]
        student = f"student_{index:04d}"
        folder = course / "submitted" / student / ASSIGNMENT
        if kind == "right":
            write(scaffold.fill_notebook(release / NOTEBOOK, answers), folder)
            expected[student] = FULL
        elif kind == "wrong":
            _wrong(scaffold.fill_notebook(release / NOTEBOOK, answers), folder)
            expected[student] = FULL - SOFTMAX_POINTS
        elif kind == "blank":
            write(scaffold.fill_notebook(release / NOTEBOOK, {}), folder)
            expected[student] = 0.0
        else:
            case = cases[FAST_CASES[(index // len(MIX)) % len(FAST_CASES)]]
            case.build(scaffold.fill_notebook(release / NOTEBOOK, answers), folder)
            expected[student] = case.score
    return course, expected


def wrong_grades(course: Path, expected: dict[str, float]) -> dict[str, str]:
    """Students whose recorded automatic score is not the expected one: student -> what happened."""
    results = report.read_results(course, ASSIGNMENT)
    wrong = {}
    for student, score in expected.items():
        # plain nbgrader records nothing for a submission without the notebook: that is a 0
        got = results[student].auto_score if student in results else 0.0
        if got != score:
            wrong[student] = f"expected {score:g}, recorded {got:g}"
    return wrong


@dataclass
class Timing:
    label: str
    students: int
    seconds: float

    @property
    def per_minute(self) -> float:
        return 60.0 * self.students / self.seconds


def grade_copy(template: Path, workdir: Path, label: str, expected: dict[str, float], workers: int | None,
               progress=None) -> Timing:
    """Grade a fresh copy of the class: plain serial nbgrader (``workers`` None) or softgrad grade."""
    course = workdir / label.replace(" ", "_")
    shutil.rmtree(course, ignore_errors=True)
    shutil.copytree(template, course)
    started = time.perf_counter()
    if workers is None:
        scaffold.autograde(course, ASSIGNMENT)
    else:  # the command an instructor runs, in a process of its own
        done = subprocess.run([sys.executable, "-m", "softgrad", "grade", ASSIGNMENT, "--course", str(course),
                               "--workers", str(workers), *([] if progress else ["--quiet"])],
                              stdout=subprocess.PIPE, stderr=progress, text=True, timeout=24 * 3600)
        assert done.returncode == 0, f"softgrad grade failed:\n{done.stdout[-3000:]}"
        assert _graded_and_failed(done.stdout) == len(expected), done.stdout
    seconds = time.perf_counter() - started
    wrong = wrong_grades(course, expected)
    if wrong:
        raise AssertionError(f"{label}: {len(wrong)} wrong grade(s): {dict(list(wrong.items())[:10])}")
    return Timing(label, len(expected), seconds)


def _graded_and_failed(summary: str) -> int:
    """graded + failed, from the first line of softgrad grade's summary."""
    match = re.search(r"graded (\d+), failed (\d+)", summary)
    return int(match.group(1)) + int(match.group(2)) if match else -1


def table(timings: list[Timing]) -> str:
    baseline = next((t for t in timings if t.label.startswith("nbgrader")), None)
    one = next((t for t in timings if t.label == "softgrad 1 worker"), None)
    lines = ["| grading | students | time | submissions per minute | vs serial nbgrader | vs 1 worker |",
             "|---|---|---|---|---|---|"]
    for t in timings:
        versus_baseline = f"{t.per_minute / baseline.per_minute:.2f}x" if baseline else "-"
        versus_one = f"{t.per_minute / one.per_minute:.2f}x" if one else "-"
        lines.append(f"| {t.label} | {t.students} | {t.seconds:.0f} s | {t.per_minute:.1f} | {versus_baseline} "
                     f"| {versus_one} |")
    return "\n".join(lines)


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baseline", action="store_true", help="also grade with plain serial nbgrader autograde")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/softgrad-loadtest"))
    options = parser.parse_args(arguments)
    shutil.rmtree(options.workdir, ignore_errors=True)
    template, expected = make_class(options.workdir / "template", options.students)
    timings = []
    if options.baseline:
        timings.append(grade_copy(template, options.workdir, "nbgrader autograde (serial)", expected, None))
        print(table(timings), flush=True)
    for workers in options.workers:
        label = f"softgrad {workers} worker" + ("s" if workers > 1 else "")
        timings.append(grade_copy(template, options.workdir, label, expected, workers, progress=sys.stderr))
        print(table(timings), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
