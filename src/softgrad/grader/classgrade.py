"""``softgrad grade ASSIGNMENT``: grade a whole class in parallel on Dask, resumably, as one pipeline.

1. **intake** (:mod:`softgrad.grader.intake`): which students submitted what; the files are
   checked, and a submission graded before from the same files is skipped (unless ``--force``);
2. **grade** (:mod:`softgrad.grader.grade`): every submission graded by nbgrader's own pipeline,
   in parallel on Dask (a local cluster, or an existing scheduler);
3. **record** (:mod:`softgrad.grader.record`): each submission's grades and its ledger row in
   one transaction, as soon as it is graded, and its autograded notebook;
4. **report** (:mod:`softgrad.grader.report`): ``reports/ASSIGNMENT/`` (the grading report, the
   problems, ``grades.csv``);
5. **feedback** (:mod:`softgrad.grader.feedback`, with ``--feedback``): nbgrader's HTML feedback.

Never losing a grade: only the coordinator (the process that runs ``softgrad grade``) writes
the class's gradebook, one submission at a time. A worker that dies mid-submission: Dask gives
the task to another worker (a submission that kills its worker every time is recorded as
failed, with zeros and the reason). The coordinator killed: what was recorded stays, and the
next run grades only what is not.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from softgrad.grader.course import alembic_on_path, course_config, course_db_url, safe_url, share_gradebook_engines
from softgrad.grader.feedback import generate_feedback
from softgrad.grader.grade import GradingCluster, make_package, quiet_nbgrader_models
from softgrad.grader.intake import inspect_submissions, students_to_grade, submission_digest, submission_files
from softgrad.grader.record import LEDGER, ledger, record_failure, record_grades, remove_outputs, write_autograded
from softgrad.grader.report import write_reports
from softgrad.progress import Progress, duration

__all__ = ["ClassRun", "grade_class", "main"]


@dataclass
class ClassRun:
    """What one ``softgrad grade`` run did."""

    assignment: str
    graded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # student -> reason
    skipped: list[str] = field(default_factory=list)  # graded before, from the same files
    flagged: list[str] = field(default_factory=list)
    problems: dict[str, list[dict]] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 0
    report: Path | None = None
    csv: Path | None = None
    feedback: list[str] = field(default_factory=list)

    @property
    def per_minute(self) -> float:
        done = len(self.graded) + len(self.failed)
        return 60.0 * done / self.seconds if self.seconds > 0 and done else 0.0

    def summary(self) -> str:
        where = f" on {self.workers} worker(s)" if self.workers else ""
        lines = [f"{self.assignment}: graded {len(self.graded)}, failed {len(self.failed)}, "
                 f"already graded {len(self.skipped)}, flagged {len(self.flagged)}, in {duration(self.seconds)}"
                 + where + (f" ({self.per_minute:.1f} submissions per minute)" if self.per_minute else "")]
        for student, reason in sorted(self.failed.items()):
            lines.append(f"  failed: {student}: {reason}")
        if self.problems:
            lines.append(f"  problems with the submitted files: {', '.join(sorted(self.problems))}")
        if self.flagged:
            lines.append(f"  worth a look (integrity flags): {', '.join(self.flagged)}")
        if self.feedback:
            lines.append(f"  feedback written for {len(self.feedback)} student(s) in feedback/")
        return "\n".join(lines)


def grade_class(course: Path, assignment: str, *, students: Iterable[str] | None = None, force: bool = False,
                workers: int | None = None, scheduler: str | None = None, db_url: str | None = None,
                overrides: Sequence[str] = (), csv_path: Path | None = None, feedback: bool = False,
                progress: TextIO | None = None) -> ClassRun:
    """Grade the submissions of ``assignment`` in ``course`` on Dask; record every grade; write the reports.

    ``students`` limits the run to some students; ``force`` grades again those graded before.
    ``workers`` (local cluster, default: one per core) or ``scheduler`` (an existing Dask
    scheduler's address) says where to grade. ``db_url`` overrides the course's gradebook
    (``CourseDirectory.db_url``). ``overrides`` are nbgrader settings (``--SafeExecute.timeout=120``).
    """
    course = course.resolve()
    started = time.perf_counter()
    students = None if students is None else list(students)
    alembic_on_path()  # before any worker starts: they inherit the environment
    with contextlib.ExitStack() as stack:
        # A local cluster starts now, while this process loads nbgrader and reads the course, when there is
        # likely something to grade; an existing scheduler is asked only when there is.
        expected = _submissions_in_sight(course, assignment, students, force)
        cluster = stack.enter_context(GradingCluster(workers=workers, scheduler=None, expected=expected)) \
            if expected and not scheduler else None
        run, coursedir, cluster = _grade_class(course, assignment, students=students, force=force, workers=workers,
                                               scheduler=scheduler, db_url=db_url, overrides=overrides,
                                               progress=progress, cluster=cluster, stack=stack)
        if cluster is not None:
            cluster.close_soon()  # closes while the reports are written
        run.seconds = time.perf_counter() - started
        db_url = coursedir.db_url
        # 4. the reports
        run.report, run.csv, run.flagged = write_reports(course, assignment, db_url, run.problems, run.failed, csv_path)
        # 5. feedback: for the students graded now, and those graded before who have none yet
        if feedback:
            missing = [s for s in run.skipped
                       if not Path(coursedir.format_path(coursedir.feedback_directory, s, assignment)).exists()]
            run.feedback = generate_feedback(course, assignment, db_url, overrides, run.graded + missing, progress)
    return run


def _submissions_in_sight(course: Path, assignment: str, students: list[str] | None, force: bool) -> int:
    """How many submissions a run will likely grade, guessed before nbgrader is loaded (0: too few, or not known).

    The students asked for, else the folders in nbgrader's default layout (``submitted/STUDENT/ASSIGNMENT``),
    less those that the ledger of the course's default gradebook (``gradebook.db``) says are graded, unless
    ``force``. A wrong guess costs time, never a grade: the cluster is fitted to the real count later, or
    started then.
    """
    if students is not None:
        candidates = set(students)
    else:
        submitted = course / "submitted"
        candidates = {folder.name for folder in submitted.iterdir()
                      if (folder / assignment).is_dir()} if submitted.is_dir() else set()
    if force or not candidates:
        return len(candidates)
    gradebook = course / "gradebook.db"
    if not gradebook.is_file():  # another database (PostgreSQL): what it holds is not known yet
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"{gradebook.as_uri()}?mode=ro", uri=True)) as connection:
            graded = {row[0] for row in connection.execute(
                f"SELECT student FROM {LEDGER} WHERE assignment = ? AND state = 'graded'", (assignment,))}
    except sqlite3.Error:  # no ledger yet: nothing was graded
        graded = set()
    return len(candidates - graded)


def _grade_class(course: Path, assignment: str, *, students: Iterable[str] | None, force: bool, workers: int | None,
                 scheduler: str | None, db_url: str | None, overrides: Sequence[str], progress: TextIO | None,
                 cluster: GradingCluster | None, stack: contextlib.ExitStack
                 ) -> tuple[ClassRun, object, GradingCluster | None]:
    """Steps 1 to 3 of :func:`grade_class`: the run, nbgrader's course directory, and the cluster that graded (one
    is started, and closed by ``stack``, when there is something to grade and ``cluster`` is None)."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory

    quiet_nbgrader_models()
    share_gradebook_engines()
    run_id = uuid.uuid4().hex[:12]
    db_url = course_db_url(course, db_url)
    config = course_config(course, overrides)
    config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    if not db_url.startswith("sqlite") and not coursedir.course_id:
        raise ValueError(f"{safe_url(db_url)} needs the course's id: PostgreSQL checks that every assignment "
                         "belongs to a course. Add c.CourseDirectory.course_id = \"...\" to nbgrader_config.py "
                         "(before `nbgrader generate_assignment`)")
    run = ClassRun(assignment)
    package = make_package(course, assignment, db_url, overrides)  # fails early when the assignment is unknown

    # 1. intake: the submitted files, and what is to be graded
    run.problems = inspect_submissions(course, assignment)
    selected = students_to_grade(course, coursedir, assignment, students)

    with Gradebook(db_url) as gradebook:
        done_before = ledger(gradebook, assignment)
        todo: dict[str, tuple[dict[str, bytes], str, float | None]] = {}
        for student in selected:
            folder = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
            try:
                files = submission_files(folder)
            except ValueError as error:
                record_failure(gradebook, assignment, student, str(error), digest=None, run_id=run_id)
                run.failed[student] = str(error)
                continue
            digest = submission_digest(files)
            previous = done_before.get(student)
            if not force and previous and previous.state == "graded" and previous.digest == digest:
                run.skipped.append(student)
                continue
            try:
                extension = gradebook.find_submission(assignment, student).extension
            except MissingEntry:
                extension = None
            todo[student] = (files, digest, extension.total_seconds() if extension else None)

        if todo:
            # 2. grade on Dask, and 3. record each grade as it arrives
            if cluster is None:
                cluster = stack.enter_context(GradingCluster(workers=workers, scheduler=scheduler,
                                                             expected=len(todo)))
            bar = Progress(len(todo), progress)
            grading = cluster.grading(package, submissions=len(todo), run_id=run_id, preload=package["preload"])
            run.workers = grading.workers
            for student, digest, result in grading.grade(todo):
                label = _record(course, coursedir, gradebook, assignment, student, digest, result, run, run_id)
                bar.step(label, time_left=True)
    return run, coursedir, cluster


