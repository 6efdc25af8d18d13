"""The course directory as nbgrader sees it: its configuration, its gradebook's address, its environment.

Every step of grading a class (:mod:`softgrad.grader.classgrade`) starts here: nbgrader's
configuration of the course (its ``nbgrader_config.py`` plus settings given on the command
line), and the URL of the gradebook (SQLite by default, or PostgreSQL).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["alembic_on_path", "course_config", "course_db_url", "safe_url", "scratch_gradebook",
           "share_gradebook_engines", "submission_notebooks"]

_SCRATCH: set[str] = set()  # the URLs given to scratch_gradebook


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


def alembic_on_path() -> None:
    """Put this environment's ``bin/`` first on PATH: nbgrader runs ``alembic`` to create a new gradebook."""
    here = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != here:
        os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")


def share_gradebook_engines() -> None:
    """One SQLAlchemy engine per gradebook URL in this process, instead of one per ``Gradebook`` opened.

    nbgrader opens its gradebook several times for every submission it grades, and each
    ``Gradebook`` creates a new engine: SQLAlchemy's cache of compiled statements belongs to the
    engine, so every statement was compiled again each time (about 0.2 s of CPU per submission,
    a third of what nbgrader's own process spends on it). A shared engine keeps that cache; its
    connections are still closed when a ``Gradebook`` closes (``engine.dispose()``), so nothing
    stays open between two submissions. Called by softgrad's grading processes, and by
    ``nbgrader autograde`` when it loads the course's preprocessors.
    """
    from nbgrader import api

    if getattr(api.create_engine, "shared_by_softgrad", False):
        return
    create_engine = api.create_engine
    engines: dict[tuple, object] = {}

    def shared_engine(url, **options):
        key = (str(url), repr(sorted(options.items())))  # options may hold dicts (connect_args)
        if key not in engines:
            engines[key] = create_engine(url, **options)
            if str(url) in _SCRATCH:
                from sqlalchemy import event

                event.listen(engines[key], "connect", _unsynced)
        return engines[key]

    shared_engine.shared_by_softgrad = True
    api.create_engine = shared_engine


def scratch_gradebook(db_url: str) -> None:
    """Say that the SQLite gradebook at ``db_url`` is a grading worker's private copy, thrown away with the
    process: its connections (those of the engines :func:`share_gradebook_engines` makes) write without waiting
    for the disk (``PRAGMA synchronous=OFF``).

    SQLite waits for the disk at every commit (about 1.5 ms here), and nbgrader commits some twenty times
    per submission. Without the wait a transaction is still whole if the process dies; only a crash of the
    machine could leave the copy damaged, and the copy does not outlive the process. The class's
    gradebook is never marked: every grade recorded there is on the disk.

    And a ``Gradebook`` opened again on the copy skips nbgrader's checks that its tables and its course
    exist (they did the first time, and no other process uses the copy): nbgrader opens its gradebook a
    dozen times per submission, and those checks cost some 4 ms of CPU each time.
    """
    _SCRATCH.add(db_url)
    _open_scratch_quickly()


def _open_scratch_quickly() -> None:
    """``nbgrader.api.Gradebook`` opens a scratch gradebook it has opened before without checking it again."""
    from nbgrader import api
    from sqlalchemy.orm import scoped_session, sessionmaker

    if getattr(api.Gradebook.__init__, "quick_for_scratch", False):
        return
    original = api.Gradebook.__init__
    opened: set[tuple[str, str]] = set()  # (URL, course) of scratch gradebooks fully opened once

    def __init__(self, db_url, course_id="default_course", authenticator=None):
        key = (str(db_url), course_id)
        if key in opened and key[0] in _SCRATCH:  # as nbgrader's __init__, less its checks
            self.engine = api.create_engine(db_url, echo=False, future=True)
            self.db = scoped_session(sessionmaker(autoflush=True, bind=self.engine, future=True))
            self.course_id = course_id
            self.authenticator = authenticator
            return
        original(self, db_url, course_id, authenticator)
        if key[0] in _SCRATCH:
            opened.add(key)

    __init__.quick_for_scratch = True
    __init__.__wrapped__ = original
    api.Gradebook.__init__ = __init__


def _unsynced(connection, _record) -> None:
    connection.execute("PRAGMA synchronous=OFF")


def submission_notebooks(gradebook, submission=None, *, assignment: str | None = None) -> list:
    """An nbgrader submission's notebooks (or those of every submission of ``assignment``) with their grades and
    comments, each with its cell, read in five statements at most, however many cells and submissions there are.

    nbgrader's objects read each of them, and each one's cell, one statement at a time, and again
    after every commit (``add_submission`` commits): forty statements for a notebook of twenty cells.
    """
    from nbgrader.api import Assignment, Comment, Grade, GradeCell, SubmittedAssignment, SubmittedNotebook, TaskCell
    from sqlalchemy.orm import joinedload, selectinload, undefer

    query = gradebook.db.query(SubmittedNotebook)
    if submission is not None:
        query = query.filter(SubmittedNotebook.assignment_id == submission.id)
    else:
        query = (query.join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
                 .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
                 .filter(Assignment.name == assignment)
                 .options(joinedload(SubmittedNotebook.assignment)))
    return (query.options(joinedload(SubmittedNotebook.notebook),
                          # a grade's cell is a GradeCell or a TaskCell: their own columns in one statement each
                          selectinload(SubmittedNotebook.grades).options(
                              joinedload(Grade.cell).selectin_polymorphic([GradeCell, TaskCell]),
                              undefer(Grade.max_score)),
                          selectinload(SubmittedNotebook.comments).joinedload(Comment.cell))
            .populate_existing().all())


def safe_url(db_url: str) -> str:
    """The URL without its password, for messages."""
    if "://" in db_url and "@" in db_url:
        scheme, rest = db_url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':')[0]}:***@{host}" if ":" in credentials else db_url
    return db_url
