"""The assignment notebooks follow the course's exercise contract (COURSE_DESIGN sections 3 and 5).

These checks read the notebooks; they do not run them (the grading pipeline tests do).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from conftest import ASSIGNMENTS, REPO, source_notebooks

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
# Calls that may end a test cell: the course's checks (softgrad.testing.check_*, and the
# gradient checks), which raise on failure and return None, never a number.
def _is_check(name: str | None) -> bool:
    return bool(name) and name.startswith("check_")


SOURCES = [pytest.param(path, id=f"{path.parent.name}/{path.name}")
           for a in ASSIGNMENTS for path in source_notebooks(a)]
RELEASES = [pytest.param(REPO / "exercises" / path.parent.name / path.name, id=f"{path.parent.name}/{path.name}")
            for a in ASSIGNMENTS for path in source_notebooks(a)]


def _meta(cell):
    return cell.metadata.get("nbgrader", {})


def _solution_functions(nb):
    return [_meta(c)["grade_id"] for c in nb.cells if _meta(c).get("solution") and c.cell_type == "code"]


def _test_cells(nb):
    return [c for c in nb.cells if _meta(c).get("grade") and c.cell_type == "code"]


def _ends_with_check(statements: list[ast.stmt]) -> bool:
    last = statements[-1]
    if isinstance(last, ast.For | ast.While | ast.With):
        return _ends_with_check(last.body)
    if isinstance(last, ast.Assert):
        return True
    return (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
            and _is_check(getattr(last.value.func, "id", getattr(last.value.func, "attr", None))))


@pytest.mark.parametrize("path", SOURCES)
def test_source_notebook_is_clean_and_well_formed(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids)), "cell ids must be unique"
    grade_ids = [_meta(c)["grade_id"] for c in nb.cells if _meta(c)]
    assert len(grade_ids) == len(set(grade_ids)), "nbgrader grade_ids must be unique"
    assert all(_meta(c) for c in nb.cells), "every cell needs nbgrader metadata (locked if it is not an answer)"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"cell {cell.id} has outputs: strip them"


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@pytest.mark.parametrize("path", SOURCES)
def test_every_graded_function_has_its_own_solution_cell_and_tests(path: Path):
    nb = nbformat.read(path, as_version=4)
    functions = _solution_functions(nb)
    assert functions, "no solution cells"
    for cell in nb.cells:
        if _meta(cell).get("solution") and cell.cell_type == "code":
            name = _meta(cell)["grade_id"]
            assert re.search(rf"^(def {name}\(|class {name}\b)", cell.source, re.M), (
                f"solution cell {name} must define the function or class {name}")
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
    tested = {_meta(c)["grade_id"] for c in _test_cells(nb)}
    for name in functions:
        # A class (an autograd.Function) is tested under its snake_case name: SoftmaxCrossEntropy
        # through test_softmax_cross_entropy_<aspect>, the function that applies it.
        prefix = f"test_{_snake_case(name)}_"
        assert any(t.startswith(prefix) for t in tested), f"{name} has no test cell {prefix}<aspect>"


@pytest.mark.parametrize("path", SOURCES)
def test_test_cells_follow_the_house_style(path: Path):
    nb = nbformat.read(path, as_version=4)
    functions = _solution_functions(nb)
    for cell in _test_cells(nb):
        grade_id = _meta(cell)["grade_id"]
        assert _meta(cell).get("locked") and _meta(cell).get("points", 0) > 0, f"{grade_id}: locked, with points"
        assert any(grade_id.startswith(f"test_{_snake_case(f)}_") for f in functions), (
            f"{grade_id}: test_<function>_<aspect>")
        hidden = HIDDEN.findall(cell.source)
        assert len(hidden) == 1, f"{grade_id}: exactly one hidden-test region"
        assert cell.source.rstrip().endswith("### END HIDDEN TESTS"), f"{grade_id}: hidden tests come last"
        visible = HIDDEN.sub("", cell.source)
        tree = ast.parse(visible)
        first = tree.body[0]
        assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant), f"{grade_id}: docstring first"
        assert "\n" not in first.value.value.strip(), f"{grade_id}: the docstring is one line"
        assert _ends_with_check(tree.body), f"{grade_id}: the visible part must end with an assert or a check"
        hidden_tree = ast.parse(hidden[0])
        assert hidden_tree.body and _ends_with_check(hidden_tree.body), (
            f"{grade_id}: the hidden part must end with an assert or a check (a bare expression scores full marks)"
        )
        checks = [n for n in ast.walk(tree) if isinstance(n, ast.Assert | ast.Call)]
        assert checks, f"{grade_id}: the visible part checks nothing"


@pytest.mark.parametrize("path", SOURCES)
def test_every_test_cell_stands_alone(path: Path):
    """A test cell reads only names it assigns itself or that the notebook's other cells assign, never another
    test's: one failed test does not fail the next, and the grader's re-run can skip a test that scored nothing."""
    import builtins

    from softgrad.grader.cells import assigned_names, cell_kind, read_names

    nb = nbformat.read(path, as_version=4)
    outside = set(dir(builtins)) | {"get_ipython", "display"}
    outside |= {name for c in nb.cells if c.cell_type == "code" and cell_kind(c) != "test"
                for name in assigned_names(c.source)}
    for cell in _test_cells(nb):
        from_other_tests = read_names(cell.source) - assigned_names(cell.source) - outside
        grade_id = _meta(cell)["grade_id"]
        assert not from_other_tests, f"{grade_id} reads {sorted(from_other_tests)} from another test cell"


@pytest.mark.parametrize("path", RELEASES)
def test_release_notebook_hides_solutions_and_hidden_tests(path: Path):
    assert path.exists(), f"{path} is missing: run ./course release"
    text = path.read_text()
    for secret in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
        assert secret not in text
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if _meta(cell).get("solution") and cell.cell_type == "code":
            assert "raise NotImplementedError()" in cell.source
        if cell.cell_type == "code":
            assert not cell.outputs
