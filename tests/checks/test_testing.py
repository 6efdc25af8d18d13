"""softgrad.testing, softgrad.reference and softgrad.mistakes: the checks the assignments' tests call."""

from __future__ import annotations

import warnings
from decimal import Decimal, getcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softgrad import reference
from softgrad.mistakes import CATALOGUE, suspects
from softgrad.testing import (
    call_student,
    check_against_reference,
    check_gradient_function,
    check_jacobian_function,
    check_loss_and_gradients,
    check_peak_memory,
    expected_dtype,
    forward_tolerance,
    result_problem,
)
from softgrad.testing.inputs import hard_logits, linear_inputs

getcontext().prec = 60


def decimal_softmax(row):
    """Softmax of a 1-D sequence in 60-digit decimal arithmetic (no overflow: Decimal's range is huge)."""
    exps = [Decimal(float(v)).exp() for v in row]
    total = sum(exps)
    return [float(e / total) for e in exps], float(total.ln())


# ---- the reference implementations are right ------------------------------------------------

@pytest.mark.parametrize("row", [
    [1.0, 2.0, 3.0],
    [1000.0, 999.0, 998.0],
    [-1000.0, -1001.0, -1003.0],
    [0.0, -800.0],
    [700.0, -700.0, 0.0, 3.5],
    [5.0],
])
def test_reference_matches_60_digit_arithmetic(row):
    probabilities, lse = decimal_softmax(row)
    z = np.array(row)
    np.testing.assert_allclose(reference.softmax(z), probabilities, rtol=1e-14, atol=1e-300)
    assert reference.logsumexp(z) == pytest.approx(lse, rel=1e-15)
    np.testing.assert_allclose(reference.log_softmax(z), z - lse, rtol=1e-14, atol=1e-12)


def test_reference_reduces_the_right_axis_and_rejects_scalars():
    z = np.arange(24.0).reshape(2, 3, 4)
    assert reference.logsumexp(z, axis=1).shape == (2, 4)
    np.testing.assert_allclose(reference.softmax(z, axis=0).sum(axis=0), 1.0)
    with pytest.raises(ValueError, match="0-d"):
        reference.softmax(np.float64(3.0))


finite_logits = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(z=finite_logits, shift=st.floats(-100, 100), data=st.data())
def test_property_reference_identities(z, shift, data):
    axis = data.draw(st.integers(-z.ndim, z.ndim - 1))
    p = reference.softmax(z, axis=axis)
    assert np.all(p >= 0) and np.allclose(p.sum(axis=axis), 1.0)
    np.testing.assert_allclose(reference.softmax(z + shift, axis=axis), p, atol=1e-12)
    lse = reference.logsumexp(z, axis=axis)
    top = np.max(z, axis=axis)
    assert np.all(top <= lse + 1e-9) and np.all(lse <= top + np.log(z.shape[axis]) + 1e-9)
    np.testing.assert_allclose(reference.log_softmax(z, axis=axis), z - np.expand_dims(lse, axis), atol=1e-9)


# ---- check_against_reference accepts correct implementations --------------------------------

def student_softmax(z, axis=-1):
    shifted = z - np.max(z, axis=axis, keepdims=True)
    exps = np.exp(shifted)
    return exps / np.sum(exps, axis=axis, keepdims=True)


def student_softmax_via_lse(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return np.exp(z - (m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))))


def student_logsumexp(z, axis=-1):
    return np.logaddexp.reduce(np.asarray(z) * 1.0 if np.asarray(z).dtype.kind in "iu" else z, axis=axis)


def student_log_softmax(z, axis=-1):
    return z - np.expand_dims(student_logsumexp(z, axis=axis), axis)


@settings(max_examples=60, deadline=None)
@given(z=finite_logits, dtype=st.sampled_from([np.float16, np.float32, np.float64]), data=st.data())
def test_property_correct_implementations_pass_in_every_dtype(z, dtype, data):
    axis = data.draw(st.integers(-z.ndim, z.ndim - 1))
    if dtype is np.float16:
        z = np.clip(z, -60000, 60000)
    z = z.astype(dtype)
    check_against_reference(student_softmax, reference.softmax, z, axis=axis)
    check_against_reference(student_softmax_via_lse, reference.softmax, z, axis=axis)
    check_against_reference(student_logsumexp, reference.logsumexp, z, axis=axis)
    check_against_reference(student_log_softmax, reference.log_softmax, z, axis=axis)


