"""SafeExecute on small notebooks, without nbgrader around it: each limit does what it says."""

from __future__ import annotations

import socket

import nbformat
import pytest
from jupyter_client.connect import LocalPortCache

from softgrad.grader.preprocessors import SafeExecute, VerifyOutsideKernel

pytestmark = pytest.mark.slow


def run(*sources: str, **limits) -> list[list[tuple[str, str]]]:
    """Execute code cells; return each cell's outputs as (kind, text) pairs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    options = {"timeout": 10, "interrupt_grace": 2, "extra_arguments": ["--HistoryManager.hist_file=:memory:"]}
    SafeExecute(**(options | limits)).preprocess(nb, {"metadata": {"path": "."}})
    return [[(o.get("ename") or o.get("name"), str(o.get("evalue", o.get("text", "")))) for o in c.outputs]
            for c in nb.cells]


def test_the_kernel_gets_memory_error_at_the_address_space_limit():
    outputs = run("import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0] // 2**20)",
                  "import numpy as np\nhoard = []\nwhile True:\n    hoard.append(np.ones(10**7))",
                  "print('still alive')", memory_limit_mb=1536)
    assert outputs[0] == [("stdout", "1536\n")]
    assert "MemoryError" in [kind for kind, _ in outputs[1]], outputs
    assert outputs[2] == [("stdout", "still alive\n")], "the kernel survives its MemoryError"


def test_a_kernel_over_the_limit_is_killed_from_outside_when_the_limit_inside_is_off():
    outputs = run("import numpy as np\nhoard = []\nwhile True:\n    hoard.append(np.ones(10**7))",
                  "print('never')", memory_limit_mb=1024, limit_address_space=False)
    assert outputs[0][-1][0] == "KernelDied" and "memory limit of 1024 MiB" in outputs[0][-1][1]
    assert outputs[1][0][0] == "NotRun" and "kernel died in an earlier cell" in outputs[1][0][1]


def test_output_beyond_the_limit_is_dropped_with_a_note():
    outputs = run("for i in range(100):\n    print('x' * 1000)", output_limit_bytes=10_000)
    text = "".join(t for _, t in outputs[0])
    assert len(text) < 20_000 and "dropped the rest of this cell's output" in text


def test_the_notebook_time_budget_stops_the_cells_after_it():
    outputs = run("import time; time.sleep(3)", "print('late')", notebook_timeout=2)
    assert outputs[1][0][0] == "NotRun" and "2 s of grading time" in outputs[1][0][1]


@pytest.fixture
def a_taken_port(monkeypatch):
    """The race Jupyter leaves open: the first port handed to a kernel is taken by another process first.

    Jupyter picks a kernel's ports, frees them, and the kernel binds them a moment later; another
    grading worker, or any outgoing connection, can take one in between. Yields the handed-out ports.
    """
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    handed: list[int] = []
    find = LocalPortCache.find_available_port

    def the_taken_port_first(self, ip):
        handed.append(taken.getsockname()[1] if not handed else find(self, ip))
        return handed[-1]

    monkeypatch.setattr(LocalPortCache, "find_available_port", the_taken_port_first)
    yield handed
    taken.close()


def test_a_kernel_that_lost_its_port_is_started_again_and_the_notebook_runs(a_taken_port):
    assert run("print('graded')") == [[("stdout", "graded\n")]]
    assert len(a_taken_port) >= 10, "the kernel was not started a second time: the test proves nothing"


def test_without_a_second_start_the_lost_port_costs_the_notebook(a_taken_port):
    """The same race with one attempt: what happened to a whole submission before the retry."""
    with pytest.raises(RuntimeError, match="died before replying"):
        run("print('graded')", kernel_start_attempts=1)


def test_an_early_displayed_number_does_not_hide_a_failure():
    """nbgrader takes the first execute_result of a cell as its score; an error must come first."""
    cell = nbformat.v4.new_code_cell("x", metadata={"nbgrader": {"grade": True, "grade_id": "t", "points": 2,
                                                                 "solution": False, "locked": True}})
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1),
                    nbformat.v4.new_output("error", ename="AssertionError", evalue="wrong", traceback=[])]
    nb = nbformat.v4.new_notebook(cells=[cell])
    VerifyOutsideKernel._protect_scores(nb)
    assert nb.cells[0].outputs[0].output_type == "error"
