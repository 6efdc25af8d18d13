"""The catalogue of known mistakes, and implementations that reproduce them.

Every entry is a mistake that real students (and real code on the web) make. Each one is
taught in the chapter named in its ``section``, caught by a hidden test of an assignment,
and named in the feedback: when a student's result is wrong, the checks in
:mod:`softgrad.testing` run the wrong implementations registered here on the same input,
and if one of them reproduces the student's output, the message says which mistake it is
and how to fix it.

Each wrong implementation has the signature of the graded function it imitates, so
``suspects("softmax")`` gives, for each mistake, callables ``f(z, axis=-1)``.

One module per chapter of the book, each next to the mutants of its assignment in
``tests/mutants/``: :mod:`~softgrad.mistakes.softmax` (chapter 1, ps1),
:mod:`~softgrad.mistakes.jacobian` (chapter 3, ps2), :mod:`~softgrad.mistakes.cross_entropy`
(chapter 4, ps3), :mod:`~softgrad.mistakes.training` (chapter 5, ps4),
:mod:`~softgrad.mistakes.pytorch` (chapter 7, ps5), :mod:`~softgrad.mistakes.at_scale`
(chapter 8, ps6). The machinery is in :mod:`~softgrad.mistakes.catalogue`.
"""

# isort: skip_file
# The order of the imports below is the catalogue's order, which is the book's.
from softgrad.mistakes.catalogue import CATALOGUE, Mistake, mistake, reproduces, suspects
from softgrad.mistakes import softmax, jacobian, cross_entropy, training, pytorch, at_scale
from softgrad.mistakes.softmax import *  # noqa: F403
from softgrad.mistakes.jacobian import *  # noqa: F403
from softgrad.mistakes.cross_entropy import *  # noqa: F403
from softgrad.mistakes.training import *  # noqa: F403
from softgrad.mistakes.pytorch import *  # noqa: F403
from softgrad.mistakes.at_scale import *  # noqa: F403

__all__ = ["CATALOGUE", "Mistake", "mistake", "reproduces", "suspects",
           *softmax.__all__, *jacobian.__all__, *cross_entropy.__all__, *training.__all__, *pytorch.__all__,
           *at_scale.__all__]
from softgrad.mistakes import kernels  # noqa: E402
from softgrad.mistakes.kernels import *  # noqa: E402, F403

__all__ += kernels.__all__
