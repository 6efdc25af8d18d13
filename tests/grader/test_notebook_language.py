"""The notebook's language reaches the checks: a Chinese notebook's kernel (autograding, `softgrad check`) gets
SOFTGRAD_LANG from the notebook's metadata, `softgrad check` reports in that language, and the errors the grader
itself writes into the cells (a timeout, a dead kernel, a cell not run, a test failed in the re-run) are in it."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from conftest import REPO
from support import scaffold

from softgrad import i18n
from softgrad.grader.check import CheckResult, merge_tests
from softgrad.grader.preprocessors import SafeExecute, VerifyOutsideKernel

RELEASE = REPO / "exercises" / "ps1_softmax" / "softmax.ipynb"
SOURCE = REPO / "solutions" / "ps1_softmax" / "softmax.ipynb"
CHINESE = {"softgrad": {"language": "zh_CN"}}


@pytest.fixture(autouse=True)
def no_language_in_the_environment(monkeypatch):
    monkeypatch.delenv(i18n.ENVIRONMENT, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def kernel_language(metadata: dict) -> str:
    """What SOFTGRAD_LANG and softgrad.i18n say inside the kernel SafeExecute starts for a notebook."""
    nb = nbformat.v4.new_notebook(metadata=metadata)
    nb.cells = [nbformat.v4.new_code_cell(
        "import os, softgrad.i18n\nprint(os.environ.get('SOFTGRAD_LANG'), softgrad.i18n.language())")]
    SafeExecute(timeout=60, extra_arguments=["--HistoryManager.hist_file=:memory:"]).preprocess(
        nb, {"metadata": {"path": str(REPO)}})
    return "".join(o.get("text", "") for o in nb.cells[0].outputs).strip()


@pytest.mark.slow
def test_the_grader_gives_a_chinese_notebook_s_kernel_its_language():
    assert kernel_language(CHINESE) == "zh_CN zh_CN"
    assert kernel_language({}) == "None en", "a notebook that declares no language keeps the grader's environment"


def test_softgrad_check_runs_the_tests_in_the_learner_s_language():
    learner = nbformat.read(RELEASE, as_version=4)
    learner.metadata["softgrad"] = {"language": "zh_CN"}
    merged = merge_tests(nbformat.read(SOURCE, as_version=4), learner)
    assert i18n.notebook_language(merged.metadata) == "zh_CN"
    english = merge_tests(nbformat.read(SOURCE, as_version=4), nbformat.read(RELEASE, as_version=4))
    assert i18n.notebook_language(english.metadata) is None


def graded(metadata: dict) -> nbformat.NotebookNode:
    """A notebook with one failed test cell, as `softgrad check` has it after running."""
    nb = nbformat.v4.new_notebook(metadata=metadata)
    cell = nbformat.v4.new_code_cell("check()", metadata={"nbgrader": {
        "grade": True, "grade_id": "test_softmax_stability", "locked": True, "points": 2, "schema_version": 3,
        "solution": False, "task": False}})
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="wrong", traceback=["wrong"])]
    nb.cells = [cell]
    return nb


def test_the_report_of_softgrad_check_is_in_the_notebook_s_language(monkeypatch):
    assert CheckResult(graded({})).report().startswith("FAIL  test_softmax_stability  (0/2)")
    chinese = CheckResult(graded(CHINESE)).report()
    assert chinese.startswith("未通过  test_softmax_stability  (0/2)")
    assert chinese.endswith("自动测试得分：0 / 2（书面回答由人工评分）。")
    monkeypatch.setenv(i18n.ENVIRONMENT, "zh_CN")
    assert CheckResult(graded({})).report().startswith("未通过"), "the variable wins over an English notebook"


@pytest.mark.slow
def test_softgrad_check_of_a_chinese_copy_names_the_mistake_in_chinese(tmp_path):
    wrong = "def softmax(z, axis=-1):\n    e = np.exp(z)\n    return e / e.sum(axis=axis, keepdims=True)\n"
    filled = scaffold.fill_notebook(RELEASE, {**scaffold.solution_sources(SOURCE), "softmax": wrong})
    filled.metadata["softgrad"] = {"language": "zh_CN"}
    (tmp_path / "zh_CN").mkdir()
    path = tmp_path / "zh_CN" / "softmax.ipynb"
    nbformat.write(filled, path)
    done = subprocess.run([sys.executable, "-m", "softgrad", "check", str(path), "--course", str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "未通过  test_softmax_stability  (0/2)" in done.stdout
    assert "这与一个已知错误相符：softmax 没有减去最大值 [softmax-no-max-shift]。" in done.stdout
    assert "通过  test_logsumexp_values" in done.stdout
    assert done.stderr.startswith("softgrad check: 用 ps1_softmax 的 10 个测试（含隐藏测试）"
                                  "在新的内核中检查 softmax.ipynb")


# ---- the errors the grader writes into a cell ---------------------------------------------------------------

def executed(metadata: dict, *sources: str, **limits) -> list[list[tuple[str, str]]]:
    """Run code cells in SafeExecute; each cell's outputs as (error name or stream, text) pairs."""
    nb = nbformat.v4.new_notebook(metadata=metadata)
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    options = {"timeout": 2, "interrupt_grace": 2, "extra_arguments": ["--HistoryManager.hist_file=:memory:"]}
    SafeExecute(**(options | limits)).preprocess(nb, {"metadata": {"path": str(REPO)}})
    return [[(o.get("ename") or o.get("name"), str(o.get("evalue", o.get("text", "")))) for o in cell.outputs]
            for cell in nb.cells]


