"""``softgrad check NOTEBOOK``: grade your own notebook with every test, hidden ones included.

For readers working through the course on their own. The notebook is matched to its
assignment in the course's ``solutions/`` folder by its nbgrader cell ids; the test cells
(visible and hidden) come from there, so an edited or deleted test cell does not matter;
your answer cells and any cells you added are kept. The result runs in a fresh kernel with
the same limits as the course's grading (:class:`softgrad.grader.preprocessors.SafeExecute`); the check
itself writes nothing: no gradebook, no copy of your notebook.

The report is in the notebook's language (a Chinese copy of an exercise gives a Chinese report, and
Chinese messages from its tests), unless ``SOFTGRAD_LANG`` says another (:mod:`softgrad.i18n`).

Exit status: 0 when every test passes, 1 when one fails, 2 when the notebook cannot be checked.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import TextIO

import nbformat

from softgrad import i18n
from softgrad.grader.report import cell_output_text
from softgrad.i18n import _

__all__ = ["CheckResult", "check_notebook", "find_course", "main", "merge_tests"]


class CheckError(Exception):
    """The notebook cannot be checked (with the reason and what to do)."""


def _installed_from() -> list[Path]:
    """The clone the course library was installed from, when it was (``pip install -e .`` in the clone)."""
    import softgrad

    package = Path(softgrad.__file__).resolve().parent  # <clone>/src/softgrad when installed from a clone
    return [package.parents[1]] if package.parent.name == "src" else []


def find_course(start: Path) -> Path:
    """The course folder (one with ``solutions/``): at or above ``start``, at or above the current folder,
    or the clone the library was installed from."""
    for folder in [start, *start.parents, Path.cwd(), *Path.cwd().parents, *_installed_from()]:
        if (folder / "solutions").is_dir():
            return folder
    raise CheckError(_("no course folder (one with solutions/) at or above the notebook or here, and the course "
                       "library was not installed from a clone: pass --course PATH_TO_YOUR_CLONE"))


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def find_source(course: Path, learner: nbformat.NotebookNode) -> Path:
    """The source notebook in ``solutions/`` that shares the most nbgrader cell ids with the learner's."""
    ids = {_grade_id(c) for c in learner.cells} - {None}
    best, overlap = None, 0
    for path in sorted((course / "solutions").glob("*/*.ipynb")):
        source_ids = {_grade_id(c) for c in nbformat.read(path, as_version=4).cells} - {None}
        if len(ids & source_ids) > overlap:
            best, overlap = path, len(ids & source_ids)
    if best is None:
        raise CheckError(_("this notebook has none of the course's graded cells (nbgrader cell ids): is it one of "
                           "the exercises in exercises/? A copy made with 'Save as' in another tool may lose them"))
    return best


