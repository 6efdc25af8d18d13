"""softgrad: the library of the course *Softmax, from first principles to GPU code*.

It serves three audiences, in three places; dependencies point one way only (the grading
infrastructure uses the checks, the checks use the teaching library), which the test suite
enforces with import-linter contracts (``pyproject.toml``).

The teaching library (what the chapters use; each module says which chapter defines it)
    :mod:`softgrad.reference`
        Trusted float64 implementations of every formula of the book (chapters 1 to 8).
    :mod:`softgrad.gradcheck`
        Numerical gradient checking in float64 (chapter 2): central differences, directional
        derivatives, relative error, :func:`~softgrad.gradcheck.check_gradient`.
    :mod:`softgrad.data`
        The handwritten digits of chapter 5, loaded without a download.
    :mod:`softgrad.torchtools`
        One device value (``pick_device``) and synchronised timing on any device (chapter 7).
    :mod:`softgrad.scale`
        Softmax at scale (chapter 8): fused and threaded NumPy kernels, online log-sum-exp,
        chunked large-vocabulary cross-entropy.
    :mod:`softgrad.kernels`
        The fused softmax cross-entropy and a vectorisable float32 ``exp``, compiled by Numba
        (chapter 8; optional, the ``kernels`` extra).
    :mod:`softgrad.gpu`
        Softmax and cross-entropy as Triton kernels (chapter 9; optional, the ``triton`` extra).
    :mod:`softgrad.bench`, :mod:`softgrad.measure`, :mod:`softgrad.progress`
        ``softgrad bench``: timings against the machine's own limits; peak memory and lines run;
        a progress line for long runs.
    :mod:`softgrad.book`
        Helpers that keep the book's chapters runnable outside a book build.

The checks that test cells call
    :mod:`softgrad.testing`
        Calling a student's function safely, judging its result against a reference, checking
        gradients, training loops and streams, and naming the known mistake a wrong result
        matches (subpackage; PyTorch's checks in :mod:`softgrad.testing.pytorch`, imported by
        the notebooks as ``softgrad.torch_testing``).
    :mod:`softgrad.mistakes`
        The catalogue of known mistakes, one module per chapter, with implementations that
        reproduce each one.

The grading infrastructure that instructors run (:mod:`softgrad.grader`)
    :mod:`softgrad.grader.preprocessors`
        The nbgrader preprocessors that make grading robust and honest (``nbgrader_config.py``).
    :mod:`softgrad.grader.guard`, :mod:`softgrad.grader.replay`, :mod:`softgrad.grader.sandbox`
        Undoing what a student's code patched, and re-running the test cells outside the
        student's kernel, with the student's code in a separate process that only plain data
        crosses.
    :mod:`softgrad.grader.integrity`
        Reading student code for what an instructor should look at.
    :mod:`softgrad.grader.classgrade`
        ``softgrad grade``: a class graded in parallel, one pipeline of intake, grade, record,
        report and feedback (:mod:`~softgrad.grader.intake`, :mod:`~softgrad.grader.grade`,
        :mod:`~softgrad.grader.record`, :mod:`~softgrad.grader.report`,
        :mod:`~softgrad.grader.feedback`; :mod:`~softgrad.grader.course` reads the course's
        configuration).
    :mod:`softgrad.grader.check`, :mod:`softgrad.grader.start`
        ``softgrad check NOTEBOOK``: every test, hidden ones too, against a reader's own notebook;
        ``softgrad start ASSIGNMENT``: a reader's own copy of an exercise, in ``work/``.
    :mod:`softgrad.about`
        Where the course lives (its repository, branch and book), said once.

:mod:`softgrad.cli` is the ``softgrad`` command, which dispatches to the three.
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


def __getattr__(name: str) -> object:
    """``softgrad.call_student`` and ``softgrad.check_against_reference``, as before: they live in
    :mod:`softgrad.testing`, imported only when asked for (the teaching library never needs it)."""
    if name in ("call_student", "check_against_reference"):
        from softgrad import testing

        return getattr(testing, name)
    raise AttributeError(f"module 'softgrad' has no attribute {name!r}")
