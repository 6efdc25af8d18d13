"""The grading infrastructure that instructors run: robust nbgrader grading, the re-run outside the
student's kernel, and a whole class graded in parallel.

Its parts, in the order a submission meets them:

* :mod:`~softgrad.grader.preprocessors`: the nbgrader preprocessors that ``nbgrader_config.py``
  wires into nbgrader's own pipeline (one per module), so that ``nbgrader autograde`` grades
  safely: limits on memory, output and time, test cells restored, the lower of two grades kept;
* :mod:`~softgrad.grader.guard`: the libraries put back before every test cell, in the kernel;
* :mod:`~softgrad.grader.replay`, :mod:`~softgrad.grader.sandbox`,
  :mod:`~softgrad.grader.tripwires`: the test cells re-run outside the student's kernel, the
  student's functions in a process of their own that only plain data crosses, the course's
  answer key out of reach;
* :mod:`~softgrad.grader.template`: the kernel, the re-run and the sandbox of each submission
  forked from a process that has imported what they need, instead of started from nothing;
* :mod:`~softgrad.grader.integrity`: what in a submission an instructor should look at;
* :mod:`~softgrad.grader.classgrade`: ``softgrad grade``, one pipeline of
  :mod:`~softgrad.grader.intake`, :mod:`~softgrad.grader.grade`, :mod:`~softgrad.grader.record`,
  :mod:`~softgrad.grader.report` and :mod:`~softgrad.grader.feedback`
  (:mod:`~softgrad.grader.course` reads the course's configuration);
* :mod:`~softgrad.grader.check`: ``softgrad check``, the same tests for a reader working alone.

Nothing here is imported by the checks or the teaching library (import-linter contracts in
``pyproject.toml``).
"""