def merge_tests(source: nbformat.NotebookNode, learner: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The source notebook's cells in order, with the learner's answers and the learner's own cells.

    Answer cells (nbgrader ``solution``) come from the learner; a missing one stays as the
    release has it (``raise NotImplementedError``). Every other graded or locked cell (tests,
    with their hidden part, and provided code) comes from the source. A cell the learner added
    follows the graded cell it followed in the learner's notebook.
    """
    answers: dict[str, nbformat.NotebookNode] = {}
    added: dict[str | None, list[nbformat.NotebookNode]] = {}
    last = None
    for cell in learner.cells:
        grade_id = _grade_id(cell)
        if grade_id is None:
            if cell.cell_type == "code":
                added.setdefault(last, []).append(cell)
            continue
        if cell.metadata["nbgrader"].get("solution") and grade_id not in answers:
            answers[grade_id] = cell
        last = grade_id
    merged = copy.deepcopy(source)
    language = i18n.notebook_language(learner.metadata)
    if language is not None:  # the kernel that runs the tests speaks the learner's language (SafeExecute)
        merged.metadata.setdefault("softgrad", {})["language"] = language
    cells = list(added.get(None, []))
    for cell in merged.cells:
        grade_id = _grade_id(cell)
        if grade_id in answers and cell.cell_type == "code":
            cell.source = answers[grade_id].source
        elif cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            cell.source = "raise NotImplementedError()  # this answer cell is missing from your notebook"
        cells.append(cell)
        cells += added.get(grade_id, [])
    merged.cells = cells
    for cell in merged.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return merged


class CheckResult:
    """Each test cell's points and messages, in notebook order (and the notebook's language, for the report)."""

    def __init__(self, notebook: nbformat.NotebookNode):
        from nbgrader.utils import determine_grade, is_grade

        self.language = i18n.notebook_language(notebook.metadata)
        self.tests: list[tuple[str, float, float, str]] = []
        for cell in notebook.cells:
            if cell.cell_type != "code" or not is_grade(cell):
                continue
            score, points = determine_grade(cell)
            self.tests.append((_grade_id(cell), float(score or 0.0), points, cell_output_text(cell)))

    @property
    def score(self) -> float:
        return sum(t[1] for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t[2] for t in self.tests)

    def report(self) -> str:
        with i18n.notebook_language_is(self.language):
            lines = []
            for name, score, points, message in self.tests:
                # TRANSLATORS: the mark of a test in the report of `softgrad check`
                mark = _("PASS") if score == points else _("FAIL")
                lines.append(f"{mark}  {name}  ({score:g}/{points:g})")
                if score < points:
                    lines += ["      " + line for line in message.strip().splitlines()[:40]]
            lines.append("\n" + _("{score:g} of {total:g} points from the automatic tests (written answers are graded "
                                  "by a person).").format(score=self.score, total=self.max_score))
        return "\n".join(lines)


def check_notebook(path: Path, course: Path | None = None, *, timeout: int = 60,
                   progress: TextIO | None = None) -> CheckResult:
    """Run every test of the notebook's assignment against it in a fresh kernel; see the module docstring.

    With ``progress``, say what is happening there: which assignment, then each test as it starts.
    """
    from softgrad.grader.preprocessors import SafeExecute

    class Reporting(SafeExecute):
        def preprocess_cell(self, cell, resources, index):
            grade_id = _grade_id(cell)
            if progress is not None and cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                self.done = getattr(self, "done", 0) + 1
                print(f"  [{self.done}/{tests}] {grade_id}", file=progress, flush=True)
            return super().preprocess_cell(cell, resources, index)

    try:
        learner = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 (every reason a file is not a notebook)
        raise CheckError(_("{path} is not a readable notebook: {error_type}: {error}").format(
            path=path, error_type=type(error).__name__, error=error)) from None
    with i18n.notebook_language_is(i18n.notebook_language(learner.metadata)):
        course = course or find_course(path.resolve().parent)
        source = find_source(course, learner)
        merged = merge_tests(nbformat.read(source, as_version=4), learner)
        tests = sum(1 for c in merged.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade"))
        if progress is not None:
            print("softgrad check: " + _("{notebook} against {assignment} ({tests} tests, hidden ones too), in a fresh "
                                         "kernel; the first one waits for the kernel to start").format(
                notebook=path.name, assignment=source.parent.name, tests=tests), file=progress, flush=True)
    executor = Reporting(timeout=timeout, guard_libraries=False,
                           extra_arguments=["--HistoryManager.hist_file=:memory:", "--InteractiveShell.xmode=Minimal",
                                            "--IPKernelApp.log_level=ERROR"])
    executor.preprocess(merged, {"metadata": {"path": str(path.resolve().parent)}})
    return CheckResult(merged)


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="softgrad check",
        description="Run every test of an exercise (hidden ones too) against your notebook, in a fresh kernel, "
                    "and print what passed and why the rest did not. Nothing is saved or sent anywhere.")
    parser.add_argument("notebook", type=Path, help="your notebook, e.g. exercises/ps2_jacobian/jacobian.ipynb")
    parser.add_argument("--course", type=Path, help="the course's folder (default: found from the notebook)")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines (on standard error)")
    options = parser.parse_args(arguments)
    if not options.notebook.is_file():
        print("softgrad check: " + _("no such notebook: {path}").format(path=options.notebook), file=sys.stderr)
        return 2
    try:
        result = check_notebook(options.notebook, options.course, timeout=options.timeout,
                                progress=None if options.quiet else sys.stderr)
    except CheckError as error:
        print(f"softgrad check: {error}", file=sys.stderr)
        return 2
    print(result.report())
    return 0 if result.score == result.max_score else 1
