"""Step 4 of grading a class: what every student scored, what failed, and what is worth a look.

The scores come from the gradebook and the messages from the autograded notebooks
(:func:`read_results`); the integrity findings from the intake and from the notebooks'
metadata (:func:`read_findings`). :func:`write_reports` writes ``reports/ASSIGNMENT/``:
``grading_report.md`` (and ``.json``), ``problems.json`` and ``grades.csv``.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from softgrad.grader.course import course_db_url, submission_notebooks
from softgrad.grader.intake import not_graded
from softgrad.grader.integrity import WORTH_A_LOOK
from softgrad.grader.record import ledger

__all__ = [
    "AutogradedNotebook",
    "CellResult",
    "autograded_notebooks",
    "SubmissionResult",
    "cell_output_text",
    "export_csv",
    "grading_report",
    "read_findings",
    "read_results",
    "write_reports",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


def cell_output_text(cell: nbformat.NotebookNode) -> str:
    """What a cell printed and raised, as the student reads it (ANSI colour codes removed)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            parts.append("\n".join(output.get("traceback", [])) or f"{output.get('ename')}: {output.get('evalue')}")
        elif output.get("output_type") == "stream":
            text = output.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else text)  # a list of lines, as stored
    return _ANSI.sub("", "\n".join(parts))


def read_results(course: Path, assignment: str, db_url: str | None = None, *,
                 notebooks: Mapping[Path, AutogradedNotebook] | None = None) -> dict[str, SubmissionResult]:
    """Scores from the gradebook and outputs from the autograded notebooks, for every student.

    ``db_url``: the gradebook (default: the course's, see :func:`softgrad.gradebook.course_db_url`).
    ``notebooks``: the autograded notebooks already read (:func:`autograded_notebooks`).
    """
    from nbgrader.api import Gradebook

    if notebooks is None:
        notebooks = autograded_notebooks(course, assignment)
    results: dict[str, SubmissionResult] = {}
    with Gradebook(course_db_url(course, db_url)) as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            results[submission.student_id] = SubmissionResult(submission.student_id)
        for notebook in submission_notebooks(gradebook, assignment=assignment):
            student = notebook.assignment.student_id
            result = results.setdefault(student, SubmissionResult(student))
            read = notebooks.get(course / "autograded" / student / assignment / f"{notebook.name}.ipynb")
            outputs = read.outputs if read is not None else {}
            for grade in notebook.grades:
                result.cells[grade.name] = CellResult(
                    score=float(grade.score or 0.0),
                    max_score=float(grade.max_score),
                    autograded=grade.cell.cell_type == "code",
                    output=outputs.get(grade.name, ""),
                )
    return results


@dataclass
class AutogradedNotebook:
    """What the reports read in one autograded notebook: the text of each graded cell's outputs (by grade_id)
    and the integrity findings the grader recorded in its metadata."""

    outputs: dict[str, str]
    findings: list[dict]


def autograded_notebooks(course: Path, assignment: str) -> dict[Path, AutogradedNotebook]:
    """What the reports need of every autograded notebook of ``assignment``, by path
    (``autograded/STUDENT/ASSIGNMENT/NAME.ipynb``); each notebook is read once and not kept.

    Read as nbformat reads a notebook, without checking it against the schema again (nbgrader
    checked it when it wrote it); one that cannot be read is left out, as a missing one is.
    """
    found = {}
    for path in sorted((course / "autograded").glob(f"*/{glob.escape(assignment)}/*.ipynb")):
        try:
            nb = nbformat.convert(nbformat.reader.reads(path.read_text(encoding="utf-8")), 4)
        except (OSError, ValueError):
            continue
        outputs = {}
        for cell in nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id:
                outputs[grade_id] = cell_output_text(cell)
        found[path] = AutogradedNotebook(outputs, list(nb.metadata.get("softgrad", {}).get("findings", [])))
    return found


def read_findings(course: Path, assignment: str, *,
                  notebooks: Mapping[Path, AutogradedNotebook] | None = None) -> dict[str, list[dict]]:
    """Every student's integrity findings: the intake's problems and what the autograded notebooks record.

    ``notebooks``: the autograded notebooks already read (:func:`autograded_notebooks`).
    """
    problems_file = course / "reports" / assignment / "problems.json"
    findings: dict[str, list[dict]] = json.loads(problems_file.read_text()) if problems_file.exists() else {}
    if notebooks is None:
        notebooks = autograded_notebooks(course, assignment)
    for path, read in sorted(notebooks.items()):
        student = path.parent.parent.name
        for entry in read.findings:
            findings.setdefault(student, []).append({**entry, "notebook": path.name})
    return findings


