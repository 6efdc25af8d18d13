"""Helpers for the book's chapters that keep them runnable outside a Jupyter Book build.

Chapters insert numbers computed by their code into the prose with MyST-NB's ``glue``. On
Colab or a JupyterHub, where MyST-NB is usually not installed, :func:`glue` does nothing
and the chapter still runs (the numbers are printed by the code cells anyway).
"""

from __future__ import annotations

import numpy as np

__all__ = ["glue"]


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
