"""Scaffolding for the tests: a throw-away course directory, simulated submissions, and a serial grading run.

The test suite uses these to prove that grading works end to end, with the real nbgrader: it
builds a course directory (the repository's ``nbgrader_config.py`` and an assignment's source
notebooks), runs ``nbgrader generate_assignment`` (which writes the gradebook with the hidden
tests), fills submissions from the release notebook, runs ``nbgrader autograde`` once for the
whole class (:func:`autograde`, what an instructor's plain nbgrader run does), and reads the
scores and messages back with :mod:`softgrad.grader.report`.

nbgrader always runs as a subprocess of the current interpreter (``python -m nbgrader``), with
this environment's ``bin/`` first on PATH, because nbgrader runs ``alembic`` as a subprocess of
its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import nbformat
import pytest

from softgrad.grader.course import course_db_url
from softgrad.grader.grade import failure_from_log
from softgrad.grader.intake import inspect_submissions, not_graded

__all__ = [
    "autograde",
    "fill_notebook",
    "generate_assignment",
    "generate_feedback",
    "make_course",
    "run_nbgrader",
    "solution_sources",
    "submit",
]

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def run_nbgrader(course: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run ``nbgrader ARGS`` in the course directory; raise with its log if it fails."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`nbgrader {' '.join(args)}` failed with exit code {done.returncode} in {course}:\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def make_course(workdir: Path, repo: Path, assignments: list[str]) -> Path:
    """A fresh course directory in ``workdir`` with the repository's config and sources."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(repo / "nbgrader_config.py", workdir / "nbgrader_config.py")
    for assignment in assignments:
        source = repo / "solutions" / assignment
        if not source.is_dir():
            raise FileNotFoundError(f"no source folder for assignment {assignment!r}: {source}")
        shutil.copytree(source, workdir / "solutions" / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return workdir


def generate_assignment(course: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment ASSIGNMENT --force`` (with the gradebook); return the release folder."""
    run_nbgrader(course, "generate_assignment", assignment, "--force")
    return course / "exercises" / assignment


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if line.strip() not in SOLUTION_MARKERS)


def solution_sources(source_notebook: Path) -> dict[str, str]:
    """The instructor's answer for every solution cell, by grade_id, with the markers removed."""
    nb = nbformat.read(source_notebook, as_version=4)
    answers = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = _strip_markers(cell.source)
    return answers


def fill_notebook(release_notebook: Path, answers: Mapping[str, str]) -> nbformat.NotebookNode:
    """The release notebook with solution cells replaced by ``answers`` (by grade_id).

    Cells without an entry in ``answers`` keep the release's stub: a student who left them.
    """
    nb = nbformat.read(release_notebook, as_version=4)
    unknown = set(answers)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
            unknown.discard(grade_id)
    if unknown:
        raise KeyError(f"no solution cell with grade_id {sorted(unknown)} in {release_notebook}")
    return nb


def submit(course: Path, assignment: str, student: str, notebooks: Mapping[str, nbformat.NotebookNode]) -> Path:
    """Place a student's notebooks where ``nbgrader autograde`` looks for them."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", student):
        raise ValueError(f"student ids use letters, digits and underscores only: {student!r}")
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, folder / name)
    return folder


def autograde(course: Path, assignment: str, *extra: str, env: dict[str, str] | None = None) -> dict[str, list[dict]]:
    """Grade every submitted student in one ``nbgrader autograde ASSIGNMENT`` run, safely.

    Before nbgrader runs, :func:`inspect_submissions` looks at the submitted files (a notebook
    that is missing, renamed or not JSON). One student's broken submission never stops the
    class: nbgrader goes on with the others, and a student it could not grade gets 0 on every
    cell of that notebook in the gradebook (never a grade left over from an earlier run), with
    the reason. Returns the problems found, by student; :func:`grading_report` writes the
    class's report. Raises only when nbgrader failed for reasons that are not one student's.
    ``env``: more environment variables for nbgrader.
    """
    problems = inspect_submissions(course, assignment)
    env = dict(os.environ) | (env or {})
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", assignment, *extra],
                          cwd=course, env=env, capture_output=True, text=True, timeout=24 * 3600)
    log = done.stdout + done.stderr
    reports = course / "reports" / assignment
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "autograde.log").write_text(log)
    failed = re.findall(rf"There was an error processing assignment '{re.escape(assignment)}' for student '([^']+)'",
                        log)
    if done.returncode != 0 and not failed:
        raise RuntimeError(f"`nbgrader autograde {assignment}` failed with exit code {done.returncode} in "
                           f"{course}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    for student in failed:
        known = [p["detail"] for p in problems.get(student, [])]
        reason = "; ".join(known) or _failure_reason(log, course, assignment, student)
        _zero_submission(course, assignment, student)
        problems.setdefault(student, []).append(not_graded(reason))
    (reports / "problems.json").write_text(json.dumps(problems, indent=1, sort_keys=True))
    return problems


def _failure_reason(log: str, course: Path, assignment: str, student: str) -> str:
    """Why nbgrader could not grade one student, from the log of a whole class's run."""
    marker = f"There was an error processing assignment: {course / 'submitted' / student / assignment}"
    start = log.find(marker)
    if start < 0:
        return "nbgrader could not grade it (see reports/autograde.log)"
    return failure_from_log(log[start:].split("[AutogradeApp | INFO]")[0])


def _zero_submission(course: Path, assignment: str, student: str) -> None:
    """Every grade of the student's submission set to 0 (as nbgrader does for a missing notebook)."""
    from nbgrader.api import Gradebook

    with Gradebook(course_db_url(course)) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.manual_score = None
                grade.needs_manual_grade = False
        gradebook.db.commit()


def generate_feedback(course: Path, assignment: str, *extra: str) -> Path:
    """``nbgrader generate_feedback ASSIGNMENT``; return the feedback folder."""
    run_nbgrader(course, "generate_feedback", assignment, *extra)
    return course / "feedback"


def _template() -> object:
    from softgrad.grader import template

    found = template.template()
    assert found is not None, f"no template: is {template.SWITCH}=0 set?"
    return found


# The two ways the grader starts a sandbox: a new Python process, and forked from a template
# (softgrad.grader.template). Tests of the sandbox run on both.
SANDBOX_ORIGINS = [pytest.param(lambda: None, id="new-process"), pytest.param(_template, id="forked")]
