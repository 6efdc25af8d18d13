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
and the speed-ups, with the CPU time every grading process used per submission. With
``--without-templates`` each configuration is run a second time with its processes started as
new Pythons instead of forked from templates (:mod:`softgrad.grader.template`): the grader as
it was before them. Each configuration grades its own copy of the class.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from softgrad.grader import report
from softgrad.grader import template as grader_template
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
    cpu_seconds: float = 0.0  # of every process the grading started, from the kernel's accounting

    @property
    def cpu_per_submission(self) -> float:
        return self.cpu_seconds / self.students

    @property
    def per_minute(self) -> float:
        return 60.0 * self.students / self.seconds


def _children_cpu() -> float:
    """CPU seconds of every finished process this one started, and theirs (each waits for its own)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def grade_copy(template: Path, workdir: Path, label: str, expected: dict[str, float], workers: int | None,
               progress=None, templates: bool = True) -> Timing:
    """Grade a fresh copy of the class: plain serial nbgrader (``workers`` None) or softgrad grade;
    ``templates=False``: every process started as a new Python (``SOFTGRAD_TEMPLATE=0``)."""
    course = workdir / label.replace(" ", "_").replace(",", "")
    shutil.rmtree(course, ignore_errors=True)
    shutil.copytree(template, course)
    switch = {grader_template.SWITCH: "1" if templates else "0"}
    started, cpu = time.perf_counter(), _children_cpu()
    if workers is None:
        scaffold.autograde(course, ASSIGNMENT, env=switch)
    else:  # the command an instructor runs, in a process of its own
        done = subprocess.run([sys.executable, "-m", "softgrad", "grade", ASSIGNMENT, "--course", str(course),
                               "--workers", str(workers), *([] if progress else ["--quiet"])],
                              stdout=subprocess.PIPE, stderr=progress, text=True, timeout=24 * 3600,
                              env=os.environ | switch)
        assert done.returncode == 0, f"softgrad grade failed:\n{done.stdout[-3000:]}"
        assert _graded_and_failed(done.stdout) == len(expected), done.stdout
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    wrong = wrong_grades(course, expected)
    if wrong:
        raise AssertionError(f"{label}: {len(wrong)} wrong grade(s): {dict(list(wrong.items())[:10])}")
    return Timing(label, len(expected), seconds, cpu)


def _graded_and_failed(summary: str) -> int:
    """graded + failed, from the first line of softgrad grade's summary."""
    match = re.search(r"graded (\d+), failed (\d+)", summary)
    return int(match.group(1)) + int(match.group(2)) if match else -1


NO_TEMPLATE = ", no template"


def table(timings: list[Timing]) -> str:
    """The timings as a Markdown table. Ratios compare runs that start their processes the same way (forked
    from templates, or as new Pythons), and each run with templates with the same run without them."""
    by_label = {t.label: t for t in timings}

    def ratio(t: Timing, label: str) -> str:
        other = by_label.get(label)
        return f"{t.per_minute / other.per_minute:.2f}x" if other else "-"

    lines = ["| grading | students | time | submissions per minute | CPU per submission | vs serial nbgrader "
             "| vs 1 worker | vs no template |", "|---|---|---|---|---|---|---|---|"]
    for t in timings:
        suffix = NO_TEMPLATE if t.label.endswith(NO_TEMPLATE) else ""
        before = "-" if suffix else ratio(t, t.label + NO_TEMPLATE)
        lines.append(f"| {t.label} | {t.students} | {t.seconds:.0f} s | {t.per_minute:.1f} | "
                     f"{t.cpu_per_submission:.2f} s | {ratio(t, 'nbgrader autograde (serial)' + suffix)} | "
                     f"{ratio(t, 'softgrad 1 worker' + suffix)} | {before} |")
    return "\n".join(lines)


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baseline", action="store_true", help="also grade with plain serial nbgrader autograde")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/softgrad-loadtest"))
    parser.add_argument("--without-templates", action="store_true",
                        help="grade each configuration a second time with every process started as a new Python "
                             "(SOFTGRAD_TEMPLATE=0): the grader before templates")
    options = parser.parse_args(arguments)
    shutil.rmtree(options.workdir, ignore_errors=True)
    template, expected = make_class(options.workdir / "template", options.students)
    timings = []
    for templates in (False, True) if options.without_templates else (True,):
        suffix = "" if templates else NO_TEMPLATE
        if options.baseline:
            timings.append(grade_copy(template, options.workdir, "nbgrader autograde (serial)" + suffix, expected,
                                      None, templates=templates))
            print(table(timings), flush=True)
        for workers in options.workers:
            label = f"softgrad {workers} worker" + ("s" if workers > 1 else "") + suffix
            timings.append(grade_copy(template, options.workdir, label, expected, workers, progress=sys.stderr,
                                      templates=templates))
            print(table(timings), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