def grading_report(course: Path, assignment: str, db_url: str | None = None) -> Path:
    """Write ``reports/ASSIGNMENT/grading_report.md`` (and ``.json``): scores, problems and flags per student.

    The flags are for a person to look at, not verdicts: a finding of severity "tampering"
    or "suspicious" is a line of code worth reading; "confirmed" means a test passed in the
    notebook and failed outside it, and the cell already scores 0.
    """
    notebooks = autograded_notebooks(course, assignment)
    results = read_results(course, assignment, db_url, notebooks=notebooks)
    findings = read_findings(course, assignment, notebooks=notebooks)
    rows = []
    for student in sorted(set(results) | set(findings)):
        result = results.get(student)
        rows.append({
            "student": student,
            "score": result.auto_score if result else 0.0,
            "max_score": result.auto_max_score if result else None,
            "findings": findings.get(student, []),
        })
    folder = course / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grading_report.json").write_text(json.dumps(rows, indent=1))
    lines = [f"# Grading report: {assignment}", "",
             "| student | auto score | what to look at |", "|---|---|---|"]
    for row in rows:
        notes = "<br>".join(
            f"**{f['severity']}** `{f['rule']}` in {f['cell']}" + (f" line {f['line']}" if f.get("line") else "")
            + ": " + " ".join(f["detail"].split())[:200].replace("|", "\\|") for f in row["findings"]) or "-"
        score = f"{row['score']:g} / {row['max_score']:g}" if row["max_score"] is not None else "not graded"
        lines.append(f"| {row['student']} | {score} | {notes} |")
    path = folder / "grading_report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def export_csv(gradebook, assignment: str, path: Path, findings: Mapping[str, list] | None = None) -> Path:
    """Write the assignment's grades, one row per student, to ``path`` (CSV); return it.

    Columns: student, status (graded / failed / not graded), score, max_score, late_penalty,
    final_score (score less the penalty, manual scores counted as nbgrader counts them),
    flags (integrity findings worth a look), graded_at, detail (why a submission failed).
    """
    rows = ledger(gradebook, assignment)
    findings = findings or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "status", "score", "max_score", "late_penalty", "final_score", "flags",
                         "graded_at", "detail"])
        for submission in sorted(_scored_submissions(gradebook, assignment), key=lambda s: s.student_id):
            student = submission.student_id
            row = rows.get(student)
            flags = [f for f in findings.get(student, []) if f.get("severity") in WORTH_A_LOOK]
            writer.writerow([
                student, row.state if row else "not graded", f"{submission.score:g}",
                f"{submission.max_score:g}", f"{submission.late_submission_penalty or 0:g}",
                f"{max(0.0, submission.score - (submission.late_submission_penalty or 0)):g}",
                "; ".join(sorted({f['rule'] for f in flags})), row.graded_at if row else "",
                (row.detail or "") if row else "",
            ])
    partial.replace(path)  # a reader never sees half a file
    return path


def _scored_submissions(gradebook, assignment: str) -> list:
    """nbgrader's submissions of ``assignment`` with their score, maximum and late penalty read in the same
    statement (each is a deferred column of nbgrader's, read one submission at a time otherwise)."""
    from nbgrader.api import Assignment, SubmittedAssignment
    from sqlalchemy.orm import undefer

    return (gradebook.db.query(SubmittedAssignment)
            .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id)
            .filter(Assignment.name == assignment)
            .options(undefer(SubmittedAssignment.score), undefer(SubmittedAssignment.max_score),
                     undefer(SubmittedAssignment.late_submission_penalty))
            .all())


def write_reports(course: Path, assignment: str, db_url: str, problems: Mapping[str, list[dict]],
                  failed: Mapping[str, str], csv_path: Path | None = None) -> tuple[Path, Path, list[str]]:
    """Write the class's reports (see the module docstring); return the report's path, the CSV's path,
    and the students whose findings are worth a look."""
    from nbgrader.api import Gradebook

    folder = course / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    found = {student: list(entries) for student, entries in problems.items()}
    for student, reason in failed.items():
        found.setdefault(student, []).append(not_graded(reason))
    (folder / "problems.json").write_text(json.dumps(found, indent=1, sort_keys=True))
    report = grading_report(course, assignment, db_url=db_url)
    rows = json.loads(report.with_suffix(".json").read_text())
    findings = {row["student"]: row["findings"] for row in rows}
    flagged = [row["student"] for row in rows if any(f["severity"] in WORTH_A_LOOK for f in row["findings"])]
    with Gradebook(db_url) as gradebook:
        written = export_csv(gradebook, assignment, csv_path or folder / "grades.csv", findings)
    return report, written, flagged
