"""Release: the course's address filled into the notebooks students receive.

A source notebook in ``solutions/`` says ``{{ softgrad.about.INSTALL }}`` where its install cell
needs the course's pip requirement; the released notebook must hold the address itself, since a
student's copy travels without the course. This preprocessor (first in
``c.GenerateAssignment.preprocessors``, so that nbgrader's checksums and the gradebook's copy of
each cell see the filled text) replaces every placeholder with :func:`softgrad.about.fill`.
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from softgrad import about

__all__ = ["FillCourseAddress"]


class FillCourseAddress(NbGraderPreprocessor):
    """Replace every ``{{ softgrad.about.NAME }}`` in a cell with the course's own value."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int) -> tuple[NotebookNode, dict]:
        cell.source = about.fill(cell.source)
        return cell, resources