def _record(course: Path, coursedir, gradebook, assignment: str, student: str, digest: str, result: dict,
            run: ClassRun, run_id: str) -> str:
    """Record one graded (or failed) submission; return the progress bar's label for it."""
    if result["ok"]:
        folder = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
        write_autograded(folder, result["files"], run_id)
        score = record_grades(gradebook, assignment, student, result, digest=digest, run_id=run_id)
        run.graded.append(student)
        return f"{student}: {score:g}"
    # what the intake found says it best (a notebook that is not JSON), else nbgrader's error
    known = "; ".join(p["detail"] for p in run.problems.get(student, []) if "score 0" in p["detail"])
    reason = known or result["reason"]
    record_failure(gradebook, assignment, student, reason, digest=digest, run_id=run_id, worker=result.get("worker"))
    remove_outputs(coursedir, student, assignment)
    run.failed[student] = reason
    return f"{student}: failed"


def main(arguments: list[str]) -> int:
    """``softgrad grade ASSIGNMENT``: grade a class in parallel, record every grade, write the reports."""
    parser = argparse.ArgumentParser(
        prog="softgrad grade",
        description="Grade the submissions of an assignment in parallel on Dask, with nbgrader and the course's "
                    "safe pipeline (nbgrader_config.py). Run it in the course directory, after `nbgrader "
                    "generate_assignment ASSIGNMENT` and `nbgrader collect` (or with submissions in submitted/). "
                    "A run that is stopped can be started again: what was recorded is kept and not graded twice.",
        epilog="Anything after `--` is an nbgrader setting for this run, e.g. `-- --SafeExecute.timeout=120`.")
    parser.add_argument("assignment")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="the course directory (default: here)")
    parser.add_argument("--student", action="append", metavar="ID",
                        help="grade only this student (repeat for several)")
    parser.add_argument("--force", action="store_true", help="grade again submissions graded before")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="grading processes of the local cluster (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (its workers need the course's "
                            "environment installed; they need no access to the course's files)")
    parser.add_argument("--db", metavar="URL", help="the gradebook, e.g. postgresql://grader@dbhost/course "
                                                    "(default: the course's CourseDirectory.db_url, else "
                                                    "gradebook.db)")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="where to write the grades (default: "
                                                                 "reports/ASSIGNMENT/grades.csv)")
    parser.add_argument("--feedback", action="store_true",
                        help="also write nbgrader's HTML feedback for every student graded in this run, and for "
                             "those graded before who have none yet")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    passthrough: list[str] = []
    if "--" in arguments:
        split = arguments.index("--")
        arguments, passthrough = arguments[:split], arguments[split + 1:]
    options = parser.parse_args(arguments)
    course = options.course.resolve()
    if not (course / "nbgrader_config.py").exists():
        parser.error(f"{course} has no nbgrader_config.py: run this in the course directory, or pass --course")
    if options.workers is not None and options.workers < 1:
        parser.error(f"--workers must be at least 1, not {options.workers}")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    try:
        run = grade_class(course, options.assignment, students=options.student, force=options.force,
                          workers=options.workers, scheduler=options.scheduler, db_url=options.db,
                          overrides=passthrough, csv_path=options.csv, feedback=options.feedback,
                          progress=None if options.quiet else sys.stderr)
    except (LookupError, ValueError, OSError) as error:
        print(f"softgrad grade: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsoftgrad grade: stopped. Every submission graded so far is recorded; the same command grades "
              "the rest.", file=sys.stderr)
        return 130
    print(run.summary())

    def shown(path: Path) -> Path:
        return path.relative_to(course) if path.is_relative_to(course) else path

    print(f"report: {shown(run.report)}\ngrades: {shown(run.csv)}")
    return 0
