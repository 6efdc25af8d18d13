"""Helpers for the book's chapters that keep them runnable outside a Jupyter Book build.

Chapters insert numbers computed by their code into the prose with MyST-NB's ``glue``. On
Colab or a JupyterHub, where MyST-NB is usually not installed, :func:`glue` does nothing
and the chapter still runs (the numbers are printed by the code cells anyway).

Chapters also show what the graded checks tell a student, without any message handling of
their own: :func:`feedback` runs a check and returns the text a student would read, and
:func:`mistake_table` lays out a chapter's entries of the catalogue of known mistakes. This
module imports nothing from the checks or the catalogue: chapters pass them in.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

__all__ = ["FEEDBACK_WIDTH", "Markdown", "chapter_notebook", "feedback", "glue", "mistake_table"]

FEEDBACK_WIDTH = 78
"""Lines of :func:`feedback` are wrapped to this many characters, so that no output scrolls sideways."""


def glue(name: str, value: object, display: bool = False) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name``` in the prose (MyST-NB), if available.

    NumPy scalars are converted to Python numbers first: NumPy 2 prints them as
    ``np.float64(...)``, which the prose's number formats (``:.2f``) cannot read.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # not building the book: nothing to record
        return
    if isinstance(value, np.generic):
        value = value.item()
    myst_glue(name, value, display=display)


def chapter_notebook(source: Path):
    """The chapter ``source`` (MyST Markdown) as a notebook without outputs, for Colab and JupyterHubs.

    Cell ids are numbered (``cell-0``, ``cell-1``, ...) instead of random, so that writing
    the notebook again from an unchanged chapter gives the same file. Needs jupytext.
    """
    import jupytext

    notebook = jupytext.reads(Path(source).read_text(), fmt="md:myst")
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"
    return notebook


def _wrap(text: str, width: int) -> str:
    """Wrap every line longer than ``width``, keeping its indentation (continuations two deeper)."""
    lines = []
    for line in text.splitlines():
        if len(line) <= width:
            lines.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        lines.append(textwrap.fill(line.strip(), width=width, initial_indent=indent,
                                   subsequent_indent=indent + "  ", break_long_words=False,
                                   break_on_hyphens=False))
    return "\n".join(lines)


def feedback(check: Callable[..., object], /, *args: object, **kwargs: object) -> str:
    """Run ``check(*args, **kwargs)`` and return what a student would read.

    A check raises :class:`AssertionError` with its message when a result is wrong: that
    message is returned. When the check passes, the result is ``"passed"``, followed by
    whatever the check returned (a gradient check's report), if anything. Any other
    exception is a fault of the check or of its arguments, not feedback, and propagates.
    Lines are wrapped to :data:`FEEDBACK_WIDTH` characters.
    """
    try:
        result = check(*args, **kwargs)
    except AssertionError as failure:
        return _wrap(str(failure), FEEDBACK_WIDTH)
    return _wrap("passed" if result is None else f"passed: {result}", FEEDBACK_WIDTH)


class Markdown:
    """Markdown text that Jupyter (and MyST-NB) displays rendered, and ``print`` shows as source."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


_SECTION = re.compile(r"Chapter \d+, (?P<title>.+), section '(?P<heading>.+)'")


def _cell(text: str, *, plain: bool = False) -> str:
    """One table cell: on one line, with pipes escaped; ``plain`` text also gets ``<`` escaped.

    The catalogue's texts are plain (``<g, p>`` must not start an HTML tag); the rows a
    chapter writes are Markdown, and may hold math such as ``$a < b$``.
    """
    cell = " ".join(str(text).split()).replace("|", "\\|")
    return cell.replace("<", "&lt;") if plain else cell


def mistake_table(entries: Iterable[object], chapter: str,
                  rows: Mapping[str, tuple[str, str]]) -> Markdown:
    """A Markdown table of the known mistakes taught in ``chapter``: mistake, what goes wrong, caught by.

    ``entries`` are the catalogue's entries (objects with ``id``, ``title``, ``explanation``
    and ``section``, the last reading ``"Chapter N, <chapter>, section '<heading>'"``); only
    those of ``chapter`` are listed, in catalogue order. ``rows`` maps an entry's id to two
    short texts written for the chapter: what goes wrong, and which test input catches it.
    An entry without a row still gets one, from the first sentence of its explanation, so
    the table never hides a mistake of the chapter; a row whose id is not an entry of the
    chapter raises :class:`ValueError` (the table is out of date).
    """
    chosen = []
    for entry in entries:
        found = _SECTION.fullmatch(str(getattr(entry, "section", "")))
        if found and found.group("title") == chapter:
            chosen.append(entry)
    if not chosen:
        raise ValueError(f"no entry of the catalogue is taught in the chapter {chapter!r}")
    unknown = sorted(set(rows) - {entry.id for entry in chosen})
    if unknown:
        raise ValueError(f"rows for mistakes that the catalogue does not place in {chapter!r}: "
                         f"{', '.join(unknown)}")
    lines = ["| Mistake | What goes wrong | Caught by |", "|---|---|---|"]
    for entry in chosen:
        title = _cell(entry.title, plain=True)
        if entry.id in rows:
            what, caught = (_cell(text) for text in rows[entry.id])
        else:
            explanation = " ".join(str(entry.explanation).split())
            what = _cell(re.split(r"(?<=\.)\s", explanation, maxsplit=1)[0], plain=True)
            caught = "the graded checks"
        lines.append(f"| {title} (`{entry.id}`) | {what} | {caught} |")
    return Markdown("\n".join(lines))
