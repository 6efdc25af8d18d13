"""softgrad.scale: the fast kernels, online log-sum-exp and chunked cross-entropy, against the references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgrad import reference, scale
from softgrad.gradcheck import check_gradient
from softgrad.measure import peak_memory


def _logits(rng, n, c, dtype=np.float64, scale_=3.0):
    z = (scale_ * rng.standard_normal((n, c))).astype(dtype)
    return z


# Rows that need the max shift (huge, all very negative) next to rows that do not.
EXTREME_ROWS = np.array([[1000.0, 999.0, 0.0, -5.0], [-1000.0, -1001.0, -1003.0, -1000.5],
                         [0.5, 2.0, 1.0, 0.0], [88.0, 87.0, -88.0, 0.0], [-50.0, -60.0, -55.0, -70.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("always_shift", [False, True])
def test_fused_cross_entropy_agrees_with_the_reference(dtype, threads, always_shift):
    rng = np.random.default_rng(0)
    z = _logits(rng, 37, 53, dtype)
    z[:5, :4] = EXTREME_ROWS
    y = rng.integers(0, 53, size=37)
    before = z.copy()
    loss, grad = scale.softmax_cross_entropy_fused(z, y, threads=threads, block_rows=4, always_shift=always_shift)
    eps = np.finfo(dtype).eps
    assert np.array_equal(z, before), "the logits must not be modified"
    assert grad.dtype == dtype and grad.shape == z.shape
    assert abs(loss - reference.cross_entropy(z, y)) <= 50 * eps * max(1.0, abs(loss)) * 1000
    np.testing.assert_allclose(grad, reference.cross_entropy_grad(z, y), rtol=0, atol=20 * eps / 37)


@pytest.mark.parametrize("function", [scale.softmax_cross_entropy_stable, scale.softmax_cross_entropy_fused])
def test_cross_entropy_versions_are_stable_for_huge_logits(function):
    y = np.array([0, 2, 1, 3, 1])
    loss, grad = function(EXTREME_ROWS, y)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(reference.cross_entropy(EXTREME_ROWS, y), rel=1e-12)
    np.testing.assert_allclose(grad, reference.cross_entropy_grad(EXTREME_ROWS, y), atol=1e-15)


def test_fused_kernels_keep_full_precision_near_the_overflow_threshold():
    # One column of float32 logits at 87: the unshifted row sum (about 6e37) is finite and at
    # least 1, but 1 / (N * sum) would be subnormal and the gradient would lose digits. Rows
    # like these must take the shifted path, which is exact to rounding.
    rng = np.random.default_rng(9)
    z = rng.standard_normal((4096, 16)).astype(np.float32)
    z[:, 3] = 87.0
    y = rng.integers(0, 16, size=4096)
    tiny = np.finfo(np.float32).tiny  # entries below it are subnormal in both versions
    loss, grad = scale.softmax_cross_entropy_fused(z, y)
    shifted_loss, shifted = scale.softmax_cross_entropy_fused(z, y, always_shift=True)
    np.testing.assert_allclose(grad, shifted, rtol=1e-6, atol=tiny)
    assert loss == pytest.approx(shifted_loss, rel=1e-6)
    g = rng.standard_normal(z.shape).astype(np.float32)
    p, dz = scale.softmax_forward_backward_fused(z + np.float32(1.0), g)  # sums up to about 2e38
    np.testing.assert_allclose(p, reference.softmax(z.astype(np.float64) + 1.0), rtol=1e-6, atol=tiny)
    np.testing.assert_allclose(dz, reference.softmax_vjp(z.astype(np.float64) + 1.0, g.astype(np.float64)),
                               rtol=1e-5, atol=1e-6)


def test_naive_cross_entropy_overflows_where_the_fused_one_does_not():
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, _ = scale.softmax_cross_entropy_naive(EXTREME_ROWS, np.array([0, 2, 1, 3, 1]))
    assert not np.isfinite(loss)


def test_fused_cross_entropy_rejects_bad_targets():
    with pytest.raises(ValueError, match="target"):
        scale.softmax_cross_entropy_fused(np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("function", [scale.softmax_forward_backward_stable, scale.softmax_forward_backward_fused])
def test_softmax_forward_backward_agrees_with_the_reference(function):
    rng = np.random.default_rng(1)
    z, g = _logits(rng, 21, 17), rng.standard_normal((21, 17))
    z[:5, :4] = EXTREME_ROWS
    p, dz = function(z, g)
    np.testing.assert_allclose(p, reference.softmax(z), atol=1e-15)
    np.testing.assert_allclose(dz, reference.softmax_vjp(z, g), atol=1e-14)


def test_fused_softmax_vjp_is_the_gradient_of_the_weighted_sum():
    rng = np.random.default_rng(2)
    z, g = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    _, dz = scale.softmax_forward_backward_fused(z, g, threads=2, block_rows=1)
    check_gradient(lambda x: reference.softmax_weighted_sum(x, g), dz, z, name="fused VJP")


# ---- online log-sum-exp ---------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(widths=st.lists(st.integers(1, 6), min_size=1, max_size=7), offsets=st.lists(
    st.sampled_from([-1000.0, -50.0, 0.0, 30.0, 700.0]), min_size=7, max_size=7), seed=st.integers(0, 2**16))
def test_online_logsumexp_matches_the_reference_for_any_chunking(widths, offsets, seed):
    rng = np.random.default_rng(seed)
    chunks = [rng.standard_normal((3, w)) + offsets[i] for i, w in enumerate(widths)]
    expected = reference.logsumexp(np.concatenate(chunks, axis=1))
    got = scale.online_logsumexp(c for c in chunks)  # a one-shot generator
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_combine_is_associative_and_commutative():
    rng = np.random.default_rng(3)
    a, b, c = (scale.logsumexp_partial(rng.standard_normal((4, 5)) + shift) for shift in (0.0, 400.0, -300.0))

    def value(state):
        return state[0] + np.log(state[1])

    left = value(scale.logsumexp_combine(scale.logsumexp_combine(a, b), c))
    right = value(scale.logsumexp_combine(a, scale.logsumexp_combine(b, c)))
    swapped = value(scale.logsumexp_combine(c, scale.logsumexp_combine(b, a)))
    np.testing.assert_allclose(left, right, rtol=1e-14)
    np.testing.assert_allclose(left, swapped, rtol=1e-14)


def test_online_logsumexp_keeps_float32_and_needs_a_chunk():
    chunks = [np.array([[100.0, 0.0]], dtype=np.float32), np.array([[95.0]], dtype=np.float32)]
    got = scale.online_logsumexp(chunks)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    with pytest.raises(ValueError, match="at least one chunk"):
        scale.online_logsumexp(iter([]))


def test_online_logsumexp_reads_a_stream_without_holding_it():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((32, 8192))
    views = [logits[:, i:i + 128] for i in range(0, 8192, 128)]
    _, peak = peak_memory(scale.online_logsumexp, (v for v in views))
    assert peak < 8 * 32 * 128 * 8, f"{peak} bytes: more than a few chunks"
    _, joined = peak_memory(lambda c: reference.logsumexp(np.concatenate(list(c), axis=1)), (v for v in views))
    assert joined > logits.nbytes  # the measurement sees materialisation


# ---- chunked linear cross-entropy -----------------------------------------------------------------

@pytest.mark.parametrize("chunk_size", [1, 3, 7, 16, 100])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chunked_linear_cross_entropy_agrees_with_the_reference(chunk_size, dtype):
    rng = np.random.default_rng(5)
    h, W = rng.standard_normal((9, 4)).astype(dtype), (2 * rng.standard_normal((4, 16))).astype(dtype)
    target = rng.integers(0, 16, size=9)
    target[0] = 15
    loss, dh, dW = scale.chunked_linear_cross_entropy(h, W, target, chunk_size)
    expected = reference.linear_cross_entropy_and_grad(h, W, target)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert dh.dtype == dtype and dW.dtype == dtype
    assert loss == pytest.approx(expected[0], rel=tolerance)
    np.testing.assert_allclose(dh, expected[1], atol=tolerance)
    np.testing.assert_allclose(dW, expected[2], atol=tolerance)


def test_chunked_gradients_pass_a_numerical_check_with_extreme_logits():
    rng = np.random.default_rng(6)
    h = rng.standard_normal((5, 3))
    W = rng.standard_normal((3, 12)) * np.repeat([300.0, 1.0, 30.0], 4)
    target = np.array([0, 5, 11, 3, 8])
    _, dh, dW = scale.chunked_linear_cross_entropy(h, W, target, 4)
    check_gradient(lambda x: reference.linear_cross_entropy(x, W, target), dh, h, name="dh")
    check_gradient(lambda x: reference.linear_cross_entropy(h, x, target), dW, W, name="dW")


def test_chunked_linear_cross_entropy_needs_far_less_memory_than_the_logits():
    rng = np.random.default_rng(7)
    h, W = rng.standard_normal((64, 8)), rng.standard_normal((8, 16384))
    target = rng.integers(0, 16384, size=64)
    (_, dh, dW), peak = peak_memory(scale.chunked_linear_cross_entropy, h, W, target, 256)
    _, naive = peak_memory(scale.linear_cross_entropy_naive, h, W, target)
    logits_bytes = 64 * 16384 * 8
    assert peak < dh.nbytes + dW.nbytes + 12 * 64 * 256 * 8
    assert naive > 2 * logits_bytes > 2 * peak


def test_chunked_linear_cross_entropy_checks_its_arguments():
    with pytest.raises(ValueError, match="chunk_size"):
        scale.chunked_linear_cross_entropy(np.zeros((2, 3)), np.zeros((3, 4)), np.array([0, 1]), 0)
    with pytest.raises(ValueError, match="W"):
        scale.chunked_linear_cross_entropy(np.zeros((2, 3)), np.zeros((4, 4)), np.array([0, 1]), 2)


# ---- PyTorch versions, on the CPU (the same code runs on any device) ------------------------------

def test_torch_versions_agree_with_numpy():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(8)
    z = _logits(rng, 6, 9)
    z[:5, :4] = EXTREME_ROWS
    y = rng.integers(0, 9, size=6)
    loss, grad = scale.torch_softmax_cross_entropy_fused(torch.tensor(z), torch.tensor(y))
    x = torch.tensor(z, requires_grad=True)
    F.cross_entropy(x, torch.tensor(y)).backward()
    assert float(loss) == pytest.approx(reference.cross_entropy(z, y), rel=1e-6)
    np.testing.assert_allclose(grad.numpy(), x.grad.numpy(), atol=1e-15)

    h, W = rng.standard_normal((5, 3)), rng.standard_normal((3, 11)) * 20
    target = rng.integers(0, 11, size=5)
    got = scale.torch_chunked_linear_cross_entropy(torch.tensor(h), torch.tensor(W), torch.tensor(target), 4)
    expected = reference.linear_cross_entropy_and_grad(h, W, target)
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-10, atol=1e-12)