SLOW_CELLS = ("import time\ntime.sleep(30)", "time.sleep(1.5)", "print('late')")
"""A cell stopped at the time limit (2 s); a cell that takes the notebook past its budget (3 s), or is not run
because of it; a cell not run."""


@pytest.mark.slow
@pytest.mark.parametrize("metadata", [{}, CHINESE], ids=["en", "zh_CN"])
def test_the_timeout_and_a_cell_not_run_are_in_the_notebook_s_language(metadata):
    outputs = executed(metadata, *SLOW_CELLS, notebook_timeout=3)
    stopped, not_run = outputs[0][-1], outputs[2][0]
    assert stopped[0] == "TimeoutError" and not_run[0] == "NotRun"
    if metadata:
        assert stopped[1] == "这个单元格运行 2 秒后被停止：可能是无限循环，或者代码比应有的速度慢得多"
        assert not_run[1] == "这个单元格没有运行：笔记本已用完 3 秒的评分时间"
    else:
        assert stopped[1] == ("this cell was stopped after 2 s: an infinite loop, or code far slower than it "
                              "needs to be")
        assert not_run[1] == "this cell was not run: the notebook used up its 3 s of grading time"


@pytest.mark.slow
@pytest.mark.parametrize("metadata", [{}, CHINESE], ids=["en", "zh_CN"])
def test_a_dead_kernel_and_dropped_output_are_in_the_notebook_s_language(metadata):
    outputs = executed(metadata, "for i in range(10):\n    print('x' * 1000)", "import os\nos._exit(3)",
                       "print('never')", output_limit_bytes=2000, timeout=30)
    note = "".join(text for kind, text in outputs[0] if kind == "stdout")
    died, not_run = outputs[1][-1], outputs[2][0]
    assert died[0] == "KernelDied" and not_run[0] == "NotRun"
    if metadata:
        assert "\n[自动评分器丢弃了这个单元格其余的输出：超过 2,000 个字符]\n" in note
        assert died[1] == ("Python 内核在运行这个单元格时意外终止：进程退出或崩溃了（例如调用了 os._exit，"
                           "或者 C 代码崩溃）")
        assert not_run[1] == ("这个单元格没有运行：内核在前面的单元格中意外终止（进程退出或崩溃了（例如调用了 "
                              "os._exit，或者 C 代码崩溃））")
    else:
        assert "\n[the grader dropped the rest of this cell's output: more than 2,000 characters]\n" in note
        assert died[1] == ("the Python kernel died while running this cell: the process exited or crashed (for "
                           "example os._exit, or a crash in C code)")
        assert not_run[1] == ("this cell was not run: the kernel died in an earlier cell (the process exited or "
                              "crashed (for example os._exit, or a crash in C code))")
    assert i18n.language() == "en", "the grader's own language is left as it was"


@pytest.mark.parametrize("metadata", [{}, CHINESE], ids=["en", "zh_CN"])
def test_a_test_that_fails_only_in_the_re_run_is_explained_in_the_notebook_s_language(monkeypatch, metadata):
    nb = graded(metadata)
    nb.cells[0].outputs = []  # it passed in the student's kernel
    monkeypatch.setattr(VerifyOutsideKernel, "_replay", lambda self, nb, resources: {
        "cells": {"test_softmax_stability": {"outcome": "fail", "message": "AssertionError: softmax(z) ..."}}})
    VerifyOutsideKernel().preprocess(nb, {})
    error = nb.cells[0].outputs[0]
    assert error.ename == "GradingIntegrityError"
    assert error.evalue == {
        "en": "this test passed while your notebook ran, but failed when the grader re-ran it outside your "
              "notebook's Python process, where your code cannot change the checks. The re-run said: "
              "AssertionError: softmax(z) ...",
        "zh_CN": "这个测试在你的笔记本运行时通过了，但自动评分器在你的笔记本的 Python 进程之外重新运行它时没有通过"
                 "（在那里，你的代码无法改动检查）。重新运行的结果是：AssertionError: softmax(z) ...",
    }[i18n.notebook_language(metadata) or "en"]
