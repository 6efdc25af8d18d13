"""What the preprocessors share: where findings are recorded, and how a cell's error output looks."""

from __future__ import annotations

import re
import textwrap

from nbformat.notebooknode import NotebookNode

from softgrad.grader.cells import cell_kind
from softgrad.grader.integrity import Finding

__all__ = ["HIDDEN_TESTS", "cell_kind", "error_output", "findings_of", "label", "record"]

HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)


def findings_of(nb: NotebookNode) -> list[dict]:
    """The integrity findings recorded in a notebook's metadata (a list, stored in place)."""
    return nb.metadata.setdefault("softgrad", {}).setdefault("findings", [])


def record(nb: NotebookNode, finding: Finding) -> None:
    entry = finding.as_dict()
    if entry not in findings_of(nb):
        findings_of(nb).append(entry)


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An error output as a cell would show it; lines wrapped, so feedback pages need no scrolling."""
    lines = textwrap.wrap(f"{ename}: {evalue}", width=100, break_long_words=False, replace_whitespace=False)
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=["\n".join(lines)])


def label(cell: NotebookNode, index: int) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
