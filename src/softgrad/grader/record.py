"""The class's gradebook: nbgrader's database, and softgrad's ledger of what has been graded.

nbgrader keeps one grade per graded cell of every submission (its schema makes a second one
impossible). :mod:`softgrad.classgrade` adds a ledger table, ``softgrad_grading``, in the same
database: one row per (assignment, student) that says whether that submission was graded,
from which files (a digest), with what score, how many times, and why it failed if it did.
A submission's grades and its ledger row are written in ONE transaction, so after any crash
either both are there or the ledger says the submission still has to be graded.

The database is nbgrader's ``CourseDirectory.db_url``: SQLite (``gradebook.db`` in the course
directory) by default, or a PostgreSQL URL (``postgresql://user@host/dbname``) when several
graders or machines share a gradebook. Only the coordinator of a grading run writes to it;
the workers grade into private SQLite copies (:func:`export_assignment`).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from softgrad.integrity import WORTH_A_LOOK

__all__ = [
    "LEDGER",
    "LedgerRow",
    "alembic_on_path",
    "course_config",
    "course_db_url",
    "export_assignment",
    "export_csv",
    "ledger",
    "record_failure",
    "record_grades",
    "safe_url",
    "submission_digest",
    "submission_files",
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

# What a worker may send for one submission: the files nbgrader needs, never a data dump.
MAX_SUBMISSION_BYTES = 64 * 1024 * 1024
_IGNORED_PARTS = {".ipynb_checkpoints", "__pycache__"}


def course_config(course: Path, overrides: Iterable[str] = ()):
    """nbgrader's configuration of the course (its ``nbgrader_config.py``), rooted at ``course``.

    ``overrides`` are nbgrader command-line settings such as ``--SafeExecute.timeout=120``;
    they win over the file, as on nbgrader's command line.
    """
    from traitlets.config.loader import KVArgParseConfigLoader, PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    overrides = list(overrides)
    if overrides:
        bad = [o for o in overrides if not (o.startswith("--") and "." in o.split("=")[0] and "=" in o)]
        if bad:
            raise ValueError(f"nbgrader settings look like --Class.trait=value; got {bad}")
        config.merge(KVArgParseConfigLoader(argv=overrides).load_config())
    config.CourseDirectory.root = str(course)
    return config


def course_db_url(course: Path, override: str | None = None) -> str:
    """The gradebook's URL: ``override``, else the course's ``CourseDirectory.db_url``, else its gradebook.db."""
    if override:
        return override
    config = course_config(course)
    configured = config.CourseDirectory.get("db_url") if "CourseDirectory" in config else None
    return str(configured) if configured else f"sqlite:///{course / 'gradebook.db'}"


def submission_files(folder: Path) -> dict[str, bytes]:
    """Every file of a submitted folder (relative path -> bytes), editor checkpoints left out."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or path.is_symlink() or _IGNORED_PARTS & set(relative.parts):
            continue
        total += path.stat().st_size
        if total > MAX_SUBMISSION_BYTES:
            raise ValueError(f"{folder} holds more than {MAX_SUBMISSION_BYTES // 2**20} MiB of files; "
                             "a submission is notebooks and small files (remove data sets from it)")
        files[relative.as_posix()] = path.read_bytes()
    return files


def submission_digest(files: Mapping[str, bytes]) -> str:
    """A fingerprint of a submission's files: a changed re-submission gets a new one."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def export_assignment(db_url: str, assignment: str) -> bytes:
    """An SQLite gradebook (as bytes) holding only ``assignment``: its notebooks, cells and hidden tests.

    A worker grades into a private copy of it, so that workers never write to the class's
    gradebook (SQLite allows one writer at a time) and need no access to its server.
    """
    from nbgrader.api import Gradebook, MissingEntry

    alembic_on_path()
    with tempfile.TemporaryDirectory(prefix="softgrad-export-") as scratch:
        path = Path(scratch) / "gradebook.db"
        with Gradebook(db_url) as source, Gradebook(f"sqlite:///{path}") as copy:
            try:
                original = source.find_assignment(assignment)
            except MissingEntry:
                raise LookupError(
                    f"assignment {assignment!r} is not in the gradebook {safe_url(db_url)}: run "
                    f"`nbgrader generate_assignment {assignment} --force` in the course directory first "
                    "(without --no-db: it stores the hidden tests that autograding restores)") from None
            copy.add_assignment(assignment, duedate=original.duedate)
            for notebook in original.notebooks:
                copy.add_notebook(notebook.name, assignment, kernelspec=notebook.kernelspec)
                for cell in notebook.grade_cells:
                    copy.add_grade_cell(cell.name, notebook.name, assignment, max_score=cell.max_score,
                                        cell_type=cell.cell_type)
                for cell in notebook.solution_cells:
                    copy.add_solution_cell(cell.name, notebook.name, assignment)
                for cell in notebook.task_cells:
                    copy.add_task_cell(cell.name, notebook.name, assignment, max_score=cell.max_score,
                                       cell_type=cell.cell_type)
                for cell in notebook.source_cells:
                    copy.add_source_cell(cell.name, notebook.name, assignment, cell_type=cell.cell_type,
                                         locked=cell.locked, source=cell.source, checksum=cell.checksum)
        return path.read_bytes()


def alembic_on_path() -> None:
    """Put this environment's ``bin/`` first on PATH: nbgrader runs ``alembic`` to create a new gradebook."""
    here = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != here:
        os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")


def safe_url(db_url: str) -> str:
    """The URL without its password, for messages."""
    if "://" in db_url and "@" in db_url:
        scheme, rest = db_url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':')[0]}:***@{host}" if ":" in credentials else db_url
    return db_url


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

    ``graded`` is what :func:`softgrad.classgrade.grade_submission` returns. As nbgrader's
    own ``SaveAutoGrades`` does, a manual score given earlier is kept and the cell is marked
    for review. Returns the submission's automatic score.
    """
    submission = _submission(gradebook, assignment, student, graded.get("timestamp"))
    score = max_score = 0.0
    for notebook in submission.notebooks:
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
    for notebook in submission.notebooks:
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
        for submission in sorted(gradebook.assignment_submissions(assignment), key=lambda s: s.student_id):
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
