"""softgrad.kernels: the vectorisable exp in ulps, and the compiled cross-entropy against the float64 reference.

Accuracy only: how fast the kernels run is measured by ``softgrad bench``, never asserted here.
"""

from __future__ import annotations

import numpy as np
import pytest

from softgrad import bench, kernels, reference

EPS32 = float(np.finfo(np.float32).eps)
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 88.72283, 88.72284, 89.0,
                     -87.33654, -100.0, -103.972, -104.0, -1e30, 1e-40], dtype=np.float32)

needs_numba = pytest.mark.skipif(not kernels.available(), reason=f"the compiled kernels: {kernels.UNAVAILABLE}")


def _exact_exp(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(x.astype(np.float64))


def _expected_specials() -> np.ndarray:
    """What a correctly rounded float32 exp gives for SPECIALS."""
    with np.errstate(over="ignore"):
        return _exact_exp(SPECIALS).astype(np.float32)


def test_ulp_error_counts_units_in_the_last_place():
    one_up = np.nextafter(np.float32(1), np.float32(2))
    assert kernels.ulp_error(np.float32([1, one_up, 1]), [1.0, 1.0, 1.0 + 2.0**-24]).tolist() == [0.0, 1.0, 0.5]
    assert kernels.ulp_error(np.float32([2.0**-149]), [0.0]).tolist() == [1.0]  # the subnormal spacing
    assert kernels.ulp_error(np.float32([2.0**-140]), [2.0**-140 + 2.0**-150]).tolist() == [0.5]


def test_the_sample_covers_the_whole_finite_range_of_exp():
    x = kernels.exp_sample(20000, np.random.default_rng(0))
    assert x.dtype == np.float32 and 19900 <= x.size <= 20000
    assert x.min() < -100 and x.max() > 85  # the large |x|, evenly by value
    assert np.mean(np.abs(x) < 1e-10) > 0.3  # and the many tiny float32 numbers, evenly by bit pattern
    assert np.all(np.isfinite(_exact_exp(x).astype(np.float32))) and np.all(_exact_exp(x) > 0)


def test_exp32_in_plain_python_is_within_about_one_ulp():
    # The same function, uncompiled: the algorithm itself is right, with or without Numba.
    scalar = getattr(kernels.exp32, "py_func", kernels.exp32)
    x = kernels.exp_sample(3000, np.random.default_rng(1))
    y = np.array([scalar(v) for v in x], dtype=np.float32)
    error = kernels.ulp_error(y, _exact_exp(x))
    assert error.max() <= 1.5 and error.mean() <= 0.3
    with np.errstate(over="ignore"):  # plain Python computes 2**k for x = 89 too, before choosing inf
        specials = np.array([scalar(v) for v in SPECIALS], dtype=np.float32)
    np.testing.assert_array_equal(specials[1:], _expected_specials()[1:])
    assert np.isnan(specials[0])


@needs_numba
def test_compiled_exp_is_within_about_one_ulp_everywhere():
    x = kernels.exp_sample(2**18, np.random.default_rng(2))
    error = kernels.ulp_error(kernels.exp(x), _exact_exp(x))
    assert error.max() <= 1.1, x[np.argmax(error)]
    assert error.mean() <= 0.25
    assert np.mean(error <= 0.5) > 0.9  # most results are correctly rounded


@needs_numba
def test_compiled_exp_special_values_shapes_out_and_threads():
    y = kernels.exp(SPECIALS)
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:], _expected_specials()[1:])  # inf, 0, subnormals, the overflow edge
    z = (5 * np.random.default_rng(3).standard_normal((37, 53))).astype(np.float32)
    results = [kernels.exp(z, threads=threads) for threads in (1, 2, 3)]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])  # threads split the work, nothing else
    out = np.empty_like(z)
    assert kernels.exp(z, out=out) is out
    np.testing.assert_array_equal(out, results[0])
    np.testing.assert_array_equal(kernels.exp(z[:, ::2]), results[0][:, ::2])  # strided input
    assert kernels.exp(np.zeros((0, 4), np.float32)).shape == (0, 4)
    with pytest.raises(TypeError, match="float32"):
        kernels.exp(z.astype(np.float64))
    with pytest.raises(ValueError, match="out"):
        kernels.exp(z, out=np.empty((3, 3), np.float32))


# Rows that need the max shift (huge, all very negative, a sum near the overflow threshold)
# next to rows that do not; the same rows as tests/library/test_scale.py.
EXTREME_ROWS = np.array([[1000.0, 999.0, 0.0, -5.0], [-1000.0, -1001.0, -1003.0, -1000.5],
                         [0.5, 2.0, 1.0, 0.0], [88.0, 87.0, -88.0, 0.0], [-50.0, -60.0, -55.0, -70.0]])


