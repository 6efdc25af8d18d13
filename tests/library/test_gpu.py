"""The course's Triton kernels (softgrad.gpu), run by Triton's interpreter where there is no GPU.

Small sizes only: the interpreter runs one program after another, each block as NumPy operations.
"""

from __future__ import annotations

import numpy as np
import pytest

# softgrad.gpu first: without a GPU it turns Triton's interpreter on, which must happen before the
# first `import triton` of the process.
from softgrad import gpu, reference  # noqa: I001

if not gpu.available():
    pytest.skip(gpu.UNAVAILABLE, allow_module_level=True)

import torch  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
INF = float("inf")


def _softmax64(x: torch.Tensor) -> np.ndarray:
    z = x.detach().cpu().double().numpy()
    masked = np.all(z == -np.inf, axis=-1, keepdims=True)
    return np.where(masked, 0.0, reference.softmax(np.where(masked, 0.0, z)))


def _cross_entropy64(z: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray, np.ndarray]:
    z, y = z.detach().cpu().double().numpy(), y.cpu().numpy()
    masked = np.all(z == -np.inf, axis=1)
    safe = np.where(masked[:, None], 0.0, z)
    lse = np.where(masked, -np.inf, reference.logsumexp(safe))
    rows = np.where(masked, 0.0, reference.logsumexp(safe) - safe[np.arange(len(y)), y])
    grad = np.where(masked[:, None], 0.0, reference.cross_entropy_grad(safe, y))
    return float(rows.sum() / len(y)), grad, lse


def _hard_rows() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    z = 3 * torch.randn(6, 300, generator=generator)
    z[0] += 1000.0
    z[1] -= 1000.0
    z[2, 250:] += 60.0  # the maximum in the last block
    z[3, :128] = -INF  # two masked blocks first
    z[4] = -INF  # a fully masked row
    return z


def test_the_module_says_where_the_kernels_run():
    assert gpu.available(), gpu.UNAVAILABLE
    assert gpu.interpreted() == (not torch.cuda.is_available()) or gpu.interpreted()
    assert ("interpreted" in gpu.mode()) == gpu.interpreted()


@pytest.mark.parametrize("block", [32, 64, 512])
def test_softmax_matches_float64_whatever_the_block(block):
    z = _hard_rows().to(DEVICE)
    p = gpu.softmax(z, block_size=block)
    assert p.shape == z.shape and p.dtype == z.dtype
    np.testing.assert_allclose(p.cpu().double().numpy(), _softmax64(z), rtol=0, atol=2e-6)
    assert not torch.isnan(p).any(), "a fully masked row gives zeros, not nan"
    assert torch.equal(p[4].cpu(), torch.zeros(300))


