"""Helpers for the book's chapters that keep them runnable outside a Jupyter Book build.

Chapters insert numbers computed by their code into the prose with MyST-NB's ``glue``. On
Colab or a JupyterHub, where MyST-NB is usually not installed, :func:`glue` does nothing
and the chapter still runs (the numbers are printed by the code cells anyway).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["chapter_notebook", "glue"]


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
