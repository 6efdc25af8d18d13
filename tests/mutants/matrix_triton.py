"""The bug-class matrix's rows for ps7_triton (see tests/mutants/matrix.py): written with its helpers."""

from __future__ import annotations
