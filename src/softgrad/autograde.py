"""Drive the real nbgrader pipeline on a class of submissions.

:func:`autograde` grades a class in one serial ``nbgrader autograde`` run, after the submitted
files are checked (:func:`inspect_submissions`); :func:`grading_report` writes what every
student scored and what is worth a look. (Instructors grade with ``softgrad grade``, which
grades in parallel: :mod:`softgrad.classgrade`.) The test suite uses it to prove that grading
works end to end: it builds a throw-away course directory (the repository's
``nbgrader_config.py`` and the assignment's source notebooks), runs ``nbgrader
generate_assignment`` (which writes the gradebook with the hidden tests), fills submissions
from the release notebook, runs ``nbgrader autograde`` once for the whole class, and reads
the scores from the gradebook and the messages from the autograded notebooks.

nbgrader always runs as a subprocess of the current interpreter (``python -m nbgrader``),
with this environment's ``bin/`` first on PATH, because nbgrader runs ``alembic`` as a
subprocess of its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from softgrad.gradebook import course_db_url

__all__ = [
    "CellResult",
    "SubmissionResult",
    "autograde",
    "cell_output_text",
    "expected_notebooks",
    "fill_notebook",
    "inspect_submissions",
    "generate_assignment",
    "generate_feedback",
    "grading_report",
    "read_findings",
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


def autograde(course: Path, assignment: str, *extra: str) -> dict[str, list[dict]]:
    """Grade every submitted student in one ``nbgrader autograde ASSIGNMENT`` run, safely.

    Before nbgrader runs, :func:`inspect_submissions` looks at the submitted files (a notebook
    that is missing, renamed or not JSON). One student's broken submission never stops the
    class: nbgrader goes on with the others, and a student it could not grade gets 0 on every
    cell of that notebook in the gradebook (never a grade left over from an earlier run), with
    the reason. Returns the problems found, by student; :func:`grading_report` writes the
    class's report. Raises only when nbgrader failed for reasons that are not one student's.
    """
    problems = inspect_submissions(course, assignment)
    env = dict(os.environ)
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


def expected_notebooks(course: Path, assignment: str) -> list[str]:
    """The notebook file names of an assignment, from its source folder."""
    return sorted(p.name for p in (course / "solutions" / assignment).glob("*.ipynb"))


def _grade_ids(path: Path) -> set[str]:
    nb = nbformat.read(path, as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}


def inspect_submissions(course: Path, assignment: str) -> dict[str, list[dict]]:
    """Check every student's submitted files before grading; fix an unambiguous rename.

    A notebook that is not where nbgrader looks but was saved under another name (a browser
    download adds `` (1)``) is copied to the expected name when it is the only candidate and
    carries the assignment's nbgrader cells; the student's file stays as it was. A notebook
    that is not JSON, or not a notebook, is reported (nbgrader cannot grade it).
    """
    expected = expected_notebooks(course, assignment)
    source_ids = {name: _grade_ids(course / "solutions" / assignment / name) for name in expected}
    problems: dict[str, list[dict]] = {}
    for folder in sorted((course / "submitted").glob(f"*/{assignment}")):
        student = folder.parent.name
        found = []

        def note(detail: str, cell: str = "(notebook)", found: list = found) -> None:
            found.append(submission_problem(detail, cell))

        others = sorted(p.name for p in folder.glob("*.ipynb") if p.name not in expected)
        for name in expected:
            path = folder / name
            if not path.exists():
                candidates = []
                for other in others:
                    try:
                        if _grade_ids(folder / other) & source_ids[name]:
                            candidates.append(other)
                    except Exception:  # noqa: BLE001 (an unreadable file is not a candidate)
                        continue
                if len(candidates) == 1:
                    shutil.copy2(folder / candidates[0], path)
                    others.remove(candidates[0])
                    note(f"{name} was submitted as {candidates[0]!r}; graded as {name}", name)
                else:
                    extra = f" (found {', '.join(repr(o) for o in others)})" if others else ""
                    note(f"{name} is missing{extra}; its cells score 0", name)
                continue
            try:
                nb = nbformat.read(path, as_version=4)
                nbformat.validate(nb)
            except Exception as error:  # noqa: BLE001 (any reason a file is not a notebook)
                first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
                note(f"{name} is not a readable notebook ({type(error).__name__}: {first}); its cells score 0", name)
        if found:
            problems[student] = found
    return problems


def failure_from_log(log: str) -> str:
    """The line of nbgrader's log of one submission that says why it could not grade it.

    Its last exception, else its last error that is not nbgrader's generic "error processing"
    or "see the above traceback".
    """
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    exceptions = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    errors = [line.split("|", 1)[-1].strip(" ]") for line in lines if "ERROR" in line]
    useful = [e for e in errors if e and "error processing" not in e and "see the the above" not in e]
    return "nbgrader could not grade it: " + (exceptions or useful or errors or ["no reason given"])[-1][:400]


def submission_problem(detail: str, cell: str = "(notebook)") -> dict:
    """A finding of the intake or of nbgrader about the submitted files, as the reports record it."""
    return {"rule": "submission-problem", "cell": cell, "line": 0, "severity": "problem", "detail": detail}


def not_graded(reason: str) -> dict:
    """The finding for a submission nbgrader could not grade: every cell scores 0."""
    return submission_problem(f"not graded, all cells score 0: {reason}")


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
            parts.append(output.get("text", ""))
    return _ANSI.sub("", "\n".join(parts))


def read_results(course: Path, assignment: str, db_url: str | None = None) -> dict[str, SubmissionResult]:
    """Scores from the gradebook and outputs from the autograded notebooks, for every student.

    ``db_url``: the gradebook (default: the course's, see :func:`softgrad.gradebook.course_db_url`).
    """
    from nbgrader.api import Gradebook

    results: dict[str, SubmissionResult] = {}
    with Gradebook(course_db_url(course, db_url)) as gradebook:
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
                            outputs[grade_id] = cell_output_text(cell)
                for grade in notebook.grades:
                    result.cells[grade.name] = CellResult(
                        score=float(grade.score or 0.0),
                        max_score=float(grade.max_score),
                        autograded=grade.cell.cell_type == "code",
                        output=outputs.get(grade.name, ""),
                    )
            results[student] = result
    return results


def read_findings(course: Path, assignment: str) -> dict[str, list[dict]]:
    """Every student's integrity findings: the intake's problems and what the autograded notebooks record."""
    problems_file = course / "reports" / assignment / "problems.json"
    findings: dict[str, list[dict]] = json.loads(problems_file.read_text()) if problems_file.exists() else {}
    for path in sorted((course / "autograded").glob(f"*/{assignment}/*.ipynb")):
        student = path.parent.parent.name
        nb = nbformat.read(path, as_version=4)
        for entry in nb.metadata.get("softgrad", {}).get("findings", []):
            findings.setdefault(student, []).append({**entry, "notebook": path.name})
    return findings


def grading_report(course: Path, assignment: str, db_url: str | None = None) -> Path:
    """Write ``reports/ASSIGNMENT/grading_report.md`` (and ``.json``): scores, problems and flags per student.

    The flags are for a person to look at, not verdicts: a finding of severity "tampering"
    or "suspicious" is a line of code worth reading; "confirmed" means a test passed in the
    notebook and failed outside it, and the cell already scores 0.
    """
    results = read_results(course, assignment, db_url)
    findings = read_findings(course, assignment)
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
