"""Sanitizing: a cell copied with its nbgrader metadata keeps only the first copy graded."""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

__all__ = ["SafeDeduplicateIds"]


class SafeDeduplicateIds(NbGraderPreprocessor):
    """Keep the first cell of each nbgrader id graded; later copies become ordinary cells."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        seen = set()
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id is None:
                continue
            if grade_id in seen:
                del cell.metadata["nbgrader"]  # an ordinary cell: runs, but is not graded or restored
            else:
                seen.add(grade_id)
        return nb, resources
