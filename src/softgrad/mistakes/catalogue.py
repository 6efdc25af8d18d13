"""The catalogue's machinery: a known mistake, the registry, and the wrong implementations of each.

The entries themselves live in one module per chapter of the book (:mod:`softgrad.mistakes`
imports them all, in the book's order). An entry says where the book teaches it: a chapter of
:data:`CHAPTERS` and a heading in it; :attr:`Mistake.section` reads that out for students and
:attr:`Mistake.url` points at the section of the published book.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from softgrad import about
from softgrad.i18n import N_, _

__all__ = ["CATALOGUE", "CHAPTERS", "Mistake", "anchor", "in_its_dtype", "mistake", "reproduces", "suspects"]

CHAPTERS: dict[str, tuple[int, str]] = {
    "01_softmax": (1, N_("The softmax function")),
    "02_gradient_checking": (2, N_("Checking gradients numerically")),
    "03_jacobian": (3, N_("The Jacobian of softmax")),
    "04_cross_entropy": (4, N_("Cross-entropy and its gradient")),
    "05_numpy_training": (5, N_("Softmax regression in NumPy")),
    "06_multiclass": (6, N_("Softmax regression, logistic regression, one-vs-rest and one-vs-one")),
    "07_pytorch": (7, N_("Softmax in PyTorch")),
    "08_at_scale": (8, N_("Softmax at scale")),
    "09_triton": (9, N_("Softmax as a GPU kernel")),
}
"""The book's chapters, by the name of their file in ``chapters/``: (number, title). A test checks it
against ``_toc.yml`` and the chapters' own headings. The titles are in English; :attr:`Mistake.section`
shows them in the reader's language (:mod:`softgrad.i18n`)."""


def in_its_dtype(x: object) -> np.ndarray:
    """``x`` as an array in its own floating dtype (integers become float64), as a student's code
    computes: a reproduction of an overflow must overflow where the student's float32 code does."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def anchor(heading: str) -> str:
    """The HTML id the book gives a section with this heading, as docutils' ``make_id`` makes it: lower
    case, characters outside ASCII dropped (an en dash disappears), every other run of characters a
    single hyphen, no hyphen or digit at the start and no hyphen at the end."""
    text = unicodedata.normalize("NFKD", heading.lower()).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "-", " ".join(text.split()))
    return re.sub(r"^[-0-9]+|-+$", "", text)


# The explanation of each mistake is printed once per notebook: the first failing test cell that
# finds it shows it in full, later ones name it. Keyed by the id of the cell that explained it.
_EXPLAINED: dict[str, object] = {}


def _current_cell() -> object | None:
    """Which notebook cell is running: its id (sent by Jupyter and nbclient), else its source; None
    outside a notebook (a script, the test suite), where every explanation is given in full."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else {}
    except Exception:  # noqa: BLE001 (an old ipykernel, or no parent message)
        parent = {}
    cell_id = (parent or {}).get("metadata", {}).get("cellId")
    if cell_id:
        return cell_id
    inputs = shell.user_ns.get("In")
    return inputs[-1] if isinstance(inputs, list) and inputs else None


@dataclass(frozen=True)
class Mistake:
    """A known mistake: a stable id, a title, what goes wrong and how to fix it, and where it is taught
    (``chapter``, a key of :data:`CHAPTERS`, and ``heading``, a section heading in that chapter).

    The title, the explanation and the heading are stored in English (the source's words, marked
    for the catalogue of translations with ``N_``); :meth:`describe` and :attr:`section` show them
    in the reader's language (:mod:`softgrad.i18n`)."""

    id: str
    title: str
    explanation: str
    chapter: str
    heading: str
    implementations: dict[str, list[Callable[..., object]]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @property
    def section(self) -> str:
        """``Chapter 1, The softmax function, section 'The max trick'`` (in the reader's language)."""
        number, title = CHAPTERS[self.chapter]
        # TRANSLATORS: where the book teaches a mistake: the chapter's number and title, a section's heading
        return _("Chapter {number}, {title}, section '{heading}'").format(
            number=number, title=_(title), heading=_(self.heading))

    @property
    def url(self) -> str:
        """The section in the published book."""
        return f"{about.BOOK_URL}chapters/{self.chapter}.html#{anchor(self.heading)}"

    def describe(self) -> str:
        """The paragraph a student reads when their code matches this mistake.

        In a notebook, the explanation is printed in full by the first test cell that names this
        mistake (and again whenever that cell runs again); a later cell names the mistake and its
        section, so one slip does not fill every failing cell with the same paragraph.
        """
        cell = _current_cell()
        # outside a notebook nothing is remembered: a script's explanation must not shorten a notebook's
        first = _EXPLAINED.setdefault(self.id, cell) if cell is not None else None
        if cell is not None and first != cell:
            return _("This matches a known mistake: {title} [{id}], explained in the first test that found it.\n"
                     "  See: {section}.").format(title=_(self.title), id=self.id, section=self.section)
        return _("This matches a known mistake: {title} [{id}].\n  {explanation}\n  See: {section}.").format(
            title=_(self.title), id=self.id, explanation=_(self.explanation), section=self.section)


CATALOGUE: dict[str, Mistake] = {}
"""Every known mistake by id."""


def mistake(id: str, title: str, explanation: str, chapter: str, heading: str) -> Mistake:
    """Create a :class:`Mistake` and add it to :data:`CATALOGUE` (ids are unique)."""
    if id in CATALOGUE:
        raise ValueError(f"mistake id {id!r} is already in the catalogue")
    if chapter not in CHAPTERS:
        raise ValueError(f"mistake {id!r}: no chapter {chapter!r} in the book (CHAPTERS)")
    entry = Mistake(id, title, " ".join(explanation.split()), chapter, heading)
    CATALOGUE[id] = entry
    return entry


def reproduces(entry: Mistake, function_name: str, *, also: tuple[Mistake, ...] = ()
               ) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Register the decorated function as one way ``function_name`` goes wrong with ``entry``.

    ``also``: other mistakes the same code makes at the same time (a log of a probability computed
    without the max shift makes two). Such a reproduction is named only when no reproduction of one
    of its mistakes alone explains the student's result as well
    (:func:`softgrad.testing.diagnosis.name_mistakes`).
    """

    def register(implementation: Callable[..., object]) -> Callable[..., object]:
        if also:
            implementation.__softgrad_also__ = tuple(other.id for other in also)
        entry.implementations.setdefault(function_name, []).append(implementation)
        return implementation

    return register


def suspects(function_name: str) -> dict[Mistake, list[Callable[..., object]]]:
    """The mistakes known for a graded function, each with its wrong implementations."""
    return {
        entry: entry.implementations[function_name]
        for entry in CATALOGUE.values()
        if function_name in entry.implementations
    }