def test_integer_input_must_give_float64():
    z = np.array([[3, 1, 2]])
    check_against_reference(student_softmax, reference.softmax, z)
    assert expected_dtype(z) == np.float64
    assert expected_dtype(z.astype(np.float32)) == np.float32


def test_check_returns_none_so_it_can_end_a_test_cell():
    assert check_against_reference(student_softmax, reference.softmax, np.ones(3)) is None


# ---- ... and rejects every catalogued mistake, naming it ------------------------------------

DISCRIMINATING_INPUTS = [
    ((np.array([[1000.0, 999.0, 0.0], [-1000.0, -1001.0, -1003.0], [0.5, 3.0, 1.0]]),), {}),
    ((np.array([[0.2, 1.0, -0.5], [2.0, -1.0, 0.0], [0.0, 3.0, 1.5]]),), {}),
    ((np.array([[0.2, 1.0, -0.5], [2.0, -1.0, 0.0], [0.0, 3.0, 1.5]]),), {"axis": 0}),
    ((np.array([[0.0, -800.0], [900.0, 0.0]]),), {}),
    ((np.array([[800.0, 0.0, -800.0], [1.0, 1.0, 1.0]]),), {}),
]


def _cases():
    for name in ("softmax", "log_softmax", "logsumexp"):  # softmax_vjp and the Jacobian: below
        for mistake, implementations in suspects(name).items():
            for k, implementation in enumerate(implementations):
                yield pytest.param(name, mistake, implementation, id=f"{name}-{mistake.id}-{k}")


@pytest.mark.parametrize(("name", "mistake", "implementation"), list(_cases()))
def test_every_catalogued_wrong_implementation_is_rejected_and_named(name, mistake, implementation):
    named = False
    for args, kwargs in DISCRIMINATING_INPUTS:
        try:
            check_against_reference(implementation, getattr(reference, name), *args, **kwargs)
        except AssertionError as failure:
            named = named or f"[{mistake.id}]" in str(failure)
    assert named, f"no standard input makes {mistake.id} fail with its own name"


def test_catalogue_entries_are_complete_and_unique():
    assert len({m.id for m in CATALOGUE.values()}) == len(CATALOGUE)
    for mistake in CATALOGUE.values():
        assert mistake.title and mistake.explanation and mistake.section.startswith("Chapter")
        text = mistake.describe()
        assert f"[{mistake.id}]" in text and mistake.section in text


def test_an_explanation_is_shortened_only_within_one_notebook(monkeypatch):
    """In a notebook, the second cell naming a mistake refers to the first; a script's explanation shortens nothing."""
    from softgrad.mistakes import catalogue

    mistake = CATALOGUE["softmax-no-max-shift"]
    monkeypatch.setattr(catalogue, "_EXPLAINED", {})
    cells = iter([None, "cell 1", "cell 1", "cell 2"])  # a script, then two cells of a notebook
    monkeypatch.setattr(catalogue, "_current_cell", lambda: next(cells))
    script, first, again, second = (mistake.describe() for _ in range(4))
    assert mistake.explanation.split()[0] in script
    assert first == script, "the first cell of a notebook explains in full, whatever a script printed before"
    assert again == first, "a cell that runs again explains again"
    assert "explained in the first test that found it" in second and mistake.explanation.split()[0] not in second


def test_the_failure_message_says_what_where_and_why():
    def naive(z, axis=-1):
        exps = np.exp(z)
        return exps / exps.sum(axis=axis, keepdims=True)

    with pytest.raises(AssertionError) as failure:
        check_against_reference(naive, reference.softmax, np.array([1000.0, 999.0]), case="large logits")
    message = " ".join(str(failure.value).split())
    assert message.startswith("softmax(z) with z of shape (2,), dtype float64")
    assert "(large logits)" in message
    assert "yours nan, expected 0.731059" in message
    assert "overflow encountered in exp" in message
    assert "[softmax-no-max-shift]" in message and "section 'The max trick'" in message


