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

__all__ = ["alembic_on_path", "course_config", "course_db_url", "safe_url", "share_gradebook_engines"]


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
        return engines[key]

    shared_engine.shared_by_softgrad = True
    api.create_engine = shared_engine


def safe_url(db_url: str) -> str:
    """The URL without its password, for messages."""
    if "://" in db_url and "@" in db_url:
        scheme, rest = db_url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':')[0]}:***@{host}" if ":" in credentials else db_url
    return db_url
