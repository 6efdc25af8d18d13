"""Drive the real nbgrader pipeline on a class of submissions.

The test suite uses this module to prove that grading works end to end: it builds a
throw-away course directory (the repository's ``nbgrader_config.py`` and the assignment's
source notebooks), runs ``nbgrader generate_assignment`` (which writes the gradebook with the
hidden tests), fills submissions from the release notebook, runs ``nbgrader autograde``
once for the whole class, and reads the scores from the gradebook and the messages from the
autograded notebooks.

nbgrader always runs as a subprocess of the current interpreter (``python -m nbgrader``),
with this environment's ``bin/`` first on PATH, because nbgrader runs ``alembic`` as a
subprocess of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = [
    "CellResult",
    "SubmissionResult",
    "autograde",
    "fill_notebook",
    "generate_assignment",
    "generate_feedback",
    "make_course",
    "read_results",
    "run_nbgrader",
    "solution_sources",
    "submit",
]

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


def autograde(course: Path, assignment: str, *extra: str) -> None:
    """``nbgrader autograde ASSIGNMENT``: every submitted student, one run."""
    run_nbgrader(course, "autograde", assignment, *extra)


def generate_feedback(course: Path, assignment: str, *extra: str) -> Path:
    """``nbgrader generate_feedback ASSIGNMENT``; return the feedback folder."""
    run_nbgrader(course, "generate_feedback", assignment, *extra)
    return course / "feedback"


@dataclass
class CellResult:
    """One graded cell of one submission: score and the text of its outputs (ANSI codes removed)."""

    score: float
    max_score: float
    autograded: bool
    output: str


@dataclass
class SubmissionResult:
    """A student's autograded cells, by grade_id."""

    student: str
    cells: dict[str, CellResult] = field(default_factory=dict)

    @property
    def auto_score(self) -> float:
        return sum(c.score for c in self.cells.values() if c.autograded)

    @property
    def auto_max_score(self) -> float:
        return sum(c.max_score for c in self.cells.values() if c.autograded)

    def failed_cells(self) -> list[str]:
        return [g for g, c in self.cells.items() if c.autograded and c.score < c.max_score]

    def output_of_failed_cells(self) -> str:
        return "\n".join(self.cells[g].output for g in self.failed_cells())


def _cell_output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            parts.append("\n".join(output.get("traceback", [])) or f"{output.get('ename')}: {output.get('evalue')}")
        elif output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
    return _ANSI.sub("", "\n".join(parts))


def read_results(course: Path, assignment: str) -> dict[str, SubmissionResult]:
    """Scores from the gradebook and outputs from the autograded notebooks, for every student."""
    from nbgrader.api import Gradebook

    results: dict[str, SubmissionResult] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            student = submission.student_id
            result = SubmissionResult(student)
            for notebook in submission.notebooks:
                path = course / "autograded" / student / assignment / f"{notebook.name}.ipynb"
                outputs = {}
                if path.exists():
                    nb = nbformat.read(path, as_version=4)
                    for cell in nb.cells:
                        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                        if grade_id:
                            outputs[grade_id] = _cell_output_text(cell)
                for grade in notebook.grades:
                    result.cells[grade.name] = CellResult(
                        score=float(grade.score or 0.0),
                        max_score=float(grade.max_score),
                        autograded=grade.cell.cell_type == "code",
                        output=outputs.get(grade.name, ""),
                    )
            results[student] = result
    return results