# ---- call_student: copies, warnings, exceptions ----------------------------------------------

def test_a_function_that_modifies_its_input_fails_even_if_its_result_is_right():
    def in_place(z, axis=-1):
        z -= np.max(z, axis=axis, keepdims=True)
        return student_softmax(z, axis)

    z = np.array([[3.0, 1.0]])
    with pytest.raises(AssertionError, match=r"(?s)modified its input z.*\[mutates-input\]"):
        check_against_reference(in_place, reference.softmax, z)
    np.testing.assert_array_equal(z, [[3.0, 1.0]])  # the caller's array is untouched


def test_warnings_are_captured_not_printed(capfd):
    def noisy(z, axis=-1):
        warnings.warn("a harmless warning from student code", RuntimeWarning, stacklevel=1)
        with np.errstate(over="warn"):
            np.exp(np.array([1000.0]))
        return student_softmax(z, axis)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escapes fails this test
        outcome = call_student(noisy, np.ones(3))
        check_against_reference(noisy, reference.softmax, np.ones(3))
    assert any("harmless" in w for w in outcome.warnings)
    assert any("overflow" in w for w in outcome.warnings)
    assert capfd.readouterr().err == ""


def test_exceptions_say_which_call_failed_on_which_input():
    def unfinished(z, axis=-1):
        raise NotImplementedError()

    def broken(z, axis=-1):
        return z[5]

    with pytest.raises(AssertionError, match=r"replace\s+`raise\s+NotImplementedError\(\)`"):
        check_against_reference(unfinished, reference.softmax, np.ones(3))
    with pytest.raises(AssertionError, match=r"(?s)softmax\(z,\s+axis=0\)\s+raised\s+IndexError.*shape\s+\(3,\)"):
        check_against_reference(broken, reference.softmax, np.ones(3), axis=0)


def test_an_error_is_named_when_a_known_mistake_raises_the_same_one():
    def no_keepdims(z, axis=-1):
        exps = np.exp(z - np.max(z, axis=axis, keepdims=True))
        return exps / np.sum(exps, axis=axis)

    with pytest.raises(AssertionError, match=r"(?s)ValueError.*\[missing-keepdims\]"):
        check_against_reference(no_keepdims, reference.softmax, np.ones((2, 3)))


# ---- result_problem: type, shape, dtype --------------------------------------------------------

class Sneaky(np.ndarray):
    def __eq__(self, other):  # an object that claims to equal everything
        return True


@pytest.mark.parametrize(("value", "shape", "dtype", "expected"), [
    ([0.5, 0.5], (2,), np.float64, "returned a list"),
    (None, (2,), np.float64, "returned None (is a `return` missing?)"),
    (np.zeros(2).view(Sneaky), (2,), np.float64, "subclass of np.ndarray"),
    (np.zeros((2, 1)), (2,), np.float64, "keepdims=True was used"),
    (np.zeros(6), (2, 3), np.float64, "number of entries is right"),
    (np.zeros((3, 2)), (2, 3), np.float64, "transposed shape"),
    (np.zeros(2), (2,), np.float32, "np.eye, np.zeros and np.ones make float64"),
    (np.zeros(2, dtype=np.int64), (2,), np.float64, "expected a floating-point array"),
    (np.zeros(2, dtype=np.float64), (2,), np.float32, "but its input has dtype float32"),
    (1.5, (), np.float32, "returned a float"),
])
def test_result_problems_are_explained(value, shape, dtype, expected):
    problem = result_problem(value, shape=shape, dtype=np.dtype(dtype))
    assert problem is not None and expected in problem


@pytest.mark.parametrize("value", [np.zeros(2), np.float64(0.5), 0.5])
def test_valid_results_have_no_problem(value):
    shape = np.shape(value)
    assert result_problem(value, shape=shape, dtype=np.dtype(np.float64)) is None


