"""Step 3 of grading a class: every grade recorded, once, with a ledger of what has been graded.

nbgrader keeps one grade per graded cell of every submission (its schema makes a second one
impossible). The ledger table, ``softgrad_grading``, lives in the same database: one row per
(assignment, student) that says whether that submission was graded, from which files (a
digest), with what score, how many times, and why it failed if it did. A submission's grades
and its ledger row are written in ONE transaction, so after any crash either both are there or
the ledger says the submission still has to be graded. Its autograded notebook replaces the old
one at once (never half old, half new).

The database is nbgrader's ``CourseDirectory.db_url``: SQLite (``gradebook.db`` in the course
directory) by default, or a PostgreSQL URL (``postgresql://user@host/dbname``) when several
graders or machines share a gradebook. Only the coordinator of a grading run writes to it;
the workers grade into private SQLite copies (:func:`softgrad.grader.grade.export_assignment`).
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from softgrad.grader.course import submission_notebooks

__all__ = [
    "LEDGER",
    "LedgerRow",
    "ensure_ledger",
    "ledger",
    "record_failure",
    "record_grades",
    "remove_outputs",
    "write_autograded",
]

LEDGER = "softgrad_grading"
_LEDGER_DDL = f"""
CREATE TABLE IF NOT EXISTS {LEDGER} (
    assignment VARCHAR(128) NOT NULL,
    student VARCHAR(128) NOT NULL,
    state VARCHAR(16) NOT NULL,
    digest VARCHAR(64),
    score FLOAT,
    max_score FLOAT,
    attempts INTEGER NOT NULL,
    seconds FLOAT,
    worker VARCHAR(256),
    run_id VARCHAR(64),
    detail TEXT,
    graded_at VARCHAR(32),
    PRIMARY KEY (assignment, student)
)
"""
# Both SQLite (3.24+) and PostgreSQL understand this upsert.
_LEDGER_UPSERT = f"""
INSERT INTO {LEDGER} (assignment, student, state, digest, score, max_score, attempts, seconds, worker, run_id,
                      detail, graded_at)
VALUES (:assignment, :student, :state, :digest, :score, :max_score, 1, :seconds, :worker, :run_id, :detail,
        :graded_at)
ON CONFLICT (assignment, student) DO UPDATE SET
    state = excluded.state, digest = excluded.digest, score = excluded.score, max_score = excluded.max_score,
    attempts = {LEDGER}.attempts + 1, seconds = excluded.seconds, worker = excluded.worker,
    run_id = excluded.run_id, detail = excluded.detail, graded_at = excluded.graded_at
"""


@dataclass
class LedgerRow:
    """What the ledger says of one submission."""

    student: str
    state: str  # "graded" or "failed"
    digest: str | None
    score: float | None
    max_score: float | None
    attempts: int
    seconds: float | None
    worker: str | None
    run_id: str | None
    detail: str | None
    graded_at: str | None


def ensure_ledger(gradebook) -> None:
    """Create the ledger table if this database does not have it yet."""
    gradebook.db.execute(text(_LEDGER_DDL))
    gradebook.db.commit()


def ledger(gradebook, assignment: str) -> dict[str, LedgerRow]:
    """The ledger's rows of ``assignment``, by student."""
    ensure_ledger(gradebook)
    rows = gradebook.db.execute(
        text(f"SELECT student, state, digest, score, max_score, attempts, seconds, worker, run_id, detail, "
             f"graded_at FROM {LEDGER} WHERE assignment = :assignment"), {"assignment": assignment})
    return {row[0]: LedgerRow(*row) for row in rows}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _submission(gradebook, assignment: str, student: str, timestamp: str | None):
    gradebook.update_or_create_student(student)
    if timestamp:
        return gradebook.update_or_create_submission(assignment, student, timestamp=timestamp)
    return gradebook.update_or_create_submission(assignment, student)


def record_grades(gradebook, assignment: str, student: str, graded: Mapping, *, digest: str, run_id: str) -> float:
    """Store a worker's grades of one submission and mark it graded, in one transaction.

    ``graded`` is what :func:`softgrad.grader.grade.grade_submission` returns. As nbgrader's
    own ``SaveAutoGrades`` does, a manual score given earlier is kept and the cell is marked
    for review. Returns the submission's automatic score.
    """
    submission = _submission(gradebook, assignment, student, graded.get("timestamp"))
    score = max_score = 0.0
    for notebook in submission_notebooks(gradebook, submission):
        sent = graded["notebooks"].get(notebook.name, {"grades": {}, "comments": {}, "late_penalty": None})
        notebook.late_submission_penalty = sent["late_penalty"]
        for grade in notebook.grades:
            grade.auto_score = sent["grades"].get(grade.name, 0.0 if grade.cell.cell_type == "code" else None)
            grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            score += grade.auto_score or 0.0
            max_score += grade.max_score
        for comment in notebook.comments:
            comment.auto_comment = sent["comments"].get(comment.name)
    _write_ledger(gradebook, assignment, student, state="graded", digest=digest, score=score, max_score=max_score,
                  seconds=graded.get("seconds"), worker=graded.get("worker"), run_id=run_id, detail=None)
    gradebook.db.commit()
    return score


def record_failure(gradebook, assignment: str, student: str, reason: str, *, digest: str | None, run_id: str,
                   timestamp: str | None = None, worker: str | None = None) -> None:
    """Every grade of the submission set to 0 with the reason in the ledger, in one transaction.

    A submission that could not be graded never keeps a grade from an earlier run, automatic or
    given by hand (nbgrader counts a manual score before the automatic one). The next
    ``softgrad grade`` tries it again (a failed row is not a finished one).
    """
    submission = _submission(gradebook, assignment, student, timestamp)
    max_score = 0.0
    for notebook in submission_notebooks(gradebook, submission):
        for grade in notebook.grades:
            grade.auto_score = 0.0
            grade.manual_score = None
            grade.needs_manual_grade = False
            max_score += grade.max_score
    _write_ledger(gradebook, assignment, student, state="failed", digest=digest, score=0.0, max_score=max_score,
                  seconds=None, worker=worker, run_id=run_id, detail=reason)
    gradebook.db.commit()


def _write_ledger(gradebook, assignment: str, student: str, **values) -> None:
    gradebook.db.execute(text(_LEDGER_UPSERT),
                         {"assignment": assignment, "student": student, "graded_at": _now(), **values})


def write_autograded(folder: Path, files: dict[str, bytes], run_id: str) -> None:
    """Replace the student's autograded folder with ``files`` at once (never half old, half new)."""
    for pattern in (f".{folder.name}.*.partial", f".{folder.name}.*.old"):  # from a run that was killed
        for leftover in folder.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
    partial = folder.with_name(f".{folder.name}.{run_id}.partial")
    for name, data in files.items():
        (partial / name).parent.mkdir(parents=True, exist_ok=True)
        (partial / name).write_bytes(data)
    partial.mkdir(parents=True, exist_ok=True)
    old = folder.with_name(f".{folder.name}.{run_id}.old")
    if folder.exists():
        folder.rename(old)
    partial.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def remove_outputs(coursedir, student: str, assignment: str) -> None:
    """Remove a student's autograded notebook and feedback, as nbgrader does for a submission it could not
    grade: an earlier run's notebook and feedback would contradict the zeros now recorded."""
    for output in (coursedir.autograded_directory, coursedir.feedback_directory):
        shutil.rmtree(coursedir.format_path(output, student, assignment), ignore_errors=True)
