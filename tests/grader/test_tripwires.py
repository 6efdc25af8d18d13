"""The tripwires of the sandbox: the course's softmax code is out of reach by every import route."""

from __future__ import annotations

import pytest
from support import scaffold

from softgrad.grader import tripwires
from softgrad.grader.sandbox import Sandbox

# Each function reaches a course implementation by another route; each must hit a tripwire.
ROUTES = '''
import importlib
import pkgutil
import sys

import numpy as np


def attribute_of_the_package(z):
    import softgrad.reference
    return softgrad.reference.softmax(z)

def name_imported_from_the_module(z):
    from softgrad.reference import logsumexp
    return logsumexp(z)

def import_module(z):
    return importlib.import_module("softgrad.reference").log_softmax(z)

def a_private_function_of_a_submodule(z):
    from softgrad.mistakes import softmax
    return softmax._softmax_no_shift(z)

def a_name_the_package_reexports(z):
    from softgrad.mistakes import suspects
    return suspects("softmax")

def named_like_the_answer_in_a_library_module(z):
    from softgrad import scale
    return scale.online_logsumexp([z])

def a_module_found_with_pkgutil(z):
    import softgrad
    for info in pkgutil.walk_packages(softgrad.__path__, prefix="softgrad."):
        if info.name == "softgrad.scale":
            return importlib.import_module(info.name).logsumexp_partial(z)
    raise LookupError("softgrad.scale not found")

def after_a_reload(z):
    import softgrad.reference
    return importlib.reload(softgrad.reference).softmax(z)

def imported_afresh(z):
    for name in [n for n in sys.modules if n.startswith("softgrad.reference")]:
        del sys.modules[name]
    import softgrad.reference
    return softgrad.reference.softmax(z)

def a_submodule_of_the_checks(z):
    from softgrad.testing import streaming
    return streaming.check_online_logsumexp(lambda chunks: z, [z])

def not_the_answer(z):
    from softgrad import gradcheck
    return gradcheck.relative_error(z, z)
'''

TRIPPED = ["attribute_of_the_package", "name_imported_from_the_module", "import_module",
           "a_private_function_of_a_submodule", "a_name_the_package_reexports",
           "named_like_the_answer_in_a_library_module", "a_module_found_with_pkgutil", "after_a_reload",
           "imported_afresh", "a_submodule_of_the_checks"]


@pytest.fixture(scope="module", params=scaffold.SANDBOX_ORIGINS)
def sandbox(tmp_path_factory, request):
    with Sandbox(cwd=tmp_path_factory.mktemp("tripwires"), origin=request.param(), call_timeout=20,
                 interrupt_grace=2) as box:
        box.run_cell("student", ROUTES)
        assert not box.cell_errors, box.cell_errors
        yield box


@pytest.mark.parametrize("route", TRIPPED)
def test_every_route_to_the_course_code_hits_a_tripwire(sandbox, route):
    import numpy as np

    with pytest.raises(RuntimeError, match="part of the course's answer key; this exercise asks you to write it"):
        sandbox.call(route, (np.array([[1.0, 2.0]]),), {})


def test_the_rest_of_the_library_still_works_in_the_sandbox(sandbox):
    import numpy as np

    assert sandbox.call("not_the_answer", (np.array([1.0, 2.0]),), {}) == 0.0


def test_which_names_are_the_answer():
    """Everything in the answer key; elsewhere, what computes a softmax-family function; never NumPy's."""
    import numpy as np

    from softgrad import gradcheck, reference, scale

    assert tripwires._answer("softgrad.reference", "predict", reference.predict), "the answer key, whatever its name"
    assert tripwires._answer("softgrad.scale", "online_logsumexp", scale.online_logsumexp)
    assert tripwires._answer("softgrad.scale", "softmax_cross_entropy_fused", scale.softmax_cross_entropy_fused)
    assert not tripwires._answer("softgrad.scale", "available_threads", scale.available_threads)
    assert not tripwires._answer("softgrad.gradcheck", "relative_error", gradcheck.relative_error)
    assert not tripwires._answer("softgrad.scale", "exp", np.exp), "NumPy's functions stay NumPy's"
