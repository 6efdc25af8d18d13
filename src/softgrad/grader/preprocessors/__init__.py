"""nbgrader preprocessors that make autograding robust and honest, one per module.

``nbgrader_config.py`` puts these into nbgrader's own pipeline, so that the standard commands
(``nbgrader generate_assignment``, ``nbgrader autograde``, ``nbgrader generate_feedback``) use them:

:class:`FillCourseAddress` (release)
    Fills the course's address (:mod:`softgrad.about`) into the released notebooks.

:class:`InspectSubmission` (sanitizing, before nbgrader restores the test cells)
    Notes what the student did to the notebook's structure: test cells deleted, edited,
    turned into Markdown, duplicated or split. nbgrader then restores them
    (``OverwriteCells``, with ``add_missing_cells``); the note goes to the integrity report.
:class:`SafeDeduplicateIds` (replaces nbgrader's ``DeduplicateIds``)
    A cell copied with its nbgrader metadata keeps the first copy graded. nbgrader's own
    version leaves the duplicate with empty metadata, which its next step reads as an
    "old metadata format" and then stops grading the whole class.
:class:`SafeExecute` (replaces nbgrader's ``Execute``)
    Bounds each notebook: a memory limit for the kernel, a cap on the output a cell may
    print, a time budget for the whole notebook, a kernel that ignores an interrupt is
    killed, and a kernel that dies (``os._exit``, a crash, the memory limit) costs the
    cells that did not run, with the reason in each, instead of failing the notebook.
:class:`QuickCheckCellMetadata` (replaces nbgrader's ``CheckCellMetadata``)
    The same check of every graded cell's metadata against nbgrader's schema, with the same
    errors; the schema itself is checked once per process instead of once per cell.
:class:`LinkMistakeSections` (feedback)
    Every known mistake a failed test names gets a link to the section of the book that teaches it.
:class:`VerifyOutsideKernel` (after execution, before nbgrader saves the scores)
    Re-runs the test cells outside the student's kernel (:mod:`softgrad.grader.replay`); a test
    that passed in the notebook but fails there scores 0. Reads the student's cells for the
    integrity report (:mod:`softgrad.grader.integrity`).

Every finding is stored in the autograded notebook's metadata (``metadata.softgrad``), from
where :func:`softgrad.grader.report.grading_report` collects the class's report.
"""

from softgrad.grader.course import share_gradebook_engines
from softgrad.grader.preprocessors.address import FillCourseAddress
from softgrad.grader.preprocessors.dedupe import SafeDeduplicateIds
from softgrad.grader.preprocessors.execute import SafeExecute
from softgrad.grader.preprocessors.inspect import InspectSubmission
from softgrad.grader.preprocessors.links import LinkMistakeSections
from softgrad.grader.preprocessors.metadata import QuickCheckCellMetadata
from softgrad.grader.preprocessors.verify import VerifyOutsideKernel

# nbgrader opens its gradebook several times per submission: with one engine per gradebook, the
# statements it runs are compiled once per process, not once per opening (0.2 s of CPU per submission).
share_gradebook_engines()

__all__ = ["FillCourseAddress", "InspectSubmission", "LinkMistakeSections", "QuickCheckCellMetadata",
           "SafeDeduplicateIds", "SafeExecute", "VerifyOutsideKernel"]
