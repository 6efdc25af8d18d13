"""Where the course lives: its repository, its branch and its published book, said once.

This is the one setting a fork of the course changes (one line: :data:`REPOSITORY`); everything
else reads it: the book's repository and launch buttons (``_ext/course_settings.py``), the links
in students' feedback (:attr:`softgrad.mistakes.catalogue.Mistake.url`), and every text that
shows an address. Such a text holds a placeholder, ``{{ softgrad.about.INSTALL }}`` for example,
that :func:`fill` replaces with the value of that name: the book's pages when they are read
(``_ext/course_settings.py``), the chapters' notebooks (``./course notebooks``), the released
exercises (``./course release``, through
:class:`softgrad.grader.preprocessors.address.FillCourseAddress`).
``tests/course/test_repository.py`` fails if the address is written anywhere else.
"""

from __future__ import annotations

import re

__all__ = ["BOOK_URL", "BRANCH", "COLAB_URL", "INSTALL", "PLACEHOLDER", "REPOSITORY", "fill"]

REPOSITORY = "https://github.com/softgrad-course/softmax"
"""The course's public repository (a fork puts its own address here)."""

BRANCH = "main"
"""The branch that notebooks install the library from and that launch buttons open."""


_OWNER, _NAME = REPOSITORY.rstrip("/").split("/")[-2:]

BOOK_URL = f"https://{_OWNER.lower()}.github.io/{_NAME}/"
"""The published book, where feedback's links to chapter sections point."""

COLAB_URL = f"https://colab.research.google.com/github/{_OWNER}/{_NAME}/blob/{BRANCH}/"
"""Google Colab's address for the repository's files: add a notebook's path to open it there."""

INSTALL = f"softgrad @ git+{REPOSITORY}@{BRANCH}"
"""The pip requirement that installs the course library from the repository."""


_FILLABLE = ("BOOK_URL", "BRANCH", "COLAB_URL", "INSTALL", "REPOSITORY")

PLACEHOLDER = re.compile(r"\{\{ softgrad\.about\.(\w+) \}\}")
"""A placeholder in a page or a notebook: ``{{ softgrad.about.NAME }}``, NAME one of this module's."""


def fill(text: str) -> str:
    """``text`` with every placeholder replaced by the value of its name in this module.

    >>> fill("git clone {{ softgrad.about.REPOSITORY }}.git") == f"git clone {REPOSITORY}.git"
    True
    """

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in _FILLABLE:
            raise ValueError(f"unknown placeholder {match.group(0)!r}: the names softgrad.about fills in are "
                             + ", ".join(_FILLABLE))
        return str(globals()[name])

    return PLACEHOLDER.sub(value, text)