def test_forward_tolerance_matches_its_docstring():
    assert forward_tolerance(np.float64, 10, 1000.0) == pytest.approx(8.9e-13, rel=0.01)
    assert forward_tolerance(np.float32, 10, 1000.0) == pytest.approx(4.8e-4, rel=0.01)


def test_float16_tolerance_still_separates_the_mistakes_from_the_truth():
    """In float16 the allowance is wide; an arg max or a bare maximum must still fail."""
    z = np.array([12.0, 11.5, 11.0], dtype=np.float16)

    def one_hot(z, axis=-1):
        return (z == z.max(axis=axis, keepdims=True)).astype(z.dtype)

    def maximum(z, axis=-1):
        return z.max(axis=axis)

    with pytest.raises(AssertionError):
        check_against_reference(one_hot, reference.softmax, z)
    with pytest.raises(AssertionError):
        check_against_reference(maximum, reference.logsumexp, z)
    check_against_reference(student_softmax, reference.softmax, z)
    check_against_reference(student_logsumexp, reference.logsumexp, z)


# ---- gradients, Jacobians and memory of student functions ------------------------------------

def student_vjp(z, g, axis=-1):
    p = student_softmax(z, axis)
    return p * (g - np.sum(g * p, axis=axis, keepdims=True))


def test_check_gradient_function_accepts_a_right_vjp_and_names_wrong_ones():
    rng = np.random.default_rng(8)
    z, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    for axis in (-1, 0):
        check_gradient_function(student_vjp, reference.softmax_weighted_sum, z, g, axis=axis,
                                name="softmax_vjp", arg_names=("z", "g"))

    def over_batch(z, g, axis=-1):
        p = student_softmax(z, axis)
        return p * (g - np.sum(g * p))

    with pytest.raises(AssertionError) as failure:
        check_gradient_function(over_batch, reference.softmax_weighted_sum, z, g,
                                name="softmax_vjp", arg_names=("z", "g"))
    assert "[vjp-inner-product-over-batch]" in " ".join(str(failure.value).split())


def test_check_gradient_function_checks_shape_before_values():
    z, g = np.ones((2, 3)), np.ones((2, 3))
    with pytest.raises(AssertionError, match="shape"):
        check_gradient_function(lambda z, g, axis=-1: z[0], reference.softmax_weighted_sum, z, g,
                                name="softmax_vjp", arg_names=("z", "g"))


def test_check_jacobian_function_names_the_diagonal_only_mistake():
    z = np.array([[0.5, -1.0, 2.0]])

    def right(z):
        p = student_softmax(z)
        return p[..., :, None] * (np.eye(3) - p[..., None, :])

    def diagonal(z):
        p = student_softmax(z)
        return p[..., :, None] * (1 - p[..., :, None]) * np.eye(3)

    check_jacobian_function(right, reference.softmax, z, name="softmax_jacobian")
    with pytest.raises(AssertionError) as failure:
        check_jacobian_function(diagonal, reference.softmax, z, name="softmax_jacobian")
    assert "[jacobian-diagonal-only]" in " ".join(str(failure.value).split())


def test_check_peak_memory_catches_a_vjp_that_builds_the_jacobian():
    rng = np.random.default_rng(9)
    z, g = rng.normal(size=2000), rng.normal(size=2000)

    def through_jacobian(z, g, axis=-1):
        return g @ reference.softmax_jacobian(z)

    check_peak_memory(student_vjp, z, g, name="softmax_vjp", arg_names=("z", "g"),
                      limit=16 * z.nbytes, explanation="16 arrays of the size of z")
    with pytest.raises(AssertionError) as failure:
        check_peak_memory(through_jacobian, z, g, name="softmax_vjp", arg_names=("z", "g"),
                          limit=16 * z.nbytes, explanation="16 arrays of the size of z",
                          mistake=CATALOGUE["vjp-builds-jacobian"])
    message = " ".join(str(failure.value).split())
    assert "MB at its peak" in message and "[vjp-builds-jacobian]" in message


