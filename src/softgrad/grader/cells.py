"""What kind of cell a notebook cell is, to the grader: a test, code the course provided, or the student's."""

from __future__ import annotations

__all__ = ["ALL_NAMES", "assigned_names", "cell_kind", "read_names"]


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


ALL_NAMES = "*"
"""What :func:`assigned_names` holds for a cell with ``from module import *``: it may bind any name."""


def _tree(source: str):
    """The cell's code as a syntax tree (IPython's magics turned into Python first), or None."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:  # such a cell runs nothing, and binds nothing
        return None


def assigned_names(source: str) -> set[str]:
    """The names a cell's code may bind, at any depth: assignments and loop, ``with`` and ``except`` targets,
    imports, definitions, and the captures of ``match``; :data:`ALL_NAMES` among them for a star import."""
    import ast

    tree = _tree(source)
    names: set[str] = set()
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def read_names(source: str) -> set[str]:
    """The names a cell's code reads (loads), at any depth."""
    import ast

    tree = _tree(source)
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)} \
        if tree is not None else set()
