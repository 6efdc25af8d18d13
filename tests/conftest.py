"""Shared fixtures: paths, and one real nbgrader grading run per assignment (cached per worker)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import settings
from mutants import Mutant, catalogues, matrix
from support import scaffold

from softgrad.book import SECOND_LANGUAGE, html_folder
from softgrad.grader.report import SubmissionResult, read_results

# In CI, property-based tests draw the same examples every run: a failure there is reproducible,
# never a coin toss. Locally they explore new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
SOLUTION_STUDENT = "solution"
UNTOUCHED_STUDENT = "untouched_release"
CHINESE_STUDENT = "solution_zh_CN"  # the solutions in the Chinese release (exercises/zh_CN)
CHINESE_MISTAKE = "mistake_zh_CN"  # the first named mistake of the mutation suite, in the Chinese release


@dataclass
class GradedClass:
    """One assignment graded for a simulated class: the solution, the untouched release, every mutant."""

    assignment: str
    course: Path
    release: Path
    mutants: dict[str, Mutant]
    results: dict[str, SubmissionResult]
    problems: dict[str, list[dict]]

    def not_graded(self, student: str) -> str | None:
        """Why nbgrader could not grade the student's submission at all, or None when it was graded."""
        reasons = [p["detail"] for p in self.problems.get(student, []) if p["detail"].startswith("not graded")]
        return "; ".join(reasons) or None


def source_notebooks(assignment: str) -> list[Path]:
    return sorted((REPO / "solutions" / assignment).glob("*.ipynb"))


def _grade_class(assignment: str, workdir: Path) -> GradedClass:
    course = scaffold.make_course(workdir, REPO, [assignment])
    release = scaffold.generate_assignment(course, assignment)
    notebooks = {p.name: p for p in source_notebooks(assignment)}
    answers = {name: scaffold.solution_sources(path) for name, path in notebooks.items()}

    def filled(overrides: dict[str, str], notebook: str | None = None) -> dict:
        out = {}
        for name in notebooks:
            cells = dict(answers[name])
            if notebook is None or name == notebook:
                cells.update(overrides)
            out[name] = scaffold.fill_notebook(release / name, cells)
        return out

    scaffold.submit(course, assignment, SOLUTION_STUDENT, filled({}))
    # the Chinese release, filled with the solutions and with the first named mistake: graded by
    # the same gradebook, it must score what the English notebooks score
    chinese = REPO / "exercises" / SECOND_LANGUAGE / assignment
    if chinese.is_dir():
        scaffold.submit(course, assignment, CHINESE_STUDENT,
                        {name: scaffold.fill_notebook(chinese / name, answers[name]) for name in notebooks})
        first = next((m for m in getattr(catalogues().get(assignment), "MUTANTS", []) if m.wrong and m.diagnosis), None)
        if first is not None:
            scaffold.submit(course, assignment, CHINESE_MISTAKE, {
                name: scaffold.fill_notebook(chinese / name, answers[name] | (
                    first.answers() if name == catalogues()[assignment].NOTEBOOK else {})) for name in notebooks})
    untouched = {name: scaffold.fill_notebook(release / name, {}) for name in notebooks}
    scaffold.submit(course, assignment, UNTOUCHED_STUDENT, untouched)
    catalogue = catalogues().get(assignment)
    mutants = {m.name: m for m in getattr(catalogue, "MUTANTS", [])}
    # the bug-class matrix's student-style mutants and correct variants, in the same nbgrader run
    mutants |= {m.name: m.mutant() for m in matrix.by_assignment().get(assignment, [])}
    mutants |= {m.name: m for m in matrix.CORRECT.get(assignment, [])}
    for mutant in mutants.values():
        scaffold.submit(course, assignment, mutant.name, filled(mutant.answers(), catalogue.NOTEBOOK))
    problems = scaffold.autograde(course, assignment)
    return GradedClass(assignment, course, release, mutants, read_results(course, assignment), problems)


