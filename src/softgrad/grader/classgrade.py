"""Grade a whole class in parallel on Dask, resumably: ``softgrad grade ASSIGNMENT``.

nbgrader grades one submission after another (its issue #174). Here every submission is an
independent task on a Dask cluster: an embedded local cluster by default (one worker per core,
nothing to start), or an existing scheduler given by its address (``--scheduler tcp://host:8786``),
so the same command runs on a laptop and on a university cluster.

How a submission is graded
    A worker keeps nbgrader and the course's grading code loaded, and grades with nbgrader's
    own pipeline (``NbGraderAPI.autograde`` with the course's ``nbgrader_config.py``: the same
    limits, re-run and integrity checks as ``nbgrader autograde``); only the student's kernel
    is new for each submission. It grades into a private SQLite copy of the assignment
    (:func:`softgrad.gradebook.export_assignment`) and sends back the scores and the autograded
    notebook: workers share no files and never write to the class's gradebook.

Never losing a grade
    Only the coordinator (the process that runs ``softgrad grade``) writes the class's
    gradebook, and it writes each submission's grades together with its ledger row in one
    transaction (:mod:`softgrad.gradebook`). A worker that dies mid-submission: Dask gives
    the task to another worker (a submission that kills its worker every time is recorded as
    failed, with zeros and the reason). The coordinator killed: what was recorded stays, and
    the next run grades only what is not. A submission graded before, from the same files,
    is not graded again unless ``--force``; a changed re-submission is.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from softgrad import autograde
from softgrad.gradebook import (
    alembic_on_path,
    course_config,
    course_db_url,
    export_assignment,
    export_csv,
    ledger,
    record_failure,
    record_grades,
    safe_url,
    submission_digest,
    submission_files,
)
from softgrad.integrity import WORTH_A_LOOK
from softgrad.progress import Progress, duration

__all__ = ["ClassRun", "grade_class", "grade_submission", "main"]


# ---------------------------------------------------------------- the worker's side

@dataclass
class _Workspace:
    """A worker's private course directory for one assignment, with nbgrader loaded."""

    root: Path
    db_url: str
    api: object


_WORKSPACES: dict[str, _Workspace] = {}
# Every run exports a new package (nbgrader's rows get fresh ids), so a long-lived worker of an
# existing scheduler would keep one workspace per run: it keeps the latest few and removes the rest.
_WORKSPACES_KEPT = 3


def _scratch_parent() -> str | None:
    """The Dask worker's own directory (cleaned up by Dask after a crash), else the system's temp."""
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):
        return None


def _workspace(package: dict) -> _Workspace:
    cached = _WORKSPACES.get(package["digest"])
    if cached is not None:
        return cached
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    root = Path(tempfile.mkdtemp(prefix="softgrad-grader-", dir=_scratch_parent()))
    (root / "nbgrader_config.py").write_text(package["config"])
    (root / "gradebook.db").write_bytes(package["gradebook"])
    config = course_config(root, package["overrides"])
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    source = Path(coursedir.format_path(coursedir.source_directory, ".", package["assignment"]))
    for name, data in package["source_files"].items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    space = _Workspace(root, db_url, NbGraderAPI(coursedir=coursedir, config=config))
    _remember(package["digest"], space)
    return space


def _remember(digest: str, space: _Workspace) -> None:
    """Cache a workspace; remove the oldest beyond the few kept (dicts keep insertion order)."""
    _WORKSPACES[digest] = space
    while len(_WORKSPACES) > _WORKSPACES_KEPT:
        shutil.rmtree(_WORKSPACES.pop(next(iter(_WORKSPACES))).root, ignore_errors=True)


def _quiet_nbgrader_models() -> None:
    """nbgrader's add_submission builds its objects in a way SQLAlchemy 2 warns about, harmlessly."""
    import warnings

    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning, message=r"Object of type <Submitted")


