"""softgrad: the library of the course *Softmax, from first principles to GPU code*.

Modules
-------
:mod:`softgrad.gradcheck`
    Numerical gradient checking in float64: central differences, directional derivatives,
    relative error, and :func:`~softgrad.gradcheck.check_gradient`.
:mod:`softgrad.testing`
    The checks that assignment test cells call: safe calls of student code, result
    validation, comparison with a trusted reference, and named diagnoses.
:mod:`softgrad.torch_testing`
    The same for PyTorch code (problem set 5): a hand-written autograd Function, devices.
:mod:`softgrad.torchtools`
    One device value (``pick_device``) and synchronised timing on any device.
:mod:`softgrad.mistakes`
    The catalogue of known mistakes, with implementations that reproduce them.
:mod:`softgrad.reference`
    Trusted float64 implementations that the tests compare against.
:mod:`softgrad.autograde`
    Running the real nbgrader pipeline on a class of submissions: the test suite's helpers,
    the checks of submitted files, the grading report, and ``softgrad grade``.
:mod:`softgrad.grading`
    The nbgrader preprocessors that make grading robust and honest (``nbgrader_config.py``).
:mod:`softgrad.replay`, :mod:`softgrad.sandbox`
    Re-running test cells outside the student's kernel, with the student's code in a
    separate process that only plain data crosses.
:mod:`softgrad.check`
    ``softgrad check NOTEBOOK``: every test, hidden ones too, against a reader's own notebook.
:mod:`softgrad.integrity`
    Reading student code for what an instructor should look at (the integrity report).
:mod:`softgrad.scale`
    Softmax at scale (chapter 6): fused and threaded NumPy kernels, online log-sum-exp,
    chunked large-vocabulary cross-entropy.
:mod:`softgrad.bench`
    ``softgrad bench``: timings against the machine's own limits (copy bandwidth, one exp pass).
:mod:`softgrad.book`
    Helpers that keep the book's chapters runnable outside a book build.
"""

from softgrad.gradcheck import (
    GRADIENT_RTOL,
    check_directional_derivatives,
    check_gradient,
    default_step,
    directional_derivative,
    numerical_gradient,
    relative_error,
)
from softgrad.testing import call_student, check_against_reference

__version__ = "0.1.0"

__all__ = [
    "GRADIENT_RTOL",
    "__version__",
    "call_student",
    "check_against_reference",
    "check_directional_derivatives",
    "check_gradient",
    "default_step",
    "directional_derivative",
    "numerical_gradient",
    "relative_error",
]
