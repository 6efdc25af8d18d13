"""Checks for the test cells of the assignments: call a student's function, judge its result.

The helpers here are what the visible and hidden tests call. They

* call the student's function on copies of the inputs, capture NumPy's warnings (so that
  nothing reaches stderr, where nbgrader would score the cell 0 even when every check
  passes; a warning is reported as evidence only if the result is wrong), and check that
  the inputs were not modified;
* check the result's type, shape and dtype before trusting its values, and convert it to a
  plain float64 array (a student's object cannot lie about its comparisons);
* compare with a trusted float64 reference under a tolerance derived from the dtype;
* when the result is wrong, run the known wrong implementations of
  :mod:`softgrad.mistakes` on the same input and name the mistake that reproduces it.

Every failure is an :class:`AssertionError` whose message says what was called, on what
input, what was wrong, and what to do about it.

The checks are grouped by what they check: :mod:`~softgrad.testing.core` (calling a student's
function, judging a result against a reference), :mod:`~softgrad.testing.diagnosis` (naming
the known mistake a wrong result matches), :mod:`~softgrad.testing.gradients` (gradients and
Jacobians), :mod:`~softgrad.testing.training` (predictions and training loops) and
:mod:`~softgrad.testing.streaming` (memory, one-pass algorithms). This package re-exports all
of them, so that a test cell writes ``from softgrad.testing import check_against_reference``.
The PyTorch checks of problem set 5 are in :mod:`softgrad.testing.pytorch` (they import
PyTorch; ``softgrad.torch_testing`` is the name the notebooks use).
"""

from __future__ import annotations

from softgrad.testing.core import (
    StudentCall,
    as_checked_array,
    call_student,
    check_against_reference,
    check_raises,
    describe_array,
    expected_dtype,
    forward_tolerance,
    result_problem,
)
from softgrad.testing.gradients import check_gradient_function, check_jacobian_function, check_loss_and_gradients
from softgrad.testing.streaming import check_online_logsumexp, check_peak_memory
from softgrad.testing.training import (
    check_deterministic,
    check_first_sgd_step,
    check_labels_against_reference,
    check_sgd_loop,
    check_training,
    check_training_at_large_scores,
    check_vectorised,
    count_lines_run,
)

__all__ = [
    "StudentCall",
    "as_checked_array",
    "call_student",
    "check_against_reference",
    "check_deterministic",
    "check_first_sgd_step",
    "check_gradient_function",
    "check_jacobian_function",
    "check_labels_against_reference",
    "check_loss_and_gradients",
    "check_online_logsumexp",
    "check_peak_memory",
    "check_raises",
    "check_sgd_loop",
    "check_training",
    "check_training_at_large_scores",
    "check_vectorised",
    "count_lines_run",
    "describe_array",
    "expected_dtype",
    "forward_tolerance",
    "result_problem",
]
