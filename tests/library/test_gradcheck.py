"""softgrad.gradcheck: the checker accepts right gradients and rejects wrong ones, with useful messages."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgrad import i18n, reference
from softgrad.gradcheck import (
    EPS64,
    GRADIENT_RTOL,
    check_directional_derivatives,
    check_gradient,
    check_jacobian,
    default_step,
    directional_derivative,
    numerical_gradient,
    numerical_jacobian,
    relative_error,
    roundoff_floor,
)
from softgrad.mistakes import CATALOGUE, Mistake

# ---- a few trusted functions with gradients known in closed form -----------------------------


def weighted_softmax(weights):
    """f(z) = sum(w * softmax(z)) and its gradient p * (w - <w, p>) along the last axis."""

    def f(z):
        return float(np.sum(weights * reference.softmax(z)))

    def grad(z):
        p = reference.softmax(z)
        return p * (weights - np.sum(weights * p, axis=-1, keepdims=True))

    return f, grad


def cubic(x):
    return float(np.sum(x**3 - 2.0 * x))


def cubic_grad(x):
    return 3.0 * x**2 - 2.0


# ---- the numerical building blocks ------------------------------------------------------------


def test_default_step_is_cube_root_of_eps_scaled_by_magnitude():
    assert default_step(0.5) == pytest.approx(EPS64 ** (1 / 3))
    assert default_step(-1000.0) == pytest.approx(1000.0 * EPS64 ** (1 / 3))
    assert default_step(1.0, np.float32) == pytest.approx(float(np.finfo(np.float32).eps) ** (1 / 3))


def test_numerical_gradient_of_a_cubic_is_accurate_and_leaves_x_alone():
    x = np.array([[0.5, -1.5], [2.0, 3.0]])
    before = x.copy()
    g = numerical_gradient(cubic, x)
    assert g.shape == x.shape and g.dtype == np.float64
    np.testing.assert_allclose(g, cubic_grad(x), rtol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_central_difference_error_is_second_order_in_the_step():
    """Halving h divides the truncation error by about 4 (while h is far above round-off)."""
    x = np.array([0.7])
    exact = cubic_grad(x)[0]
    errors = [abs(numerical_gradient(cubic, x, step=h)[0] - exact) for h in (1e-2, 5e-3)]
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.01)


def test_directional_derivative_matches_inner_product_with_gradient():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    v = rng.normal(size=(3, 4))
    assert directional_derivative(cubic, x, v) == pytest.approx(float(np.vdot(cubic_grad(x), v)), rel=1e-8)


def test_directional_derivative_rejects_mismatched_or_zero_directions():
    with pytest.raises(ValueError, match="shape"):
        directional_derivative(cubic, np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match="zero"):
        directional_derivative(cubic, np.zeros(3), np.zeros(3))


def test_numerical_gradient_rejects_non_scalar_functions_and_non_finite_points():
    with pytest.raises(ValueError, match="scalar"):
        numerical_gradient(lambda x: x * 2.0, np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        numerical_gradient(cubic, np.array([1.0, np.nan]))


def test_relative_error_basic_values():
    a = np.array([1.0, 2.0, 2.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a, -a) == pytest.approx(2.0)
    assert relative_error(a, np.zeros(3)) == pytest.approx(1.0)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(2 * a, a) == pytest.approx(0.5)
    assert relative_error(np.array([1e-20]), np.array([0.0]), floor=1e-10) == pytest.approx(1e-10)


def test_roundoff_floor_grows_with_the_function_value_and_shrinks_with_the_step():
    assert roundoff_floor(10.0, 1e-5) == pytest.approx(10 * roundoff_floor(1.0, 1e-5))
    assert roundoff_floor(1.0, 1e-6) == pytest.approx(10 * roundoff_floor(1.0, 1e-5))


# ---- check_gradient: accepts right gradients -------------------------------------------------


def test_check_gradient_accepts_the_softmax_vjp_and_reports_the_error():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(4, 5))
    f, grad = weighted_softmax(w)
    z = rng.normal(scale=3.0, size=(4, 5))
    report = check_gradient(f, grad(z), z, name="d/dz sum(w * softmax(z))")
    assert report.relative_error < 1e-8
    assert report.method == "full central differences"
    assert "relative error" in str(report)


def test_check_gradient_uses_directional_derivatives_for_large_inputs():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(200, 30))
    f, grad = weighted_softmax(w)
    z = rng.normal(size=(200, 30))
    report = check_gradient(f, grad(z), z)
    assert report.method == "directional derivatives"
    assert report.evaluations == 24
    assert report.relative_error < 1e-7


def test_a_zero_gradient_is_accepted_when_the_function_is_flat():
    """sum(softmax(z)) is 1 for every z: its gradient is exactly zero, and zero must pass."""
    z = np.array([[1.0, -2.0, 0.5]])
    check_gradient(lambda z: float(np.sum(reference.softmax(z))), np.zeros_like(z), z)


# ---- check_gradient: rejects wrong gradients, and says why ----------------------------------


@pytest.fixture
def softmax_case():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(3, 3))
    f, grad = weighted_softmax(w)
    z = rng.normal(scale=2.0, size=(3, 3))
    return f, grad(z), z


def test_a_sign_flip_is_rejected_and_named(softmax_case):
    f, g, z = softmax_case
    with pytest.raises(AssertionError, match=r"sign\s+is\s+flipped") as failure:
        check_gradient(f, -g, z)
    assert "Relative error 2.00e+00" in " ".join(str(failure.value).split())


def test_a_missing_batch_division_is_rejected_and_named(softmax_case):
    f, g, z = softmax_case
    with pytest.raises(AssertionError, match=r"missing\s+division\s+by\s+N"):
        check_gradient(f, 3.0 * g, z, batch_size=3)


def test_a_transposed_gradient_is_rejected_and_named(softmax_case):
    f, g, z = softmax_case
    with pytest.raises(AssertionError, match="transpose"):
        check_gradient(f, g.T, z)


def test_the_worst_entries_are_located(softmax_case):
    f, g, z = softmax_case
    wrong = g.copy()
    wrong[2, 1] += 0.5
    with pytest.raises(AssertionError) as failure:
        check_gradient(f, wrong, z)
    message = str(failure.value)
    first_row = next(line for line in message.splitlines() if "yours" in line)
    assert first_row.strip().startswith("[2, 1]:")


def test_a_named_mistake_is_recognised(softmax_case):
    f, g, z = softmax_case
    p = reference.softmax(z)
    diagonal_only = Mistake("test-diagonal-only", "diagonal only", "explanation", "03_jacobian",
                            "A widely copied wrong derivation")
    wrong = p * (1 - p) * 0.7  # any wrong gradient will do; the candidate says what it would be
    with pytest.raises(AssertionError, match=r"\[test-diagonal-only\]"):
        check_gradient(f, wrong, z, mistakes={diagonal_only: lambda: wrong.copy()})


def test_wrong_type_shape_and_non_finite_gradients_get_clear_messages(softmax_case):
    f, g, z = softmax_case
    with pytest.raises(AssertionError, match=r"NumPy\s+array"):
        check_gradient(f, g.tolist(), z)
    with pytest.raises(AssertionError, match=r"has\s+shape"):
        check_gradient(f, g[:2], z)
    bad = g.copy()
    bad[0, 0] = np.nan
    with pytest.raises(AssertionError, match="non-finite"):
        check_gradient(f, bad, z)


def test_directional_check_rejects_and_names_a_scaled_gradient():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(100, 10))
    f, grad = weighted_softmax(w)
    z = rng.normal(size=(100, 10))
    check_directional_derivatives(f, grad(z), z)
    with pytest.raises(AssertionError, match=r"missing\s+division\s+by\s+N"):
        check_directional_derivatives(f, 100 * grad(z), z, batch_size=100)
    with pytest.raises(AssertionError, match=r"sign\s+is\s+flipped"):
        check_directional_derivatives(f, -grad(z), z)


# ---- property-based: over shapes and scales -------------------------------------------------

shapes = st.tuples(st.integers(1, 5), st.integers(2, 7))
scales = st.sampled_from([1e-3, 0.1, 1.0, 10.0, 100.0])


@settings(max_examples=40, deadline=None)
@given(shape=shapes, scale=scales, seed=st.integers(0, 2**32 - 1))
def test_property_correct_softmax_gradients_pass(shape, scale, seed):
    rng = np.random.default_rng(seed)
    f, grad = weighted_softmax(rng.normal(size=shape))
    z = rng.normal(scale=scale, size=shape)
    g = grad(z)
    report = check_gradient(f, g, z)  # raises if the check rejects a correct gradient
    # The relative error is within the tolerance unless the gradient is so small (a saturated
    # softmax) that the round-off noise of the differences is a sizeable fraction of it.
    noise = roundoff_floor(f(z), float(np.min(default_step(z)))) * np.sqrt(z.size)
    assert report.relative_error <= GRADIENT_RTOL or np.linalg.norm(g) < noise / GRADIENT_RTOL


@settings(max_examples=40, deadline=None)
@given(shape=shapes, scale=scales, seed=st.integers(0, 2**32 - 1),
       factor=st.sampled_from([-1.0, 0.5, 2.0, 1.01]))
def test_property_scaled_gradients_fail(shape, scale, seed, factor):
    rng = np.random.default_rng(seed)
    f, grad = weighted_softmax(rng.normal(size=shape))
    z = rng.normal(scale=scale, size=shape)
    g = grad(z)
    # A gradient below the round-off floor cannot be told from zero by any numerical check.
    if np.linalg.norm(g) < 1e3 * roundoff_floor(f(z), float(np.min(default_step(z)))):
        return
    with pytest.raises(AssertionError):
        check_gradient(f, factor * g, z)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_property_one_perturbed_entry_fails_and_is_located(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    g = cubic_grad(x)
    index = tuple(int(rng.integers(0, n)) for n in shape)
    g[index] += 1e-3 * (1.0 + abs(g[index]))
    with pytest.raises(AssertionError) as failure:
        check_gradient(cubic, g, x)
    first_row = next(line for line in str(failure.value).splitlines() if "yours" in line)
    assert first_row.strip().startswith("[" + ", ".join(map(str, index)) + "]:")


@settings(max_examples=25, deadline=None)
@given(n=st.integers(600, 3000), seed=st.integers(0, 2**32 - 1), factor=st.sampled_from([-1.0, 0.9, 1.5]))
def test_property_directional_checks_scale_to_large_inputs(n, seed, factor):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    check_gradient(cubic, cubic_grad(x), x)
    with pytest.raises(AssertionError):
        check_gradient(cubic, factor * cubic_grad(x), x)


# ---- Jacobians --------------------------------------------------------------------------------


def test_numerical_jacobian_of_an_elementwise_square_is_diagonal():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    jac = numerical_jacobian(lambda v: v**2, x)
    assert jac.shape == (2, 2, 2, 2)
    expected = np.zeros((2, 2, 2, 2))
    for i in range(2):
        for j in range(2):
            expected[i, j, i, j] = 2 * x[i, j]
    np.testing.assert_allclose(jac, expected, atol=1e-8)


def test_check_jacobian_accepts_the_softmax_jacobian_and_names_a_wrong_one():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(3, 4))
    report = check_jacobian(reference.softmax, reference.softmax_jacobian(z), z)
    assert report.relative_error < 1e-8
    p = reference.softmax(z)
    diagonal = np.einsum("bi,ij->bij", p * (1 - p), np.eye(4))
    marker = Mistake("test-diag", "diagonal only", "explanation", "03_jacobian", "A widely copied wrong derivation")
    with pytest.raises(AssertionError, match=r"\[test-diag\]"):
        check_jacobian(reference.softmax, diagonal, z, mistakes={marker: [lambda: diagonal]})
    with pytest.raises(AssertionError, match=r"sign\s+is\s+flipped"):
        check_jacobian(reference.softmax, -reference.softmax_jacobian(z), z)


def test_reference_vjp_is_the_gradient_of_the_weighted_sum():
    rng = np.random.default_rng(7)
    z, g = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    for axis in (-1, 0):
        check_gradient(lambda v, axis=axis: reference.softmax_weighted_sum(v, g, axis=axis),
                       reference.softmax_vjp(z, g, axis=axis), z)


# ---- the messages in the reader's language -------------------------------------------------------


@pytest.fixture
def language(monkeypatch):
    """Set the language of the messages (``language("zh_CN")``); English, whatever the environment, until then."""
    for name in (i18n.ENVIRONMENT, "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    i18n.use(None)
    yield i18n.use
    i18n.use(None)


def _message(check, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as failure:
        check(*args, **kwargs)
    return str(failure.value)


X = np.array([1.0, 2.0])

# What each check says, in English exactly as it did before the messages were translated (the mutation
# suite matches on these words), and in Chinese.
MESSAGES = {
    "sign flip": (
        lambda: _message(check_gradient, cubic, -cubic_grad(X), X, name="grad(x)"),
        "grad(x) does not match the numerical gradient (central differences in float64).\n"
        "  Relative error 2.00e+00; a correct gradient gives about 4e-11, the limit is\n"
        "    1e-06 (plus 2e-08 in absolute terms for round-off).\n"
        "  Largest differences (the numerical gradient is the expected value):\n"
        "    [1]: yours -10, expected 10\n"
        "    [0]: yours -1, expected 1\n"
        "  Your gradient is exactly the negative of the correct one: a sign is flipped.",
        "grad(x)：与数值梯度（float64 下的中心差分）不一致。\n"
        "  相对误差为 2.00e+00；正确的梯度的相对误差约为 4e-11，上限是 1e-06（舍入误差另\n"
        "    有 2e-08 的绝对容差）。\n"
        "  差异最大的元素（期望值为数值梯度）：\n"
        "    [1]：你的结果 -10，期望值 10\n"
        "    [0]：你的结果 -1，期望值 1\n"
        "  你的梯度恰好是正确结果的相反数：有一个符号反了。",
    ),
    "batch size": (
        lambda: _message(check_gradient, cubic, 4 * cubic_grad(X), X, batch_size=4),
        "the gradient does not match the numerical gradient (central differences in\n"
        "  float64).\n"
        "  Relative error 7.50e-01; a correct gradient gives about 4e-11, the limit is\n"
        "    1e-06 (plus 2e-08 in absolute terms for round-off).\n"
        "  Largest differences (the numerical gradient is the expected value):\n"
        "    [1]: yours 40, expected 10\n"
        "    [0]: yours 4, expected 1\n"
        "  Your gradient is the correct one multiplied by 4. That is the batch size N =\n"
        "    4: a missing division by N?",
        "梯度：与数值梯度（float64 下的中心差分）不一致。\n"
        "  相对误差为 7.50e-01；正确的梯度的相对误差约为 4e-11，上限是 1e-06（舍入误差另\n"
        "    有 2e-08 的绝对容差）。\n"
        "  差异最大的元素（期望值为数值梯度）：\n"
        "    [1]：你的结果 40，期望值 10\n"
        "    [0]：你的结果 4，期望值 1\n"
        "  你的梯度是正确结果乘以 4。这正是批量大小 N = 4：是不是漏了除以 N？",
    ),
    "not an array": (
        lambda: _message(check_gradient, cubic, [1.0, 10.0], X),
        "the gradient should be a NumPy array of shape (2,), but it is a list.",
        "梯度：应当是形状为 (2,) 的 NumPy 数组，但它是 list。",
    ),
    "Jacobian": (
        lambda: _message(check_jacobian, lambda v: v**2, np.diag([4.0, 2.0]), X),
        "the Jacobian does not match the numerical Jacobian (central differences in\n"
        "  float64).\n"
        "  Relative error 6.32e-01; a correct Jacobian gives about 4e-11, the limit is\n"
        "    1e-06 (plus 3e-08 in absolute terms for round-off).\n"
        "  Largest differences (the numerical Jacobian is the expected value):\n"
        "    [0, 0]: yours 4, expected 2\n"
        "    [1, 1]: yours 2, expected 4",
        "雅可比矩阵：与数值雅可比矩阵（float64 下的中心差分）不一致。\n"
        "  相对误差为 6.32e-01；正确的雅可比矩阵的相对误差约为 4e-11，上限是 1e-06（舍入\n"
        "    误差另有 3e-08 的绝对容差）。\n"
        "  差异最大的元素（期望值为数值雅可比矩阵）：\n"
        "    [0, 0]：你的结果 4，期望值 2\n"
        "    [1, 1]：你的结果 2，期望值 4",
    ),
}


@pytest.mark.parametrize("case", MESSAGES)
def test_the_messages_are_english_byte_for_byte_and_chinese_when_asked(language, case):
    message, english, chinese = MESSAGES[case]
    assert message() == english
    language("zh_CN")
    assert message() == chinese


def test_every_diagnosis_and_the_directional_check_speak_chinese(language, softmax_case):
    f, g, z = softmax_case
    language("zh_CN")
    texts = {
        "1/N": _message(check_gradient, f, g / 3, z, batch_size=3),
        "zero": _message(check_gradient, f, np.zeros_like(g), z),
        "transposed": _message(check_gradient, f, g.T, z),
        "shape": _message(check_gradient, f, g[:2], z),
        "dtype": _message(check_gradient, f, g.astype(complex), z),
        "nan": _message(check_gradient, f, np.where(np.eye(3, dtype=bool), np.nan, g), z),
        "scalar": _message(check_gradient, lambda v: float(v) ** 3, np.array(1.0), np.array(2.0)),
    }
    rng = np.random.default_rng(5)
    w = rng.normal(size=(100, 10))
    big_f, big_grad = weighted_softmax(w)
    big_z = rng.normal(size=(100, 10))
    texts["directional"] = _message(check_directional_derivatives, big_f, 100 * big_grad(big_z), big_z, batch_size=100)
    said = {key: "".join(text.split()) for key, text in texts.items()}  # Chinese lines wrap without spaces
    assert "这正是批量大小N=3的倒数1/N：是不是多除了一次N？" in said["1/N"]
    assert "你的梯度处处为零（或在数值上为零），但真正的梯度并非如此" in said["zero"]
    assert said["transposed"].endswith("你的梯度是正确结果的转置。")
    assert "梯度：形状是(2,3)，但以形状为(3,3)的数组为自变量的函数" in said["shape"]
    assert said["dtype"] == "梯度：dtype是complex128；梯度的元素必须是实数浮点数。"
    assert said["nan"].startswith("梯度：含有3个非有限值（nan或inf），第一个位于索引[0,0]。")
    assert "值：你的结果1，期望值12" in said["scalar"]
    assert said["directional"].startswith("梯度：与损失的数值导数不一致（在float64下沿6个随机方向、在6个随机元素处")
    assert "方向0：<你的梯度，v>=" in said["directional"] and "元素[30,9]：你的结果" in said["directional"]
    assert "这正是批量大小N=100：是不是漏了除以N？" in said["directional"]
    for key, text in texts.items():
        assert not re.search(r"\b(yours|expected|Your|does not|Relative|gradient)\b", text), (key, text)


def _sum_scaled(v):
    """f(v) = v * sum(v): a row function whose Jacobian, sum(v) I + v 1^T, is not symmetric."""
    return v * np.sum(v)


@pytest.mark.parametrize("chosen", ["en", "zh_CN"])
def test_jacobian_and_directional_checks_name_no_transposition_in_either_language(language, chosen):
    language(chosen)
    transposed = CATALOGUE["gradient-transposed"]
    other = Mistake("test-other", "another mistake", "explanation", "03_jacobian", "The Jacobian of softmax")
    v = np.array([1.0, 2.0, -0.5])
    jacobian = np.sum(v) * np.eye(3) + np.outer(v, np.ones(3))
    # the generic pattern: a transposed Jacobian is not called one
    message = _message(check_jacobian, _sum_scaled, jacobian.T, v)
    assert re.match(r"    \[0, 2\][:：]", message.splitlines()[-1]), "the worst entries, and no diagnosis after them"
    assert "transpose" not in message and "转置" not in message
    # a known mistake whose id names a transposition is left out, the others are kept, the same in both languages
    rng = np.random.default_rng(5)
    big_f, big_grad = weighted_softmax(rng.normal(size=(100, 10)))
    big_z = rng.normal(size=(100, 10))
    named = _message(check_directional_derivatives, big_f, 2 * big_grad(big_z), big_z,
                     explain=lambda *args: [transposed.describe(), other.describe()])
    assert "[test-other]" in named and "[gradient-transposed]" not in named
    alone = _message(check_directional_derivatives, big_f, -big_grad(big_z), big_z,
                     explain=lambda *args: [transposed.describe()])
    assert "[gradient-transposed]" not in alone
    assert re.match(r"    (entry|元素) \[", alone.splitlines()[-1]), "a mistake left out leaves no generic line instead"


@pytest.mark.parametrize("chosen", ["en", "zh_CN"])
def test_the_gradient_check_names_a_transposition(language, softmax_case, chosen):
    f, g, z = softmax_case
    language(chosen)
    transposed = CATALOGUE["gradient-transposed"]
    assert "[gradient-transposed]" in _message(check_gradient, f, g.T, z, explain=lambda *args: [transposed.describe()])
    said = {"en": "  Your gradient is the transpose of the correct one.", "zh_CN": "  你的梯度是正确结果的转置。"}
    assert _message(check_gradient, f, g.T, z).splitlines()[-1] == said[chosen]