_GRADED: dict[str, GradedClass] = {}


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """``graded_class(assignment)``: the class graded once per test worker, then reused."""

    def get(assignment: str) -> GradedClass:
        if assignment not in _GRADED:
            _GRADED[assignment] = _grade_class(assignment, tmp_path_factory.mktemp(f"course_{assignment}"))
        return _GRADED[assignment]

    return get


# ---- the mutation suite's summary: counts per assignment, printed at the end of the run ----

def pytest_terminal_summary(terminalreporter):
    counts: dict[str, dict[str, list[int]]] = {}
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        props = dict(getattr(report, "user_properties", []))
        if "mutant_kind" not in props or report.when != "call":
            continue
        entry = counts.setdefault(props["assignment"], {"wrong": [0, 0], "correct": [0, 0]})
        entry[props["mutant_kind"]][0] += report.passed
        entry[props["mutant_kind"]][1] += 1
    for report in terminalreporter.stats.get("passed", []):
        table = dict(getattr(report, "user_properties", [])).get("load_table")
        if table and report.when == "call":
            terminalreporter.section("load test: softgrad grade (timings shared with the other tests)")
            terminalreporter.write_line(table)
    outcomes = [dict(getattr(r, "user_properties", [])).get("matrix")
                for r in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
                if r.when == "call"]
    outcomes = [o for o in outcomes if o]
    if outcomes:
        terminalreporter.section("the bug-class matrix: graded function x class of bug (named / mutants)")
        for line in matrix.summary(outcomes):
            terminalreporter.write_line(line)
    if counts:
        terminalreporter.section("mutation suite")
        for assignment, entry in sorted(counts.items()):
            caught, wrong_total = entry["wrong"]
            kept, correct_total = entry["correct"]
            terminalreporter.write_line(
                f"{assignment}: {caught}/{wrong_total} wrong implementations caught (and named), "
                f"{kept}/{correct_total} correct implementations accepted with full marks"
            )


# ---- the book: built once per test worker, for the book and browser tests ----

HTML = html_folder(REPO)
ZH_HTML = html_folder(REPO, SECOND_LANGUAGE)  # the Chinese edition, a folder of the English HTML


def toc_files() -> list[str]:
    """Every page of the book, as listed in _toc.yml (without suffix)."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


def chapter_sources() -> list[Path]:
    return [REPO / f"{f}.md" for f in toc_files() if f.startswith("chapters/")]


@pytest.fixture(scope="session")
def built_book():
    """Build exactly as `./course book` does: both editions, strict, cached execution, MathJax served locally.

    Returns the English HTML; the Chinese edition is in its folder ``zh_CN/`` (:data:`ZH_HTML`).
    """
    mathjax = REPO / "_vendor" / "_static" / "mathjax" / "tex-mml-chtml.js"
    assert mathjax.exists(), "MathJax is missing from _vendor/: run ./course test (or ./course book) to fetch it"

    def build() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "softgrad.book", "build"],
                              cwd=REPO, capture_output=True, text=True, timeout=1500)

    done = build()
    if done.returncode != 0 and _a_kernel_lost_its_port(done.stdout + done.stderr):
        done = build()  # the notebooks that ran are cached: only the one whose kernel never started runs again
    # kept for the tests that read what the build did (test_translations: the second edition executes nothing)
    (REPO / "_build" / "built_book.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, f"the strict book build failed:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return HTML


def _a_kernel_lost_its_port(build_output: str) -> bool:
    """Whether a notebook of the build failed because its kernel died as it started.

    Jupyter frees a kernel's ports before the kernel binds them; with grading workers busy
    beside the build, another process can take one in between (see
    ``SafeExecute.kernel_start_attempts``). myst-nb names the traceback's file in its warning.
    """
    logs = re.findall(r"traceback saved in: (\S+\.log)", build_output)
    texts = [build_output] + [Path(log).read_text(errors="replace") for log in logs if Path(log).exists()]
    return any("Kernel died before replying to kernel_info" in text or "Address already in use" in text
               for text in texts)
