"""The adversarial class: broken, hostile and gaming submissions of ps1, each with its expected outcome.

Each case starts from the model solution of ``ps1_softmax`` and breaks it one way. The suite
(``tests/grader/test_adversarial.py``) grades all of them in ONE real ``nbgrader autograde`` run,
together with honest students, and checks every outcome. The instructor guide's tables
(section 9, "Broken, hostile and gaming submissions") are this list.

ps1's automatic points: softmax 7 (4 test cells), logsumexp 4 (3 cells), log_softmax 4 (3 cells).
The cells run in that order, so a submission that breaks log_softmax keeps 11 points.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ASSIGNMENT = "ps1_softmax"
NOTEBOOK = "softmax.ipynb"
FULL = 15.0
SOFTMAX_POINTS, LOGSUMEXP_POINTS, LOG_SOFTMAX_POINTS = 7.0, 4.0, 4.0

# The limits the suite grades with (the course's defaults are 60 s a cell, 900 s a notebook,
# 4096 MiB): small, so that a loop costs seconds and a memory bomb hits the limit quickly.
CELL_TIMEOUT = 6
NOTEBOOK_TIMEOUT = 60
MEMORY_LIMIT_MB = 1536
NBGRADER_ARGS = (
    f"--SafeExecute.timeout={CELL_TIMEOUT}", f"--SafeExecute.notebook_timeout={NOTEBOOK_TIMEOUT}",
    f"--SafeExecute.memory_limit_mb={MEMORY_LIMIT_MB}", f"--VerifyOutsideKernel.call_timeout={CELL_TIMEOUT}",
    f"--VerifyOutsideKernel.memory_limit_mb={MEMORY_LIMIT_MB}", "--SafeExecute.interrupt_grace=3",
)

# Wrong on every input (uniform probabilities), so an honest student with it loses all 7 softmax
# points: an attempt to game the tests with it must not get any of them back.
WRONG_SOFTMAX = "def softmax(z, axis=-1):\n    return np.full(np.shape(z), 1.0 / np.shape(z)[axis])\n"

# The course's check and the NumPy functions the visible asserts use, replaced by yes-men.
PATCHED_CHECKS = ("import softgrad.testing\n"
                  "softgrad.testing.check_against_reference = lambda *a, **k: None\n"
                  "np.isnan = lambda x: np.zeros(np.shape(x), bool)\n"
                  "np.allclose = lambda *a, **k: True\n")


@dataclass
class Case:
    """One submission: how it is made, the score it must get, and what the instructor must see."""

    name: str
    kind: str  # "robust" or "honest"
    what: str  # the instructor guide's description
    outcome: str  # the instructor guide's description of the outcome
    build: Callable[[nbformat.NotebookNode, Path], None]
    score: float
    says: str = ""  # must appear in a failing cell's output or in the student's problems
    flags: set[str] = field(default_factory=set)  # integrity rules that must be reported


def cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return c
    raise KeyError(grade_id)


def write(nb: nbformat.NotebookNode, folder: Path, name: str = NOTEBOOK) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(nb, indent=1))  # as a browser saves it, ids unchecked


def edit(grade_id: str, change: Callable[[str], str]) -> Callable[[nbformat.NotebookNode, Path], None]:
    def build(nb, folder):
        c = cell(nb, grade_id)
        c.source = change(c.source)
        write(nb, folder)
    return build


def prepend(grade_id: str, code: str):
    return edit(grade_id, lambda source: code + source)


def replace_answer(grade_id: str, code: str):
    return edit(grade_id, lambda source: code)


def _corrupted(nb, folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / NOTEBOOK).write_text(json.dumps(nb, indent=1)[:2000])  # cut off mid-file


def _missing(nb, folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("I could not finish in time")


def _renamed(nb, folder):
    write(nb, folder, "softmax (1).ipynb")


def _delete_test_cell(nb, folder):
    nb.cells.remove(cell(nb, "test_softmax_values"))
    write(nb, folder)


def _test_cell_to_markdown(nb, folder):
    index = nb.cells.index(cell(nb, "test_softmax_values"))
    old = nb.cells[index]
    nb.cells[index] = nbformat.v4.new_markdown_cell(old.source, metadata=old.metadata, id=old.id)
    write(nb, folder)


def _duplicate_test_cell(nb, folder):
    original = cell(nb, "test_softmax_values")
    twin = copy.deepcopy(original)
    twin.source = "assert True  # my copy"
    nb.cells.insert(nb.cells.index(original) + 1, twin)  # same cell id and the same nbgrader id
    write(nb, folder)


def _split_answer_cell(nb, folder):
    # JupyterLab's "split cell" copies the metadata into both halves.
    answer = cell(nb, "softmax")
    first, second = copy.deepcopy(answer), copy.deepcopy(answer)
    first.source = "SHIFT = True  # the first half of a split cell"
    second.id = answer.id + "-2"
    index = nb.cells.index(answer)
    nb.cells[index:index + 1] = [first, second]
    write(nb, folder)


def _edit_test_cell(nb, folder):
    c = cell(nb, "test_softmax_values")
    c.source = '"""softmax gives known values."""\nassert True\n'
    cell(nb, "softmax").source = WRONG_SOFTMAX
    write(nb, folder)


CASES = [
    # ---- robust: broken or hostile, the run completes and the score is what the rules say ----
    Case("infinite_loop", "robust", "an infinite loop in a solution cell (log_softmax)",
         "the cell is interrupted after the cell timeout; the cells that need it fail, the others count",
         replace_answer("log_softmax", "while True:\n    pass\n"), FULL - LOG_SOFTMAX_POINTS,
         says="was stopped after"),
    Case("loop_ignoring_interrupt", "robust", "an infinite loop that ignores the interrupt (SIGINT ignored)",
         "the kernel is killed after a grace period; later cells are marked not run and score 0",
         replace_answer("log_softmax", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                        "while True:\n    pass\n"),
         FULL - LOG_SOFTMAX_POINTS, says="did not stop when interrupted", flags={"ends-the-process"}),
    Case("loop_in_every_call", "robust", "a function that loops forever whenever a test calls it",
         "each test cell is stopped at the cell timeout; the notebook's time budget bounds the total",
         replace_answer("logsumexp", "def logsumexp(z, axis=-1):\n    while True:\n        pass\n"),
         FULL - LOGSUMEXP_POINTS, says="was stopped after"),
    Case("sys_exit", "robust", "sys.exit() at the top of a solution cell (softmax)",
         "SystemExit stops that cell only; softmax is undefined, so its tests fail",
         prepend("softmax", "import sys\nsys.exit()\n"), FULL - SOFTMAX_POINTS,
         says="NameError", flags={"ends-the-process"}),
    Case("os_exit", "robust", "os._exit(1) in a solution cell (logsumexp)",
         "the kernel dies; the tests before it count, the cells after it are marked not run",
         prepend("logsumexp", "import os\nos._exit(1)\n"), SOFTMAX_POINTS, says="kernel died",
         flags={"ends-the-process"}),
    Case("segfault", "robust", "a crash in C code (ctypes reads address 0) in a solution cell (log_softmax)",
         "the kernel dies; the cells after it are marked not run",
         prepend("log_softmax", "import ctypes\nctypes.string_at(0)\n"), FULL - LOG_SOFTMAX_POINTS,
         says="kernel died", flags={"ends-the-process"}),
    Case("memory_bomb", "robust", "a memory bomb: arrays appended until memory runs out (in log_softmax's cell)",
         "MemoryError at the kernel's memory limit; only that cell is lost",
         prepend("log_softmax", "hoard = []\nwhile True:\n    hoard.append(np.ones(10**7))\n"),
         FULL - LOG_SOFTMAX_POINTS, says="MemoryError"),
    Case("output_flood", "robust", "an output flood: 10 MB printed by a solution cell",
         "output is cut at the per-cell limit with a note; the score is unaffected",
         prepend("softmax", "for i in range(2000):\n    print('spam ' * 1000, i)\n"), FULL,
         says="the rest was dropped"),
    Case("stderr_warning", "robust", "a RuntimeWarning on stderr from otherwise correct code",
         "the warning is ignored (IgnorePattern); full marks",
         edit("softmax", lambda s: s.replace("    shifted = ", "    np.log(np.zeros(1))  # warns\n    shifted = ")),
         FULL),
    Case("slow_but_correct", "robust", "a slow but correct solution (0.05 s per call)",
         "full marks: slowness within the timeout is not penalised",
         edit("softmax", lambda s: s.replace("    shifted = ", "    __import__('time').sleep(0.05)\n    shifted = ")),
         FULL),
    Case("deleted_test_cell", "robust", "a test cell deleted",
         "nbgrader puts it back (add_missing_cells) and runs it; reported", _delete_test_cell, FULL,
         says="was deleted"),
    Case("test_cell_to_markdown", "robust", "a test cell turned into Markdown",
         "nbgrader turns it back into code and runs it; reported", _test_cell_to_markdown, FULL,
         says="into markdown"),
    Case("duplicated_cell_id", "robust", "a test cell copied (same cell id and nbgrader id), the copy edited",
         "the first copy is graded, the edited copy runs as an ordinary cell; reported "
         "(nbgrader's own step would stop the whole class run)", _duplicate_test_cell, FULL,
         says="repeats the nbgrader id"),
    Case("split_cell", "robust", "a solution cell split in two (both halves keep the metadata)",
         "both halves run, the first is the graded one; reported", _split_answer_cell, FULL,
         says="repeats the nbgrader id"),
    Case("edited_test_cell", "robust", "a test cell edited to `assert True`, with a wrong softmax",
         "nbgrader restores the test from the gradebook; the wrong softmax fails", _edit_test_cell,
         FULL - SOFTMAX_POINTS, says="was edited"),
    Case("corrupted_notebook", "robust", "a notebook that is not valid JSON (cut off)",
         "not graded: every cell scores 0, the reason is in the report; the class run goes on",
         _corrupted, 0.0, says="not a readable notebook"),
    Case("missing_notebook", "robust", "no notebook in the submission (only a text file)",
         "every cell scores 0; reported as missing", _missing, 0.0, says="is missing"),
    Case("renamed_notebook", "robust", "the notebook submitted as 'softmax (1).ipynb'",
         "graded under its expected name (the only candidate with the assignment's cells); reported",
         _renamed, FULL, says="was submitted as"),
    # ---- honest: attempts to game the tests gain nothing ----
    Case("rebinds_allclose", "honest", "np.allclose and np.testing rebound to always pass, with a wrong softmax",
         "the grader puts them back before each test cell; the cells fail; flagged",
         replace_answer("softmax", "np.allclose = lambda *a, **k: True\n"
                                   "np.testing.assert_allclose = lambda *a, **k: None\n" + WRONG_SOFTMAX),
         FULL - SOFTMAX_POINTS, flags={"patches-library"}),
    Case("patches_the_checks", "honest", "the course's checks replaced by no-ops, with a wrong softmax",
         "undone before each test cell (and the re-run uses the real checks): the softmax cells fail; flagged",
         replace_answer("softmax", PATCHED_CHECKS + WRONG_SOFTMAX),
         FULL - SOFTMAX_POINTS, flags={"patches-library"}),
    Case("disables_the_guard", "honest", "the grader's in-kernel guard switched off, then the checks replaced, "
                                         "with a wrong softmax",
         "the patches survive in the kernel, but the re-run outside it uses the real checks: the cells score 0; "
         "flagged", replace_answer("softmax", "import softgrad.grader.guard\n"
                                              "softgrad.grader.guard.restore = lambda: []\n"
                                              + PATCHED_CHECKS + WRONG_SOFTMAX),
         FULL - SOFTMAX_POINTS, says="GradingIntegrityError", flags={"patches-library", "retried-outside-kernel"}),
    Case("lying_eq", "honest", "softmax returns an object whose comparisons always succeed",
         "rejected: results are converted to float64 arrays of exact type before comparing",
         replace_answer("softmax", "class Agreeable:\n    def __eq__(self, other):\n        return True\n"
                                   "    def __array__(self, dtype=None, copy=None):\n"
                                   "        return np.ones(3)\n\n"
                                   "def softmax(z, axis=-1):\n    return Agreeable()\n"),
         FULL - SOFTMAX_POINTS, flags={"lying-comparison"}),
    Case("hides_tracebacks", "honest", "IPython's traceback display switched off, with a wrong softmax",
         "nbgrader still sees the error reply; the re-run fails the cells too; flagged",
         replace_answer("softmax", "get_ipython().showtraceback = lambda *a, **k: None\n"
                                   "get_ipython()._showtraceback = lambda *a, **k: None\n" + WRONG_SOFTMAX),
         FULL - SOFTMAX_POINTS, flags={"tampers-with-ipython"}),
    Case("fakes_a_partial_score", "honest", "a wrong softmax that displays the number 2 in every test cell",
         "a failing cell scores 0 even when a number was displayed before the error",
         replace_answer("softmax", "def softmax(z, axis=-1):\n    get_ipython().displayhook(2)\n"
                                   "    return np.full(np.shape(z), 1.0 / np.shape(z)[axis])\n"),
         FULL - SOFTMAX_POINTS, flags={"tampers-with-ipython"}),
    Case("reads_test_frames", "honest", "softmax reads the tests' reference from the caller's frames",
         "the re-run's caller has no such frame: the cells fail; flagged",
         replace_answer("softmax", "import sys\n\ndef softmax(z, axis=-1):\n    frame = sys._getframe(1)\n"
                                   "    while frame is not None and 'reference' not in frame.f_globals:\n"
                                   "        frame = frame.f_back\n"
                                   "    return frame.f_globals['reference'].softmax(z, axis=axis)\n"),
         FULL - SOFTMAX_POINTS, flags={"reads-test-internals", "retried-outside-kernel"}),
    Case("calls_reference", "honest", "softmax calls the course's reference implementation",
         "in the re-run the reference is a tripwire: the softmax cells fail; flagged",
         replace_answer("softmax", "from softgrad.reference import softmax as course_softmax\n\n"
                                   "def softmax(z, axis=-1):\n    return course_softmax(z, axis=axis)\n"),
         FULL - SOFTMAX_POINTS, says="answer key", flags={"uses-reference-code", "retried-outside-kernel"}),
]

HONEST_STUDENTS = ("honest_a", "honest_b")  # the model solution, graded in the same run
