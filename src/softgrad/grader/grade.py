"""Step 2 of grading a class: every submission graded by nbgrader, in parallel on Dask.

nbgrader grades one submission after another (its issue #174). Here every submission is an
independent task on a Dask cluster: an embedded local cluster by default (one worker per core,
nothing to start), or an existing scheduler given by its address (``--scheduler tcp://host:8786``),
so the same command runs on a laptop and on a university cluster.

A worker keeps nbgrader and the course's grading code loaded, and grades with nbgrader's own
pipeline (``NbGraderAPI.autograde`` with the course's ``nbgrader_config.py``: the same limits,
re-run and integrity checks as ``nbgrader autograde``); only the student's kernel is new for
each submission. It grades into a private SQLite copy of the assignment
(:func:`export_assignment`) and sends back the scores and the autograded notebook: workers share
no files and never write to the class's gradebook. A worker that dies mid-submission: Dask gives
the task to another worker; a submission that kills its worker every time comes back as failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from softgrad.grader.course import (
    alembic_on_path,
    course_config,
    safe_url,
    scratch_gradebook,
    share_gradebook_engines,
    submission_notebooks,
)
from softgrad.grader.intake import submission_digest

__all__ = ["Grading", "dask_grading", "export_assignment", "failure_from_log", "grade_submission", "make_package",
           "quiet_nbgrader_models"]


# ---------------------------------------------------------------- what every worker receives

def make_package(course: Path, assignment: str, db_url: str, overrides: Sequence[str]) -> dict:
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


def export_assignment(db_url: str, assignment: str) -> bytes:
    """An SQLite gradebook (as bytes) holding only ``assignment``: its notebooks, cells and hidden tests.

    A worker grades into a private copy of it, so that workers never write to the class's
    gradebook (SQLite allows one writer at a time) and need no access to its server.
    """
    from nbgrader.api import Gradebook, MissingEntry

    alembic_on_path()
    with tempfile.TemporaryDirectory(prefix="softgrad-export-") as scratch:
        path = Path(scratch) / "gradebook.db"
        with Gradebook(db_url) as source:
            _stamp_alembic_version(source, path)
            with Gradebook(f"sqlite:///{path}") as copy:
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


def _stamp_alembic_version(source, path: Path) -> None:
    """Give the new SQLite gradebook at ``path`` the schema version of ``source``'s.

    nbgrader stamps a new gradebook with the version that ``alembic heads`` prints, in a
    subprocess that imports nbgrader again: four seconds of CPU for every run. A database that
    already has a table is not new to nbgrader, so the copy gets the version table first.
    """
    import sqlite3

    from sqlalchemy import text

    try:
        version = source.db.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 (no version table: nbgrader stamps the copy itself)
        source.db.rollback()
        return
    if version:
        with contextlib.closing(sqlite3.connect(path)) as connection, connection:
            connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            connection.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (version,))


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
    scratch_gradebook(db_url)
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


def quiet_nbgrader_models() -> None:
    """nbgrader's add_submission builds its objects in a way SQLAlchemy 2 warns about, harmlessly."""
    import warnings

    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning, message=r"Object of type <Submitted")


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


def grade_submission(package: dict, student: str, files: dict[str, bytes], extension_seconds: float | None) -> dict:
    """Grade one student's submission with nbgrader, in this worker; return plain data.

    The result: ``ok``; the scores and comments by notebook and cell, the late penalty, the
    submission's timestamp and the autograded files (``ok`` True), or the reason (``ok``
    False); the seconds it took and the worker's name. Idempotent: a second call with the
    same arguments gives the same result, whatever a killed earlier call left behind.
    """
    import datetime

    from nbgrader.api import Gradebook, MissingEntry

    quiet_nbgrader_models()
    share_gradebook_engines()
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
            return {"ok": False, "reason": failure_from_log(outcome.get("log") or outcome.get("error") or ""),
                    "seconds": time.perf_counter() - started, "worker": worker}
        notebooks = {}
        with Gradebook(space.db_url) as gradebook:
            submission = gradebook.find_submission(assignment, student)
            timestamp = submission.timestamp.isoformat() if submission.timestamp else None
            for notebook in submission_notebooks(gradebook, submission):
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

def _identity(value):
    return value


def _start_client(workers: int, scheduler: str | None):
    """A Dask client: of the scheduler at ``scheduler``, or of a new local cluster with ``workers`` processes."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    # A grading worker starts the student's kernel as a child process: it must not be daemonic.
    # A submission that kills its worker is given to another one at most twice; a worker gets
    # one submission at a time, so that a worker's death is counted against that one only.
    # Dask's statistical profiler (a look at the grading thread's stack every 10 ms, for the dashboard that a
    # local cluster does not start) made grading cost about 15% more CPU (two workers: 1.49 s per submission
    # with it, 1.29 s without).
    dask.config.set({"distributed.worker.daemon": False, "distributed.scheduler.allowed-failures": 2,
                     "distributed.scheduler.worker-saturation": 1.0, "distributed.worker.profile.enabled": False})
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=0, silence_logs=logging.ERROR)
    return Client(cluster), cluster


@dataclass
class Grading:
    """A Dask client ready to grade the submissions of one assignment (see :func:`dask_grading`)."""

    client: object
    package: dict
    run_id: str
    workers: int

    def grade(self, todo: Mapping[str, tuple[dict[str, bytes], str, float | None]]) -> Iterator[tuple[str, str, dict]]:
        """Grade ``todo`` (student -> (files, digest, extension in seconds)); yield ``(student, digest, result)``
        as each submission finishes, in the order they finish.

        ``result`` is what :func:`grade_submission` returns; a submission whose task failed (its worker
        died every time, or grading raised) comes back as ``{"ok": False, "reason": ...}``: one
        submission's failure never stops the class.
        """
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        assignment = self.package["assignment"]
        # The package is a task's result, not scattered data: if every worker holding it dies,
        # the scheduler computes it again instead of cancelling the submissions that need it.
        shared = self.client.submit(_identity, self.package,
                                    key=f"softgrad-package-{self.package['digest'][:16]}-{self.run_id}", pure=False)
        futures = {}
        for student, (files, digest, extension) in todo.items():
            future = self.client.submit(grade_submission, shared, student, files, extension, pure=False,
                                        key=f"softgrad-grade-{assignment}-{student}-{self.run_id}")
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
            yield student, digest, result


@contextmanager
def dask_grading(package: dict, *, submissions: int, workers: int | None, scheduler: str | None,
                 run_id: str) -> Iterator[Grading]:
    """A :class:`Grading` on the scheduler at ``scheduler``, or on a local cluster of ``workers`` processes
    (default: one per core, and no more than there are ``submissions``); closed on exit."""
    if not scheduler:
        workers = min(workers or os.cpu_count() or 1, submissions)
    client, cluster = _start_client(workers or 1, scheduler)
    try:
        found = len(client.scheduler_info().get("workers", {})) or (workers or 0)
        yield Grading(client, package, run_id, found)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
