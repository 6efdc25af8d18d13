"""Sanitizing, before nbgrader restores the test cells: what the student did to the notebook's structure."""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from softgrad import i18n
from softgrad.grader.integrity import Finding
from softgrad.grader.preprocessors.common import HIDDEN_TESTS, record
from softgrad.grader.translate import code_without_comments

__all__ = ["InspectSubmission"]


class InspectSubmission(NbGraderPreprocessor):
    """Record changes to the notebook's graded structure, before nbgrader restores it."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        language = i18n.notebook_language(nb.metadata)
        # the notebook's language stays: the kernel answers in it (SafeExecute)
        nb.metadata["softgrad"] = {"findings": [], **({"language": language} if language else {})}
        translated = language not in (None, "en")
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
                elif original.locked and _edited(cell, HIDDEN_TESTS.sub("", original.source), translated):
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


def _edited(cell: NotebookNode, original: str, translated: bool) -> bool:
    """Whether a locked cell differs from its source. A translated copy (exercises/zh_CN) differs by
    design in its text and comments: there only the code counts."""
    if not translated:
        return _normalise(cell.source) != _normalise(original)
    return cell.cell_type == "code" and code_without_comments(cell.source) != code_without_comments(original)


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())