def test_softmax_takes_any_leading_shape_and_strided_rows():
    generator = torch.Generator().manual_seed(1)
    x = (2 * torch.randn(2, 3, 70, generator=generator)).to(DEVICE)
    np.testing.assert_allclose(gpu.softmax(x, block_size=16).cpu().double().numpy(), _softmax64(x), atol=1e-6)
    wide = torch.randn(4, 100, generator=generator).to(DEVICE)
    for view in (wide[:, :70], wide.t()[:70]):  # a row stride of 100; a column stride of 100
        np.testing.assert_allclose(gpu.softmax(view, block_size=32).cpu().double().numpy(), _softmax64(view),
                                   atol=1e-6)
    np.testing.assert_allclose(gpu.softmax_one_block(wide[:, :70]).cpu().double().numpy(),
                               _softmax64(wide[:, :70]), atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_narrow_dtypes_are_computed_in_float32_and_rounded_once(dtype):
    dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(2)
    x = (4 * torch.randn(4, 200, generator=generator)).to(dtype)
    p = gpu.softmax(x.to(DEVICE), block_size=64)
    assert p.dtype == dtype
    exact = _softmax64(x)
    # the rounding of the stored result, half a unit in its last place, plus float32's own error
    allowed = torch.finfo(dtype).eps * exact + 1e-6 * (dtype != torch.float64) + 1e-15
    assert np.all(np.abs(p.cpu().double().numpy() - exact) <= allowed)


def test_one_block_softmax_refuses_rows_longer_than_a_block():
    with pytest.raises(ValueError, match="one block"):
        gpu.softmax_one_block(torch.zeros(1, gpu.MAX_BLOCK + 1, device=DEVICE))


def test_cross_entropy_gives_the_loss_the_gradient_and_the_log_sum_exp():
    z = _hard_rows().double().to(DEVICE)
    y = torch.tensor([3, 299, 280, 200, 7, 0], device=DEVICE)
    loss, grad, lse = gpu.cross_entropy(z, y, block_size=64)
    right_loss, right_grad, right_lse = _cross_entropy64(z, y)
    assert loss.shape == () and loss.dtype == torch.float64 and grad.dtype == torch.float64
    assert abs(loss.item() - right_loss) < 1e-12
    np.testing.assert_allclose(grad.cpu().numpy(), right_grad, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(np.isinf(lse.cpu().numpy()), np.isinf(right_lse))
    finite = np.isfinite(right_lse)
    np.testing.assert_allclose(lse.cpu().numpy()[finite], right_lse[finite], rtol=1e-14)
    assert torch.equal(grad[4].cpu(), torch.zeros(300, dtype=torch.float64)), "padding: gradient 0"


def test_cross_entropy_in_float16_keeps_the_dtype():
    generator = torch.Generator().manual_seed(3)
    z = (3 * torch.randn(3, 100, generator=generator)).half()
    y = torch.tensor([0, 50, 99])
    loss, grad, lse = gpu.cross_entropy(z.to(DEVICE), y.to(DEVICE), block_size=32)
    assert loss.dtype == grad.dtype == torch.float16 and lse.dtype == torch.float32
    right_loss, right_grad, _ = _cross_entropy64(z, y)
    assert abs(loss.item() - right_loss) <= 2e-3 * abs(right_loss)
    np.testing.assert_allclose(grad.cpu().double().numpy(), right_grad, atol=1e-4)


@pytest.mark.parametrize("bad", [0, 3, 48])
def test_block_sizes_must_be_powers_of_two(bad):
    with pytest.raises(ValueError, match="power of two"):
        gpu.softmax(torch.zeros(1, 4, device=DEVICE), block_size=bad)


def test_block_size_for_rounds_up_to_a_power_of_two_and_caps_it():
    assert [gpu.block_size_for(n) for n in (1, 2, 3, 300, 4096, 5000)] == [1, 2, 4, 512, 4096, 4096]
    with pytest.raises(ValueError):
        gpu.block_size_for(0)


def test_bytes_moved_counts_one_read_and_one_write():
    assert gpu.bytes_moved("softmax", (2, 3)) == 2 * 2 * 3 * 4
    assert gpu.bytes_moved("softmax", (2, 3), itemsize=2) == 2 * 2 * 3 * 2
    # logits and gradient, the int64 targets, a float32 loss and log-sum-exp per row
    assert gpu.bytes_moved("cross_entropy", (2, 3)) == 2 * 2 * 3 * 4 + 2 * 8 + 2 * 2 * 4
    with pytest.raises(ValueError):
        gpu.bytes_moved("matmul", (2, 3))


def test_bench_rows_say_why_they_cannot_time_a_kernel_here():
    logits, target = np.zeros((2, 4), dtype=np.float32), np.zeros(2, dtype=np.int64)
    rows = gpu.bench_rows(torch, logits, target, torch.device("cpu"))
    assert list(rows) == [gpu.BENCH_ROW] and rows[gpu.BENCH_ROW].startswith("not available: ")
    if gpu.interpreted():  # a GPU table never times the interpreter
        note = gpu.bench_rows(torch, logits, target, torch.device("cuda"))[gpu.BENCH_ROW]
        assert "TRITON_INTERPRET" in note


@pytest.mark.skipif(not torch.cuda.is_available() or gpu.interpreted(), reason="needs a CUDA GPU, compiled")
def test_bench_rows_time_the_compiled_kernel_on_a_gpu():
    generator = np.random.default_rng(0)
    logits = generator.standard_normal((64, 1000)).astype(np.float32)
    target = generator.integers(0, 1000, size=64)
    step = gpu.bench_rows(torch, logits, target, torch.device("cuda"))[gpu.BENCH_ROW]
    loss, grad, _ = step()
    assert abs(loss.item() - reference.cross_entropy(logits, target)) < 1e-5


@pytest.fixture
def counted_patching(monkeypatch):
    """How many times the interpreter walks triton.language's members (``inspect.getmembers``) while a call runs."""
    import inspect

    calls = []
    walk = inspect.getmembers
    monkeypatch.setattr(inspect, "getmembers", lambda *args, **kwargs: calls.append(1) or walk(*args, **kwargs))
    return calls


@pytest.mark.skipif(not gpu.interpreted(), reason="the interpreter's patching: only where Triton interprets")
def test_under_the_interpreter_a_launch_patches_the_language_once_not_once_per_call(counted_patching, monkeypatch):
    """gpu._patch_each_grid_once: the same results, far fewer walks of triton.language (a third of the time)."""
    from triton.runtime import interpreter

    z = _hard_rows()
    counted_patching.clear()
    fast = gpu.softmax(z, block_size=64)  # 6 rows x 5 blocks x 2 passes: tl.max and tl.sum called per block
    once = len(counted_patching)
    monkeypatch.setattr(interpreter, "_patch_lang", interpreter._patch_lang.original)
    monkeypatch.setattr(interpreter.GridExecutor, "__call__", interpreter.GridExecutor.__call__.original)
    counted_patching.clear()
    slow = gpu.softmax(z, block_size=64)
    assert torch.equal(fast, slow), "skipping the repeated patching changed a result"
    assert 0 < once < len(counted_patching) / 10, f"{once} walks with the memo, {len(counted_patching)} without"


@pytest.mark.skipif(not gpu.interpreted(), reason="the interpreter's patching: only where Triton interprets")
def test_a_launch_that_fails_leaves_the_next_launch_patched(counted_patching):
    """A kernel that raises ends its launch: the next launch patches the language itself (nothing of the failed
    launch's bookkeeping makes it skip that) and computes right."""
    import triton
    import triton.language as tl
    from triton.runtime.errors import InterpreterError

    @triton.jit
    def double(x):
        return x * 2

    @triton.jit
    def broken(X, BLOCK: tl.constexpr):
        offsets = tl.arange(0, BLOCK)
        tl.store(X + offsets, double(tl.load(X + offsets), 1))  # one argument too many

    with pytest.raises(InterpreterError):
        broken[(1,)](torch.zeros(8), BLOCK=8)
    counted_patching.clear()
    z = _hard_rows()
    np.testing.assert_allclose(gpu.softmax(z, block_size=64).double().numpy(), _softmax64(z), rtol=1e-5, atol=1e-7)
    assert counted_patching, "the launch after a failed one did not patch triton.language"
