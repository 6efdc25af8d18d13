"""The mutation suite's catalogue: wrong and right implementations of every graded function.

Each assignment has a module here (named after the assignment) that defines ``MUTANTS``, a
list of :class:`Mutant`. A mutant replaces some solution cells of the student notebook
(by grade_id) and keeps the instructor's solution in the others; the suite grades every
mutant with the real ``nbgrader autograde`` and checks the outcome:

* a **wrong** mutant must lose points, and when ``diagnosis`` is given, that text (a
  mistake id from ``softgrad.mistakes`` in brackets, or a phrase of a generic message)
  must appear in the output of a failed test cell: the student is told what went wrong;
* a **correct** mutant (another valid way to write the function) must keep full marks.

To add an assignment's catalogue, create ``tests/mutants/<assignment>.py`` with ``NOTEBOOK``
(the notebook's file name) and ``MUTANTS``; the suite picks it up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent


@dataclass(frozen=True)
class Mutant:
    """One simulated submission: ``cells`` maps solution grade_ids to replacement source."""

    name: str
    cells: dict[str, str]
    wrong: bool
    diagnosis: str | None = None

    def answers(self) -> dict[str, str]:
        return {grade_id: dedent(source).strip("\n") for grade_id, source in self.cells.items()}


def wrong(name: str, diagnosis: str | None, **cells: str) -> Mutant:
    """A mistake: must lose points and (if given) show ``diagnosis`` in the feedback."""
    return Mutant(name, cells, wrong=True, diagnosis=diagnosis)


def correct(name: str, **cells: str) -> Mutant:
    """A different but correct implementation: must keep full marks."""
    return Mutant(name, cells, wrong=False)


def catalogues() -> dict[str, object]:
    """Every assignment's catalogue module, by assignment id."""
    here = Path(__file__).parent
    return {
        path.stem: importlib.import_module(f"mutants.{path.stem}")
        for path in sorted(here.glob("ps*.py"))
    }
