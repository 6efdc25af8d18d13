"""nbgrader configuration for the course. All paths are relative to the course root (this folder).

Instructors run nbgrader from this folder: `nbgrader generate_assignment ps1_softmax --force`,
`nbgrader autograde ps1_softmax`, `nbgrader generate_feedback ps1_softmax`.
"""

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

# The source notebooks (with solutions and hidden tests) and the release students receive.
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# submitted/, autograded/, feedback/ and gradebook.db keep nbgrader's defaults (all git-ignored).

# Grading: bound each cell, so an infinite loop costs one cell, not the whole class run.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
# Tracebacks in graded notebooks show only the exception and its message. The course's
# checks put everything a student needs into the message (the call, the input, what is
# wrong, the known mistake it matches), and IPython's default tracebacks would print the
# lines around the failure, which include hidden test code, into the feedback.
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--InteractiveShell.xmode=Minimal"]

# Warnings never cost points; wrong values do. nbgrader scores a test cell 0 when anything
# reaches stderr, so a Python warning printed by a student's (otherwise right) code, such as
# NumPy's "RuntimeWarning: divide by zero encountered in log", would lose the cell. The
# course's checks capture warnings and report them when a result is wrong; this drops the
# ones printed by plain calls. Other stderr output still scores 0.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r":\d+: \w*Warning: "

# Feedback: students see their results and the messages of failed checks, but not the
# code of the hidden tests.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
