"""The pieces of honest grading, without nbgrader: the sandbox, its codec, and the reading of student code."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ASSIGNMENTS, REPO
from support import scaffold

from softgrad.grader.integrity import RULES, scan_cells
from softgrad.grader.sandbox import EncodeError, Proxy, Sandbox, SandboxDied, StudentError, Unverifiable, decode, encode

# ---- the codec: plain data only ----


@pytest.mark.parametrize("value", [
    np.arange(6, dtype=np.float32).reshape(2, 3), np.array(3.5), np.float16(2.5), np.int64(7), 1.5, 3, True,
    None, "text", (np.zeros(2), [1, 2.0]), {"loss": [0.5, 0.25], "W": np.eye(2)}, float("nan"), np.array([], int),
])
def test_plain_data_crosses_unchanged_with_its_exact_type_and_dtype(value):
    blobs = []
    back = decode(encode(value, blobs), blobs)
    assert type(back) is type(value)
    if isinstance(value, (np.ndarray, np.generic)):
        assert back.dtype == value.dtype and np.array_equal(back, value)
    elif isinstance(value, float) and value != value:
        assert back != back
    else:
        assert repr(back) == repr(value)


class AlwaysEqual(float):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value", [AlwaysEqual(1.0), np.array([object()]), lambda x: x, np.ma.masked_array([1.0]),
                                   {1: 2.0}, (v for v in [1.0])])
def test_anything_but_plain_data_is_refused(value):
    with pytest.raises(EncodeError):
        encode(value, [])


def test_a_generator_argument_arrives_as_a_one_shot_generator():
    blobs = []
    back = decode(encode((np.full(2, i) for i in range(3)), blobs, iterators=True), blobs)
    assert [int(a[0]) for a in back] == [0, 1, 2]
    assert list(back) == [], "a second pass over the rebuilt generator finds it exhausted, as the original"


# ---- the sandbox: the student's code in its own process ----

STUDENT = '''
import numpy as np

def double(z):
    return 2 * z

def scale_in_place(z):
    z *= 3
    return None

def picky(z):
    raise ValueError(f"z has shape {np.shape(z)}")

def liar(z):
    class Yes:
        def __eq__(self, other):
            return True
    return Yes()

def spin(z):
    while True:
        pass

def cheat(z):
    from softgrad import reference
    return reference.softmax(z)

def leave(z):
    import os
    os._exit(3)

table = {"a": np.ones(2)}
'''


@pytest.fixture(scope="module", params=scaffold.SANDBOX_ORIGINS)
def sandbox(tmp_path_factory, request):
    with Sandbox(cwd=tmp_path_factory.mktemp("sandbox"), origin=request.param(), call_timeout=2,
                 interrupt_grace=2) as box:
        box.run_cell("student", STUDENT)
        yield box


def test_the_sandbox_knows_the_names_the_student_defined(sandbox):
    names = sandbox.names()
    assert names["double"] == "function" and names["table"] == "value"
    assert "np" not in names, "modules are not the student's definitions"


def test_a_proxy_calls_the_students_function_with_plain_data(sandbox):
    double = Proxy(sandbox, "double")
    out = double(np.arange(3.0))
    assert type(out) is np.ndarray and np.array_equal(out, [0.0, 2.0, 4.0])
    assert sandbox.get("table")["a"].tolist() == [1.0, 1.0]


def test_an_argument_changed_in_place_is_changed_on_the_trusted_side_too(sandbox):
    z = np.ones(3)
    Proxy(sandbox, "scale_in_place")(z)
    assert z.tolist() == [3.0, 3.0, 3.0]


def test_the_students_exceptions_come_back_as_themselves(sandbox):
    with pytest.raises(ValueError, match=r"z has shape \(2,\)"):
        Proxy(sandbox, "picky")(np.ones(2))


def test_an_object_that_lies_about_equality_never_reaches_the_trusted_side(sandbox):
    with pytest.raises(StudentError, match="returned an object of type"):
        Proxy(sandbox, "liar")(np.ones(2))


def test_an_argument_that_cannot_be_sent_makes_the_test_unverifiable(sandbox):
    with pytest.raises(Unverifiable, match="cannot send"):
        Proxy(sandbox, "double")(lambda x: x)


def test_the_reference_solutions_are_tripwires_in_the_sandbox(sandbox):
    with pytest.raises(RuntimeError, match="answer key"):
        Proxy(sandbox, "cheat")(np.ones(2))


def test_a_call_that_never_returns_is_interrupted(sandbox):
    with pytest.raises(TimeoutError, match="took too long"):
        Proxy(sandbox, "spin")(np.ones(2))
    assert Proxy(sandbox, "double")(np.ones(1)).tolist() == [2.0], "the sandbox answers again afterwards"


def test_code_that_ends_the_process_ends_only_the_sandbox(tmp_path):
    with Sandbox(cwd=tmp_path, call_timeout=5) as box:
        box.run_cell("student", STUDENT)
        with pytest.raises(SandboxDied, match="exit code 3"):
            Proxy(box, "leave")(np.ones(1))
        with pytest.raises(SandboxDied):
            Proxy(box, "double")(np.ones(1))


@pytest.mark.parametrize("origin", scaffold.SANDBOX_ORIGINS)
def test_the_sandbox_leaves_the_users_ipython_history_alone(tmp_path, monkeypatch, origin):
    """IPython's shells outside the kernel keep no history: the instructor's ~/.ipython is not written."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    with Sandbox(cwd=tmp_path, origin=origin(), call_timeout=5) as box:
        box.run_cell("student", STUDENT)
        assert Proxy(box, "double")(np.ones(1)).tolist() == [2.0], "the sandbox did not run"
    assert not list((tmp_path / "ipython").rglob("history.sqlite"))