def grade_submission(package: dict, student: str, files: dict[str, bytes], extension_seconds: float | None) -> dict:
    """Grade one student's submission with nbgrader, in this worker; return plain data.

    The result: ``ok``; the scores and comments by notebook and cell, the late penalty, the
    submission's timestamp and the autograded files (``ok`` True), or the reason (``ok``
    False); the seconds it took and the worker's name. Idempotent: a second call with the
    same arguments gives the same result, whatever a killed earlier call left behind.
    """
    import datetime

    from nbgrader.api import Gradebook, MissingEntry

    _quiet_nbgrader_models()
    started = time.perf_counter()
    space = _workspace(package)
    assignment = package["assignment"]
    coursedir = space.api.coursedir
    submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
    autograded = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
    worker = f"{socket.gethostname()}:{os.getpid()}"
    for folder in (submitted, autograded):
        shutil.rmtree(folder, ignore_errors=True)
    for name, data in files.items():
        (submitted / name).parent.mkdir(parents=True, exist_ok=True)
        (submitted / name).write_bytes(data)
    with Gradebook(space.db_url) as gradebook:
        try:
            gradebook.remove_submission(assignment, student)  # left by an attempt that was killed
        except MissingEntry:
            pass
        if extension_seconds:
            gradebook.update_or_create_student(student)
            gradebook.update_or_create_submission(
                assignment, student, extension=datetime.timedelta(seconds=extension_seconds))
    try:
        outcome = space.api.autograde(assignment, student, force=True, create=True)
        if not outcome["success"]:
            return {"ok": False, "reason": autograde.failure_from_log(outcome.get("log") or outcome.get("error") or ""),
                    "seconds": time.perf_counter() - started, "worker": worker}
        notebooks = {}
        with Gradebook(space.db_url) as gradebook:
            submission = gradebook.find_submission(assignment, student)
            timestamp = submission.timestamp.isoformat() if submission.timestamp else None
            for notebook in submission.notebooks:
                notebooks[notebook.name] = {
                    "grades": {grade.name: grade.auto_score for grade in notebook.grades},
                    "comments": {comment.name: comment.auto_comment for comment in notebook.comments},
                    "late_penalty": notebook.late_submission_penalty,
                }
            gradebook.remove_submission(assignment, student)
        result_files = {p.relative_to(autograded).as_posix(): p.read_bytes()
                        for p in sorted(autograded.rglob("*")) if p.is_file()}
        return {"ok": True, "notebooks": notebooks, "timestamp": timestamp, "files": result_files,
                "seconds": time.perf_counter() - started, "worker": worker}
    finally:
        for folder in (submitted, autograded):
            shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the coordinator's side

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


def _package(course: Path, assignment: str, db_url: str, overrides: Sequence[str]) -> dict:
    """What every worker needs to grade this assignment, sent to each worker once."""
    from nbgrader.coursedir import CourseDirectory

    config = course_config(course, overrides)
    coursedir = CourseDirectory(config=config)
    source = Path(coursedir.format_path(coursedir.source_directory, ".", assignment))
    source_files = {p.relative_to(source).as_posix(): p.read_bytes() for p in sorted(source.rglob("*"))
                    if p.is_file() and p.suffix != ".ipynb" and ".ipynb_checkpoints" not in p.parts}
    package = {"assignment": assignment, "config": (course / "nbgrader_config.py").read_text(),
               "overrides": list(overrides), "gradebook": export_assignment(db_url, assignment),
               "source_files": source_files}
    package["digest"] = submission_digest({"config": package["config"].encode(), "gradebook": package["gradebook"],
                                           "overrides": "\n".join(overrides).encode(),
                                           **{f"source/{k}": v for k, v in source_files.items()}})
    return package


def _identity(value):
    return value


def _write_autograded(folder: Path, files: dict[str, bytes], run_id: str) -> None:
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


