"""The load test: a simulated class graded by softgrad grade on 1 and on 2 workers, every grade checked
(the one-worker run with every process started as a new Python, the two-worker run with them forked from
templates).

The class size is a knob, ``SOFTGRAD_LOAD_STUDENTS`` (default 12: every kind of the mix at least once,
and CI within its time; the closing note's numbers come from
``PYTHONPATH=tests python -m support.loadtest --students 500 ...``).
The speed-up is reported at the end of the run (never asserted: CI's machine is shared with
the other tests).
"""

from __future__ import annotations

import os

import pytest
from support.loadtest import NO_TEMPLATE, grade_copy, make_class, table

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("classgrade")]

STUDENTS = int(os.environ.get("SOFTGRAD_LOAD_STUDENTS", "12"))


def test_a_simulated_class_is_graded_right_on_one_and_two_workers(tmp_path, record_property):
    template, expected = make_class(tmp_path / "template", STUDENTS)
    kinds = {score for score in expected.values()}
    assert len(expected) == STUDENTS and {0.0, 8.0, 15.0} <= kinds, "the class lacks right, wrong or blank work"
    # raises on any wrong grade; one run starts its processes as new Pythons, the other forks them from
    # templates (softgrad.grader.template): the grades must not depend on how
    timings = [grade_copy(template, tmp_path, label, expected, workers, templates=templates)
               for label, workers, templates in (("softgrad 1 worker" + NO_TEMPLATE, 1, False),
                                                 ("softgrad 2 workers", 2, True))]
    record_property("load_table", table(timings))