def test_running_out_of_memory_is_explained():
    def hopeless(z, g, axis=-1):
        return np.diag(z) @ g

    z = np.ones(3_000_000)
    with pytest.raises(AssertionError) as failure:
        check_against_reference(hopeless, reference.softmax_vjp, z, z, arg_names=("z", "g"))
    message = " ".join(str(failure.value).split())
    assert "ran out of memory" in message and "[vjp-builds-jacobian]" in message


def _derivative_cases():
    for name in ("softmax_vjp", "softmax_jacobian"):
        for mistake, implementations in suspects(name).items():
            if mistake.id == "vjp-builds-jacobian":
                continue  # right values: recognised by its memory, tested above
            for k, implementation in enumerate(implementations):
                yield pytest.param(name, mistake, implementation, id=f"{name}-{mistake.id}-{k}")


@pytest.mark.parametrize(("name", "mistake", "implementation"), list(_derivative_cases()))
def test_every_catalogued_wrong_derivative_is_rejected_and_named(name, mistake, implementation):
    rng = np.random.default_rng(10)
    cases = [rng.normal(size=(3, 4))] + [logits for _, logits, _ in hard_logits(4)]
    messages = []
    for z in cases:
        g = rng.normal(size=z.shape).astype(z.dtype)
        for axis in (-1, 0):
            try:
                if name == "softmax_vjp":
                    check_against_reference(implementation, reference.softmax_vjp, z, g, axis=axis,
                                            arg_names=("z", "g"), mistakes={mistake: [implementation]})
                    check_gradient_function(implementation, reference.softmax_weighted_sum, z, g, axis=axis,
                                            name=name, arg_names=("z", "g"))
                elif axis == -1:
                    check_against_reference(implementation, reference.softmax_jacobian, z,
                                            mistakes={mistake: [implementation]})
                    check_jacobian_function(implementation, reference.softmax, z, name=name)
            except AssertionError as failure:
                messages.append(" ".join(str(failure).split()))
    # code that makes two mistakes at once (a log of a probability shifted by the batch's maximum) is
    # named for the one that explains its result alone: either is true
    made = {mistake.id, *getattr(implementation, "__softgrad_also__", ())}
    assert any(f"[{made_id}]" in m for m in messages for made_id in made), messages


# ---- chapter 3: every catalogued cross-entropy mistake is named by the check the tests use ----

def _cross_entropy_cases():
    for name in ("cross_entropy", "cross_entropy_grad", "softmax_regression_loss_and_grad"):
        for mistake, implementations in suspects(name).items():
            for k, implementation in enumerate(implementations):
                yield pytest.param(name, mistake, implementation, id=f"{name}-{mistake.id}-{k}")


