"""nbgrader configuration for the course. All paths are relative to the course root (this folder).

Instructors run nbgrader from this folder: `nbgrader generate_assignment ps1_softmax --force`,
`nbgrader autograde ps1_softmax`, `nbgrader generate_feedback ps1_softmax`.
"""

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

# The source notebooks (with solutions and hidden tests) and the release students receive.
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# submitted/, autograded/, feedback/ and gradebook.db keep nbgrader's defaults (all git-ignored).

# Releasing: the course's address (softgrad.about, its one setting) is filled into the released
# notebooks' install cells first, then nbgrader's own steps run (their checksums see the filled text).
from nbgrader.converters import GenerateAssignment  # noqa: E402

c.GenerateAssignment.preprocessors = ["softgrad.grader.preprocessors.FillCourseAddress",
                                      *GenerateAssignment.class_traits()["preprocessors"].default()]

# ---- Robust and honest grading (softgrad.grader.preprocessors; the instructor guide's section 9 lists the cases) ----
# Sanitizing: note what a student did to the test cells, keep the first of duplicated cells
# graded (nbgrader's own DeduplicateIds stops the class run on one), restore deleted test cells.
# QuickCheckCellMetadata is nbgrader's CheckCellMetadata with its schema checked once, not per cell.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "softgrad.grader.preprocessors.InspectSubmission",
    "softgrad.grader.preprocessors.SafeDeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "softgrad.grader.preprocessors.QuickCheckCellMetadata",
]
c.OverwriteCells.add_missing_cells = True
# Executing: nbgrader's steps, with SafeExecute instead of Execute, and the re-run of the test
# cells outside the student's kernel before the scores are saved.
c.Autograde.autograde_preprocessors = [
    "softgrad.grader.preprocessors.SafeExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "softgrad.grader.preprocessors.VerifyOutsideKernel",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "softgrad.grader.preprocessors.QuickCheckCellMetadata",
]
# Bound each cell, so an infinite loop costs one cell, not the whole class run; a kernel that
# ignores the interrupt is killed after 5 s, and a notebook gets 15 minutes in all.
c.SafeExecute.timeout = 60
c.SafeExecute.interrupt_on_timeout = True
c.SafeExecute.interrupt_grace = 5
c.SafeExecute.notebook_timeout = 900
# A kernel that exits before its first answer is started again on fresh ports (twice at most):
# Jupyter frees a kernel's ports before the kernel binds them, and with several grading
# workers another process sometimes takes one in between ("Address already in use").
c.SafeExecute.kernel_start_attempts = 3
# A memory bomb gets MemoryError (address space limit), or its kernel is killed (resident
# memory watched from outside); a flood of prints is cut at 200,000 characters per cell.
c.SafeExecute.memory_limit_mb = 4096
c.SafeExecute.output_limit_bytes = 200_000
# The re-run outside the kernel uses the same limits. Every assignment is re-run, problem set 5
# too: tensors cross the process boundary as arrays, and the student's autograd.Function runs in
# the sandbox behind a stand-in (softgrad.grader.remote). An assignment that cannot be re-run
# would be listed, with the reason, in c.VerifyOutsideKernel.not_rerun = {"id": "why"}.
c.VerifyOutsideKernel.call_timeout = 60
c.VerifyOutsideKernel.memory_limit_mb = 4096
# Tracebacks in graded notebooks show only the exception and its message. The course's
# checks put everything a student needs into the message (the call, the input, what is
# wrong, the known mistake it matches), and IPython's default tracebacks would print the
# lines around the failure, which include hidden test code, into the feedback.
# The kernel's own log is kept to errors: its notices (a local kernel "running over TCP
# without encryption") would otherwise fill the instructor's terminal, once per student.
c.SafeExecute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--InteractiveShell.xmode=Minimal",
                                 "--IPKernelApp.log_level=ERROR"]

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
    # every known mistake named by a failed test: a link to the section of the book that teaches it
    "softgrad.grader.preprocessors.LinkMistakeSections",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
