"""Sanitizing, before nbgrader restores the test cells: what the student did to the notebook's structure."""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from softgrad.grader.integrity import Finding
from softgrad.grader.preprocessors.common import HIDDEN_TESTS, record

__all__ = ["InspectSubmission"]


class InspectSubmission(NbGraderPreprocessor):
    """Record changes to the notebook's graded structure, before nbgrader restores it."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        nb.metadata["softgrad"] = {"findings": []}
        seen: dict[str, int] = {}
        with Gradebook(info["db_url"]) as gradebook:
            try:
                source = gradebook.find_notebook(info["notebook"], info["assignment"])
            except MissingEntry:
                return nb, resources
            source_cells = {c.name: c for c in source.source_cells}
            for index, cell in enumerate(nb.cells):
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if not grade_id:
                    continue
                where = f"cell {index + 1}"
                if grade_id in seen:
                    record(nb, Finding("test-cell-changed", grade_id, 0,
                                        f"{where} repeats the nbgrader id of cell {seen[grade_id] + 1} (a copied or "
                                        f"split cell): only the first is graded"))
                    continue
                seen[grade_id] = index
                original = source_cells.get(grade_id)
                if original is None:
                    continue
                if cell.cell_type != original.cell_type:
                    record(nb, Finding("test-cell-changed", grade_id, 0,
                                        f"{where} was turned from {original.cell_type} into {cell.cell_type}; "
                                        f"nbgrader turned it back"))
                elif original.locked and _normalise(cell.source) != _normalise(HIDDEN_TESTS.sub("", original.source)):
                    record(nb, Finding("test-cell-changed", grade_id, 0,
                                        f"{where}: the locked cell was edited; nbgrader restored the original"))
            for name, original in source_cells.items():
                if name not in seen and (original.locked or name in {c.name for c in source.grade_cells}):
                    record(nb, Finding("test-cell-changed", name, 0,
                                        "this cell was deleted; nbgrader put it back"))
            for cell in source.solution_cells:
                if cell.name not in seen:
                    record(nb, Finding("submission-problem", cell.name, 0,
                                        "the answer cell was deleted (answers in other cells still count)"))
        return nb, resources


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())