def test_a_shell_outside_the_kernel_ends_without_emptying_its_namespace(tmp_path):
    """IPython's clean-up at exit (its namespace emptied, 50 to 70 ms of collecting garbage) is skipped."""
    import os
    import subprocess
    import sys

    code = ("import atexit, os\natexit.register(os._exit, 0)  # runs after the shell's own, if it has one\n"
            "from softgrad.grader.sandbox import new_shell\nshell = new_shell()\n"
            "shell.reset = lambda *args, **kwargs: print('emptied', flush=True)\n"
            "print('history', shell.history_manager.enabled, flush=True)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "IPYTHONDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["history", "False"]


# ---- the reading of student code ----

@pytest.mark.parametrize(("rule", "code"), [
    ("patches-library", "np.allclose = lambda *a, **k: True"),
    ("patches-library", "import numpy.testing as npt\nnpt.assert_allclose = print"),
    ("patches-library", "softgrad.testing.check_against_reference = None"),
    ("tampers-with-ipython", "get_ipython().showtraceback = lambda *a: None"),
    ("tampers-with-ipython", "shell = get_ipython()\nshell._showtraceback = print"),
    ("reads-test-internals", "import sys\nframe = sys._getframe(1)"),
    ("reads-test-internals", "import inspect\nx = inspect.stack()"),
    ("reads-test-internals", "import gc\nobjects = gc.get_objects()"),
    ("lying-comparison", "class Yes:\n    def __eq__(self, other):\n        return True"),
    ("uses-reference-code", "from softgrad.reference import softmax"),
    ("uses-reference-code", "from softgrad import reference"),
    ("uses-reference-code", "p = reference.softmax(z)"),
    ("dynamic-code", "exec('x = 1')"),
    ("dynamic-code", "import importlib"),
    ("ends-the-process", "import os\nos._exit(0)"),
    ("ends-the-process", "import sys\nsys.exit()"),
    ("ends-the-process", "import ctypes"),
])
def test_each_rule_finds_what_it_describes(rule, code):
    findings = scan_cells([("softmax", code)])
    assert rule in {f.rule for f in findings}, f"{code!r} should be flagged {rule}; found {findings}"
    assert all(f.rule in RULES and f.cell == "softmax" and f.line >= 1 for f in findings)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_model_solutions_raise_no_flag(assignment):
    """The reading must not cry wolf: honest code, including the course's own answers, has no findings."""
    for notebook in sorted((REPO / "solutions" / assignment).glob("*.ipynb")):
        cells = list(scaffold.solution_sources(notebook).items())
        assert scan_cells(cells) == [], f"{notebook.name}: {scan_cells(cells)}"


def test_honest_code_that_looks_like_tampering_is_not_flagged():
    honest = ("import torch\ntorch.backends.cudnn.deterministic = True\n"
              "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 100\n"
              "state = {}\nstate['W'] = 1\nclass Model:\n    def __init__(self):\n        self.W = 0\n"
              "m = Model()\nm.W = 2\nnp.random.seed(0)\nx = np.testing\n")
    assert scan_cells([("cell 3", honest)]) == []


def test_writing_into_a_modules_namespace_is_flagged():
    assert {f.rule for f in scan_cells([("c", "np.__dict__['allclose'] = max")])} == {"patches-library"}


def test_patching_the_checks_is_patching_not_using_the_reference():
    rules = {f.rule for f in scan_cells([("c", "softgrad.testing.check_against_reference = print")])}
    assert rules == {"patches-library"}


def test_a_call_is_interrupted_even_when_the_grader_ignores_sigint(tmp_path):
    """A grader started in the background (`softgrad grade ... &`) hands SIGINT on as ignored."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a script does
    try:
        box = Sandbox(cwd=tmp_path, call_timeout=2, interrupt_grace=10)
    finally:
        signal.signal(signal.SIGINT, previous)
    with box:
        box.run_cell("student", STUDENT)
        with pytest.raises(TimeoutError, match="took too long"):
            Proxy(box, "spin")(np.ones(2))
        assert Proxy(box, "double")(np.ones(1)).tolist() == [2.0]
