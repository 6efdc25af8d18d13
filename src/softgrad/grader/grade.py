"""Step 2 of grading a class: every submission graded by nbgrader, in parallel on Dask.

nbgrader grades one submission after another (its issue #174). Here every submission is an
independent task on a Dask cluster: an embedded local cluster by default (one worker per core,
nothing to start), or an existing scheduler given by its address (``--scheduler tcp://host:8786``),
so the same command runs on a laptop and on a university cluster.

A worker keeps nbgrader and the course's grading code loaded, and grades with nbgrader's own
pipeline (``NbGraderAPI.autograde`` with the course's ``nbgrader_config.py``: the same limits,
re-run and integrity checks as ``nbgrader autograde``); only the student's kernel is new for
each submission. A worker grades into a private SQLite copy of the assignment
(:func:`export_assignment`) and sends back the scores and the autograded notebook: workers share
no files and never write to the class's gradebook. A local cluster starts while the coordinator
reads the course, and its workers load nbgrader as they start (:class:`GradingCluster`,
:mod:`softgrad.grader.warm`). A worker that dies mid-submission: Dask gives
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
from dataclasses import dataclass
from pathlib import Path

from softgrad.grader import template
from softgrad.grader.course import (
    alembic_on_path,
    course_config,
    safe_url,
    scratch_gradebook,
    share_gradebook_engines,
    submission_notebooks,
)
from softgrad.grader.intake import submission_digest

__all__ = ["Grading", "GradingCluster", "export_assignment", "failure_from_log", "grade_submission", "make_package",
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
    code = [cell.source for notebook in sorted(source.rglob("*.ipynb"))
            if ".ipynb_checkpoints" not in notebook.parts
            for cell in _cells(notebook) if cell.cell_type == "code"]
    package = {"assignment": assignment, "config": (course / "nbgrader_config.py").read_text(),
               "overrides": list(overrides), "gradebook": export_assignment(db_url, assignment),
               "source_files": source_files,
               # the template its notebooks need (a student's that imports more gets its own at first use)
               "preload": template.preload_for(code)}
    package["digest"] = submission_digest({"config": package["config"].encode(), "gradebook": package["gradebook"],
                                           "overrides": "\n".join(overrides).encode(),
                                           **{f"source/{k}": v for k, v in source_files.items()}})
    return package


def _cells(notebook: Path) -> list:
    """The cells of a notebook file (nbformat's, sources joined), none if it is not a readable notebook."""
    import nbformat

    try:
        return nbformat.read(notebook, as_version=4).cells
    except (OSError, ValueError):
        return []


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


_WORKER_START = "softgrad.grader.warm"
"""The module every worker of a local cluster imports as it starts (Dask's worker preload)."""

# Dask's settings for the local cluster (an existing scheduler keeps its own). A grading worker starts the
# student's kernel as a child process: it must not be daemonic. A submission that kills its worker is given to
# another one at most twice; a worker gets one submission at a time, so that a worker's death is counted against
# that one only. The rest is Dask's housekeeping, which costs grading CPU and does nothing for a local cluster
# whose workers hold one task and no data: the statistical profiler (a look at the grading thread's stack every
# 10 ms, for a dashboard: about 15% more CPU per submission), work stealing and the active memory manager are
# off; the event loop's watchdog (every 20 ms) and the resource monitor (every 0.5 s), in the scheduler, each
# nanny and each worker, run every 1 s and 5 s. With these, the coordinator's Dask thread (scheduler, nannies,
# client) used 1.4 s of CPU for a class of 100 on two workers, against 4.3 s.
_LOCAL_SETTINGS = {
    "distributed.worker.daemon": False,
    "distributed.scheduler.allowed-failures": 2,
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.scheduler.work-stealing": False,
    "distributed.scheduler.active-memory-manager.start": False,
    "distributed.worker.preload": [_WORKER_START],
}


def _start_client(workers: int, scheduler: str | None):
    """A Dask client: of the scheduler at ``scheduler``, or of a new local cluster with ``workers`` processes."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    dask.config.set(_LOCAL_SETTINGS)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=0, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _worker_addresses(dask_scheduler) -> list[str]:
    return list(dask_scheduler.workers)


def _start_template(preload: tuple[str, ...]) -> None:
    """Start this worker's template for ``preload`` in the background (the first submission waits for it)."""
    import threading

    threading.Thread(target=template.template, args=(preload,), name="softgrad-template", daemon=True).start()


@dataclass
class Grading:
    """A Dask client ready to grade the submissions of one assignment (see :meth:`GradingCluster.grading`)."""

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


class GradingCluster:
    """Where a class is graded: a Dask client, started in the background as soon as this object is made.

    A local cluster's workers start (and import nbgrader and the course's grading code, :mod:`softgrad.grader.warm`)
    while the coordinator reads the course and the submissions, instead of after it: the first grades come
    about three seconds sooner. Use it as a context manager: on exit the client and the cluster are closed
    (:meth:`close_soon` starts closing them while the coordinator writes its reports).

    ``workers``: the local cluster's processes (default: one per core), no more than ``expected``
    submissions (a first guess; :meth:`grading` adjusts the cluster to the submissions really to grade).
    ``scheduler``: an existing scheduler's address instead of a local cluster.
    """

    def __init__(self, *, workers: int | None, scheduler: str | None, expected: int):
        import threading

        import distributed  # noqa: F401 (imported here, not by two threads at once)

        self._wanted = workers
        self.scheduler = scheduler
        self.local_workers = 0 if scheduler else self._local(expected)
        self._client = self._cluster = self._error = None
        self._closing: object = None
        self._templates: list = []  # the futures of the template starts (a future nobody holds is cancelled)
        self._thread = threading.Thread(target=self._start, name="softgrad-dask-start", daemon=True)
        self._thread.start()

    def _local(self, submissions: int) -> int:
        return max(1, min(self._wanted or os.cpu_count() or 1, submissions))

    def _start(self) -> None:
        try:
            self._client, self._cluster = _start_client(self.local_workers, self.scheduler)
        except BaseException as error:  # noqa: BLE001 (given to the coordinator by grading())
            self._error = error

    def grading(self, package: dict, *, submissions: int, run_id: str, preload: tuple[str, ...] | None = None
                ) -> Grading:
        """A :class:`Grading` for ``submissions`` submissions; each local worker starts its template for
        ``preload`` (:func:`softgrad.grader.template.preload_for`) at once (the workers of an existing scheduler,
        at their first submission)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._cluster is not None:
            wanted = self._local(submissions)
            if wanted != self.local_workers:
                self._cluster.scale(wanted)
                if wanted < self.local_workers:  # no submission is given to a worker on its way out
                    deadline = time.monotonic() + 60
                    while len(self._workers()) > wanted and time.monotonic() < deadline:
                        time.sleep(0.05)
                self.local_workers = wanted
            if preload:
                self._templates = [
                    self._client.submit(_start_template, preload, workers=[address], allow_other_workers=True,
                                        pure=False, key=f"softgrad-template-{address}-{run_id}")
                    for address in self._workers()]
        return Grading(self._client, package, run_id, self.local_workers or len(self._workers()))

    def _workers(self) -> list[str]:
        """The addresses of the workers the scheduler has now."""
        return self._client.run_on_scheduler(_worker_addresses)

    def _close(self) -> None:
        self._thread.join()
        try:
            if self._client is not None:
                self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()

    def close_soon(self) -> None:
        """Start closing the client and the cluster in the background (:meth:`close` waits for it)."""
        import threading

        if self._closing is None:
            self._closing = threading.Thread(target=self._close, name="softgrad-dask-close", daemon=True)
            self._closing.start()

    def close(self) -> None:
        self.close_soon()
        self._closing.join()

    def __enter__(self) -> GradingCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