def _start_client(workers: int, scheduler: str | None):
    """A Dask client: of the scheduler at ``scheduler``, or of a new local cluster with ``workers`` processes."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    # A grading worker starts the student's kernel as a child process: it must not be daemonic.
    # A submission that kills its worker is given to another one at most twice; a worker gets
    # one submission at a time, so that a worker's death is counted against that one only.
    dask.config.set({"distributed.worker.daemon": False, "distributed.scheduler.allowed-failures": 2,
                     "distributed.scheduler.worker-saturation": 1.0})
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=0, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _students_to_grade(course: Path, coursedir, assignment: str, only: Iterable[str] | None) -> list[str]:
    pattern = Path(coursedir.format_path(coursedir.submitted_directory, "*", assignment))
    folders = sorted(course.glob(str(pattern.relative_to(course))))
    students = [f.parent.name for f in folders if f.is_dir()]
    if not students:
        raise LookupError(f"no submissions of {assignment} in {pattern.parent.parent.relative_to(course)}/: "
                          f"collect them first (`nbgrader collect {assignment}`)")
    if only:
        wanted = set(only)
        unknown = sorted(wanted - set(students))
        if unknown:
            raise LookupError(f"no submission of {assignment} from {', '.join(unknown)} in "
                              f"{pattern.parent.parent.relative_to(course)}/")
        students = [s for s in students if s in wanted]
    return students


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
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory

    course = course.resolve()
    started = time.perf_counter()
    alembic_on_path()
    _quiet_nbgrader_models()
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
    package = _package(course, assignment, db_url, overrides)  # fails early when the assignment is unknown
    run.problems = autograde.inspect_submissions(course, assignment)
    selected = _students_to_grade(course, coursedir, assignment, students)

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
            _grade_on_dask(course, coursedir, gradebook, package, todo, run, run_id, workers, scheduler, progress)

    run.seconds = time.perf_counter() - started
    _write_reports(course, assignment, db_url, run, csv_path)
    if feedback:  # for the students graded now, and those graded before who have none yet
        missing = [s for s in run.skipped
                   if not Path(coursedir.format_path(coursedir.feedback_directory, s, assignment)).exists()]
        run.feedback = _generate_feedback(course, assignment, db_url, overrides, run.graded + missing, progress)
    return run


def _grade_on_dask(course, coursedir, gradebook, package, todo, run, run_id, workers, scheduler, progress) -> None:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    assignment = package["assignment"]
    if not scheduler:  # one process per core, and no more than there are submissions
        workers = min(workers or os.cpu_count() or 1, len(todo))
    bar = Progress(len(todo), progress)
    client, cluster = _start_client(workers or 1, scheduler)
    try:
        run.workers = len(client.scheduler_info().get("workers", {})) or (workers or 0)
        # The package is a task's result, not scattered data: if every worker holding it dies,
        # the scheduler computes it again instead of cancelling the submissions that need it.
        shared = client.submit(_identity, package, key=f"softgrad-package-{package['digest'][:16]}-{run_id}",
                               pure=False)
        futures = {}
        for student, (files, digest, extension) in todo.items():
            future = client.submit(grade_submission, shared, student, files, extension, pure=False,
                                   key=f"softgrad-grade-{assignment}-{student}-{run_id}")
            futures[future] = (student, digest)
        for future in as_completed(futures):
            student, digest = futures.pop(future)
            try:
                result = future.result()
            except KilledWorker:
                result = {"ok": False, "reason": "the grading process died every time it graded this submission "
                                                 "(a submission that kills its parent process, or a machine out "
                                                 "of memory); it is tried again on the next run"}
            except Exception as error:  # noqa: BLE001 (one submission's failure never stops the class)
                result = {"ok": False, "reason": f"{type(error).__name__}: {error}"}
            if result["ok"]:
                folder = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
                _write_autograded(folder, result["files"], run_id)
                score = record_grades(gradebook, assignment, student, result, digest=digest, run_id=run_id)
                run.graded.append(student)
                label = f"{student}: {score:g}"
            else:  # what the intake found says it best (a notebook that is not JSON), else nbgrader's error
                known = "; ".join(p["detail"] for p in run.problems.get(student, []) if "score 0" in p["detail"])
                reason = known or result["reason"]
                record_failure(gradebook, assignment, student, reason, digest=digest, run_id=run_id,
                               worker=result.get("worker"))
                # nbgrader removes the output of a submission it could not grade; so does this: an
                # earlier run's notebook and feedback would contradict the zeros now recorded.
                for output in (coursedir.autograded_directory, coursedir.feedback_directory):
                    shutil.rmtree(coursedir.format_path(output, student, assignment), ignore_errors=True)
                run.failed[student] = reason
                label = f"{student}: failed"
            bar.step(label, time_left=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _write_reports(course: Path, assignment: str, db_url: str, run: ClassRun, csv_path: Path | None) -> None:
    from nbgrader.api import Gradebook

    folder = course / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    problems = {student: list(found) for student, found in run.problems.items()}
    for student, reason in run.failed.items():
        problems.setdefault(student, []).append(autograde.not_graded(reason))
    (folder / "problems.json").write_text(json.dumps(problems, indent=1, sort_keys=True))
    run.report = autograde.grading_report(course, assignment, db_url=db_url)
    rows = json.loads(run.report.with_suffix(".json").read_text())
    findings = {row["student"]: row["findings"] for row in rows}
    run.flagged = [row["student"] for row in rows if any(f["severity"] in WORTH_A_LOOK for f in row["findings"])]
    with Gradebook(db_url) as gradebook:
        run.csv = export_csv(gradebook, assignment, csv_path or folder / "grades.csv", findings)


def _generate_feedback(course: Path, assignment: str, db_url: str, overrides: Sequence[str],
                       students: list[str], progress: TextIO | None) -> list[str]:
    """nbgrader's feedback (HTML) for the students graded in this run, regenerated."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = course_config(course, overrides)
    config.CourseDirectory.db_url = db_url
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    written = []
    bar = Progress(len(students), progress)
    for student in sorted(students):
        outcome = api.generate_feedback(assignment, student, force=True)
        if outcome["success"]:
            written.append(student)
        bar.step(f"feedback for {student}" + ("" if outcome["success"] else ": FAILED (see nbgrader's log)"))
    return written


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
