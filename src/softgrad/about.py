"""Where the course lives: its repository, its branch and its published book, said once.

This is the one setting a fork of the course changes (one line: :data:`REPOSITORY`); everything
else reads it: the book's repository and launch buttons (``_ext/course_settings.py``), the pages
that show an address (through the book's substitutions), the install cell of every notebook
(written by ``./course release`` and ``./course notebooks``), the links in students' feedback
(:attr:`softgrad.mistakes.Mistake.url`). ``tests/course/test_repository.py`` fails if the address
is written anywhere else.
"""

from __future__ import annotations

__all__ = ["BOOK_URL", "BRANCH", "INSTALL", "REPOSITORY"]

REPOSITORY = "https://github.com/softgrad-course/softmax"
"""The course's public repository (a fork puts its own address here)."""

BRANCH = "main"
"""The branch that notebooks install the library from and that launch buttons open."""


def _book_url(repository: str) -> str:
    """The address GitHub Pages gives the repository's book: ``https://OWNER.github.io/NAME/``."""
    owner, name = repository.rstrip("/").split("/")[-2:]
    return f"https://{owner.lower()}.github.io/{name}/"


BOOK_URL = _book_url(REPOSITORY)
"""The published book, where feedback's links to chapter sections point."""

INSTALL = f"softgrad @ git+{REPOSITORY}@{BRANCH}"
"""The pip requirement that installs the course library from the repository."""