@pytest.mark.parametrize(("name", "mistake", "implementation"), list(_cross_entropy_cases()))
def test_every_catalogued_cross_entropy_mistake_is_rejected_and_named(name, mistake, implementation):
    rng = np.random.default_rng(11)
    logits, labels = rng.normal(scale=2.0, size=(5, 5)), rng.integers(0, 5, size=5)
    soft = rng.dirichlet(np.ones(5), size=5)
    confident = np.array([[1000.0, 0.0, 0.0, 0.0, 0.0], [0.0, 800.0, 0.0, 0.0, 0.0]])
    messages = []

    def attempt(check, *args, **kwargs):
        try:
            check(*args, **kwargs)
        except AssertionError as failure:
            messages.append(" ".join(str(failure).split()))

    if name == "cross_entropy":
        for target, eps in ((labels, 0.0), (soft, 0.2), (labels, 0.2)):
            attempt(check_against_reference, implementation, reference.cross_entropy, logits, target,
                    label_smoothing=eps, arg_names=("logits", "target"), strict_dtype=False)
        attempt(check_against_reference, implementation, reference.cross_entropy, confident,
                np.array([2, 0]), arg_names=("logits", "target"), strict_dtype=False)
    elif name == "cross_entropy_grad":
        for target, eps in ((labels, 0.0), (soft, 0.2), (labels, 0.2)):
            attempt(check_gradient_function, implementation, reference.cross_entropy, logits, target,
                    label_smoothing=eps, name=name, arg_names=("logits", "target"), batch_size=5)
        attempt(check_against_reference, implementation, reference.cross_entropy_grad,
                np.array([[0.0, -800.0]]), np.array([1]), arg_names=("logits", "target"))
    else:
        W, b, X = rng.normal(size=(5, 5)), rng.normal(size=5), rng.normal(size=(6, 5))
        attempt(check_loss_and_gradients, implementation, reference.softmax_regression_loss,
                W, b, X, labels[:5].repeat(2)[:6], reg=0.3, name=name, wrt=(0, 1),
                output_names=("dW", "db"), arg_names=("W", "b", "X", "y"), batch_size=6)
    for case, hard, hard_labels in hard_logits(5):  # the inputs that expose a student's own unstable softmax
        if name == "cross_entropy":
            attempt(check_against_reference, implementation, reference.cross_entropy, hard, hard_labels,
                    arg_names=("logits", "target"), strict_dtype=False, case=case)
        elif name == "cross_entropy_grad":
            attempt(check_against_reference, implementation, reference.cross_entropy_grad, hard, hard_labels,
                    arg_names=("logits", "target"), case=case)
        else:
            W, b, X = linear_inputs(hard, features=6)
            attempt(check_loss_and_gradients, implementation, reference.softmax_regression_loss,
                    W, b, X, hard_labels, reg=0.3, name=name, wrt=(0, 1), output_names=("dW", "db"),
                    arg_names=("W", "b", "X", "y"), reference=reference.softmax_regression_loss_and_grad, case=case)
    # code that makes two mistakes at once (a log of a probability shifted by the batch's maximum) is
    # named for the one that explains its result alone: either is true
    made = {mistake.id, *getattr(implementation, "__softgrad_also__", ())}
    assert any(f"[{made_id}]" in m for m in messages for made_id in made), messages


# ---- tolerances and messages shared by every assignment ---------------------------------------

def test_integer_targets_do_not_widen_the_tolerance():
    from softgrad.testing.core import _judge
    from softgrad.testing.diagnosis import Evidence

    def judge(value, *args):
        _judge(value, np.array(1.0), what="f(x)", dtype=np.dtype(np.float64), strict_dtype=False,
               evidence=Evidence({}, args), warnings_seen=[])

    logits = np.zeros((2, 3))
    off = 1.0 + 100 * forward_tolerance(np.float64, 3, 0.0, 1.0)  # far outside the tolerance of these logits
    with pytest.raises(AssertionError, match="correct value"):
        judge(off, logits, np.array([0, 10**9]))  # class indices say nothing about rounding
    judge(off, np.array([0, 10**9]))  # integer data (logits) alone still set the scale


def test_a_float32_online_logsumexp_that_keeps_the_first_maximum_is_named():
    from softgrad.testing import check_online_logsumexp

    def first_max_kept(chunks):
        m = s = None
        for chunk in chunks:
            if m is None:
                m, s = chunk.max(axis=-1), np.zeros(chunk.shape[0], dtype=chunk.dtype)
            s = s + np.exp(chunk - m[:, None]).sum(axis=-1)
        return m + np.log(s)

    chunks = [np.array([[-150.0, 0.0]], dtype=np.float32), np.array([[120.0, 110.0]], dtype=np.float32)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(AssertionError) as failure:
            check_online_logsumexp(first_max_kept, chunks)
    assert "[online-max-not-updated]" in " ".join(str(failure.value).split())


def test_a_generator_argument_is_described_in_memory_messages():
    def lists_them(chunks):
        return np.concatenate(list(chunks), axis=-1).max(axis=-1)

    logits = np.random.default_rng(12).normal(size=(16, 1024))
    with pytest.raises(AssertionError) as failure:
        check_peak_memory(lists_them, (logits[:, i:i + 64].copy() for i in range(0, 1024, 64)),
                          name="online_logsumexp", arg_names=("chunks",), limit=4096, explanation="a few chunks",
                          case="16 chunks of 64 columns")
    message = " ".join(str(failure.value).split())
    assert "online_logsumexp(chunks) with chunks, a one-shot generator (16 chunks of 64 columns) allocated" in message