def _logits(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = (3 * rng.standard_normal((rows, classes))).astype(np.float32)
    z[:5, :4] = EXTREME_ROWS
    return z, rng.integers(0, classes, size=rows)


def _assert_matches_reference(z: np.ndarray, y: np.ndarray, loss: float, grad: np.ndarray) -> None:
    n = z.shape[0]
    expected = reference.cross_entropy(z, y)  # float64 throughout
    assert abs(loss - expected) <= 20 * EPS32 * max(1.0, abs(expected))
    assert grad.dtype == np.float32 and grad.shape == z.shape
    np.testing.assert_allclose(grad, reference.cross_entropy_grad(z, y), rtol=0, atol=20 * EPS32 / n)


@needs_numba
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("always_shift", [False, True])
def test_compiled_cross_entropy_agrees_with_the_float64_reference(threads, always_shift):
    z, y = _logits(37, 53, seed=4)
    before = z.copy()
    loss, grad = kernels.softmax_cross_entropy(z, y, threads=threads, always_shift=always_shift)
    assert np.array_equal(z, before), "the logits must not be modified"
    _assert_matches_reference(z, y, loss, grad)


@needs_numba
def test_compiled_cross_entropy_on_wide_rows_and_into_a_given_array():
    z, y = _logits(64, 4096, seed=5)
    out = np.full_like(z, np.nan)
    loss, grad = kernels.softmax_cross_entropy(z, y, out=out)
    assert grad is out
    _assert_matches_reference(z, y, loss, grad)
    with pytest.raises(ValueError, match="out"):
        kernels.softmax_cross_entropy(z, y, out=np.empty((64, 4095), np.float32))
    with pytest.raises(ValueError, match="overlap"):
        kernels.softmax_cross_entropy(z, y, out=z)


@needs_numba
def test_compiled_cross_entropy_keeps_full_precision_near_the_overflow_threshold():
    # As in test_scale: a column at 87 gives a finite unshifted sum whose 1 / (N sum) would be
    # subnormal; such rows must take the shifted path.
    rng = np.random.default_rng(9)
    z = rng.standard_normal((512, 16)).astype(np.float32)
    z[:, 3] = 87.0
    y = rng.integers(0, 16, size=512)
    _assert_matches_reference(z, y, *kernels.softmax_cross_entropy(z, y))


@needs_numba
def test_compiled_cross_entropy_masked_and_nan_rows_behave_like_the_stable_version():
    from softgrad import scale

    z = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [0.0, np.nan, 1.0], [np.inf, 0.0, 1.0]],
                 dtype=np.float32)
    y = np.array([0, 1, 2, 2])
    _, grad = kernels.softmax_cross_entropy(z, y)
    with np.errstate(invalid="ignore"):
        _, stable = scale.softmax_cross_entropy_stable(z, y)
    np.testing.assert_allclose(grad, stable, rtol=1e-6, atol=1e-7)  # nan where the stable version has nan
    assert grad[0, 1] == 0.0 and np.all(np.isnan(grad[1:]))
    partly_masked, _ = kernels.softmax_cross_entropy(z[:1], y[:1])
    assert partly_masked == pytest.approx(np.log(1 + np.e), rel=1e-6)  # the masked class counts for nothing


@needs_numba
def test_compiled_cross_entropy_rejects_what_it_cannot_compute():
    z, y = _logits(6, 5, seed=6)
    with pytest.raises(TypeError, match="float32"):
        kernels.softmax_cross_entropy(z.astype(np.float64), y)
    with pytest.raises(ValueError, match="target"):
        kernels.softmax_cross_entropy(z, np.array([0, 1, 2, 3, 4, 5]))  # 5 is not a class of 5
    with pytest.raises(ValueError, match="target"):
        kernels.softmax_cross_entropy(z, y[:3])
    with pytest.raises(ValueError, match="class"):
        kernels.softmax_cross_entropy(np.zeros((3, 0), np.float32), np.zeros(3, int))


def test_without_numba_the_kernels_say_why_and_the_benchmark_goes_on(monkeypatch):
    monkeypatch.setattr(kernels, "numba", None)
    monkeypatch.setattr(kernels, "UNAVAILABLE", "Numba is not installed (pip install numba)")
    assert not kernels.available()
    with pytest.raises(ModuleNotFoundError, match="Numba is not installed"):
        kernels.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.zeros(2, int))
    with pytest.raises(ModuleNotFoundError, match="Numba is not installed"):
        kernels.exp(np.zeros(3, np.float32))
    limits = bench.measure_limits((64, 64), np.float32, 1, repeats=1, warmup=0)
    assert "compiled_exp_seconds" not in limits
    accuracy = {e["name"]: e for e in bench.exp_accuracy(1000)}
    assert accuracy["softgrad.kernels.exp"]["note"] == "not available: Numba is not installed (pip install numba)"
    assert accuracy["np.exp"]["max_ulp"] < 4
