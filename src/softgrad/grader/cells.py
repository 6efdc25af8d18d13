"""What kind of cell a notebook cell is, to the grader: a test, code the course provided, or the student's."""

from __future__ import annotations

__all__ = ["cell_kind"]


def cell_kind(cell: dict) -> str | None:
    """``"test"``, ``"provided"`` (locked code the course wrote) or ``"student"``; None for non-code cells."""
    if cell.get("cell_type") != "code":
        return None
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("locked") and not meta.get("solution"):
        return "provided"
    return "student"
