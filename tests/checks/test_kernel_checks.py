"""The checks of problem set 7 (softgrad.testing.kernels): Triton launchers, watched and judged.

The solution and the mistakes are the mutation suite's (tests/mutants/ps7_triton.py), loaded as
modules; the kernels run under Triton's interpreter where there is no GPU, on small inputs.
"""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest

# softgrad.gpu first: without a GPU it turns Triton's interpreter on before triton is imported.
from softgrad import gpu  # noqa: I001

if not gpu.available():
    pytest.skip(gpu.UNAVAILABLE, allow_module_level=True)

import torch  # noqa: E402
from mutants import ps7_triton as solutions  # noqa: E402

from softgrad.testing import kernels  # noqa: E402
from softgrad.testing.kernels import (  # noqa: E402
    check_fused_cross_entropy,
    check_fused_cross_entropy_gradient,
    check_triton_softmax,
)
from softgrad.testing.rerun import PROXY_MARK  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
INF = float("inf")
_COUNTER = itertools.count()
_HEADER = "import torch\nimport triton\nimport triton.language as tl\n"


@pytest.fixture
def load(tmp_path):
    """``load(source)``: a solution cell as a module (Triton reads a kernel's source from its file)."""

    def loaded(source: str):
        path = tmp_path / f"student_{next(_COUNTER)}.py"
        path.write_text(_HEADER + source)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return loaded


def _x(rows=4, cols=150, seed=0):
    return (3 * torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))).to(DEVICE)


def _failure(check, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as failure:
        check(*args, **kwargs)
    return " ".join(str(failure.value).split())


def test_the_solution_passes_every_check(load):
    softmax = load(solutions.softmax()).triton_softmax
    cross_entropy = load(solutions.cross_entropy()).fused_cross_entropy
    x = _x()
    target = torch.tensor([0, 149, 64, 70], device=DEVICE)
    masked = torch.tensor([[-INF] * 70, [-INF] * 64 + [1.0] * 6, [1000.0, -1000.0] * 35], device=DEVICE)
    for layout in ("contiguous", "slice", "transposed"):
        check_triton_softmax(softmax, x, block_size=64, layout=layout)
        check_fused_cross_entropy(cross_entropy, x, target, block_size=64, layout=layout)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        check_triton_softmax(softmax, x.to(dtype), block_size=64)
        check_fused_cross_entropy(cross_entropy, x.to(dtype), target, block_size=64)
    check_triton_softmax(softmax, masked, block_size=64)
    check_triton_softmax(softmax, _x(6, 40).reshape(2, 3, 40), block_size=16)
    check_fused_cross_entropy(cross_entropy, masked, torch.tensor([3, 66, 1], device=DEVICE), block_size=64)
    check_fused_cross_entropy_gradient(cross_entropy, x[:, :40].double(), target % 40, block_size=16)


@pytest.mark.parametrize(("edits", "named"), [
    ((('x = tl.load(x_row + cols, mask=cols < n_cols, other=float("-inf")).to(COMPUTE)',
       "x = tl.load(x_row + cols).to(COMPUTE)"),), "kernel-unmasked-load"),
    ((('other=float("-inf")).to(COMPUTE)', "other=0.0).to(COMPUTE)"),), "kernel-padding-zero"),
    ((("tl.exp(x - shift) / s", "tl.exp(x - tl.max(x, axis=0)) / s"),), "kernel-block-max"),
    ((("s = s * tl.exp(m - shift) + tl.sum", "s = s + tl.sum"),), "online-sum-not-rescaled"),
    ((("tl.store(y_row + cols, tl.exp(x - shift) / s, mask=cols < n_cols)",
       "tl.store(y_row + cols, tl.exp(x - shift) / s)"),), "kernel-store-past-row-end"),
])
def test_a_wrong_softmax_kernel_is_named(load, edits, named):
    softmax = load(solutions.softmax(*edits)).triton_softmax
    x = _x()
    x[1, 100:] += 30.0  # the maximum of a row in a later block
    assert f"[{named}]" in _failure(check_triton_softmax, softmax, x, block_size=64)


def test_nan_for_a_fully_masked_row_is_named(load):
    softmax = load(solutions.softmax(('shift = tl.where(m_new == float("-inf"), 0.0, m_new)', "shift = m_new"),
                                     ("shift = tl.where(m == float(\"-inf\"), 0.0, m)", "shift = m"))).triton_softmax
    masked = torch.tensor([[-INF] * 70, [1.0, 2.0] * 35], device=DEVICE)
    assert "[masked-row-nan]" in _failure(check_triton_softmax, softmax, masked, block_size=64)


@pytest.mark.parametrize(("edits", "named"), [
    ((("g = (tl.exp(z - lse) - tl.where(cols == target, 1.0, 0.0)) / n_rows",
       "g = tl.exp(z - lse) - tl.where(cols == target, 1.0, 0.0)"),), "ce-grad-missing-1-over-n"),
    ((("tl.where(cols == target, 1.0, 0.0)", "tl.where(offsets == target, 1.0, 0.0)"),), "target-not-offset"),
    ((("return (losses.sum() / n_rows)", "return (losses.sum())"),), "ce-sum-not-mean"),
])
def test_a_wrong_cross_entropy_kernel_is_named(load, edits, named):
    cross_entropy = load(solutions.cross_entropy(*edits)).fused_cross_entropy
    target = torch.tensor([0, 149, 3, 70], device=DEVICE)
    assert f"[{named}]" in _failure(check_fused_cross_entropy, cross_entropy, _x(), target, block_size=64)


@pytest.mark.parametrize(("edits", "named"), [
    ((("return y.reshape(x.shape)", "return torch.softmax(x, dim=-1)"),), "kernel-work-outside"),
    ((("return y.reshape(x.shape)", "from softgrad import gpu\n\n    return gpu.softmax(x, block_size)"),),
     "kernel-work-outside"),
    ((("return y.reshape(x.shape)", "return torch.from_numpy(y.cpu().numpy()).reshape(x.shape)"),),
     "host-round-trip"),
    ((("y = torch.empty(rows.shape, dtype=x.dtype, device=x.device)", "y = rows"),), "mutates-input"),
    ((("softmax_kernel[(rows.shape[0],)](rows, y,", "for r in range(rows.shape[0]):\n"
                                                    "        softmax_kernel[(1,)](rows[r:], y[r:],"),
      ("                                     COMPUTE=compute)", "                             COMPUTE=compute)")),
     "kernel-launch-count"),
])
def test_what_the_launcher_does_is_watched(load, edits, named):
    softmax = load(solutions.softmax(*edits)).triton_softmax
    assert f"[{named}]" in _failure(check_triton_softmax, softmax, _x(), block_size=64)


def test_a_widened_dtype_and_ignored_strides_are_named(load):
    float32_out = load(solutions.softmax(("dtype=x.dtype", "dtype=torch.float32"))).triton_softmax
    assert "[dtype-not-kept]" in _failure(check_triton_softmax, float32_out, _x().half(), block_size=64)
    rows_n_apart = load(solutions.softmax(("row * x_row_stride", "row * n_cols"))).triton_softmax
    check_triton_softmax(rows_n_apart, _x(), block_size=64)  # contiguous rows: right
    assert "[kernel-ignores-row-stride]" in _failure(check_triton_softmax, rows_n_apart, _x(), block_size=64,
                                                     layout="slice")


def test_a_layout_may_be_refused_only_with_a_message_that_says_why(load):
    contiguous = "    if rows.stride(-1) != 1:\n        rows = rows.contiguous()\n"
    refuses = load(solutions.softmax((contiguous, "    if not x.is_contiguous():\n"
                                                  "        raise ValueError('x must be contiguous')\n"))).triton_softmax
    check_triton_softmax(refuses, _x(), block_size=64, layout="transposed")
    mute = load(solutions.softmax((contiguous, "    assert x.is_contiguous()\n"))).triton_softmax
    assert "mention 'contiguous'" in _failure(check_triton_softmax, mute, _x(), block_size=64, layout="transposed")


def test_an_unwritten_exercise_says_what_to_do(load):
    release = load(solutions.softmax(("    n_cols = x.shape[-1]\n", "    raise NotImplementedError()\n")))
    assert "replace `raise NotImplementedError()`" in _failure(check_triton_softmax, release.triton_softmax, _x(),
                                                               block_size=64)


def test_a_proxy_of_the_grader_is_not_watched():
    calls = []

    def proxy(*args, **kwargs):
        calls.append(args)

    setattr(proxy, PROXY_MARK, True)
    check_triton_softmax(proxy, _x(), block_size=64)
    check_fused_cross_entropy(proxy, _x(), torch.zeros(4, dtype=torch.int64), block_size=64)
    assert calls == []


def test_the_watch_restores_everything_it_replaces(load):
    softmax = load(solutions.softmax()).triton_softmax
    originals = (torch.softmax, torch.exp, torch.empty, torch.Tensor.exp, torch.Tensor.numpy)
    with kernels.watching_kernels(softmax, threshold=600) as watch:
        softmax(_x(), block_size=64)
        torch.exp(torch.zeros(600))
        torch.exp(torch.zeros(3))  # small: the N per-row numbers a launcher may handle
    assert watch.launches == ["softmax_kernel"] and watch.forbidden == ["torch.exp"]
    assert (torch.softmax, torch.exp, torch.empty, torch.Tensor.exp, torch.Tensor.numpy) == originals


def test_guarded_inputs_have_their_layout_and_a_guard_after_them():
    x = _x(3, 10)
    for layout, contiguous in (("contiguous", True), ("slice", False), ("transposed", False)):
        given = kernels.guarded(x, layout=layout)
        assert torch.equal(given, x) and given.is_contiguous() == contiguous
        storage = torch.empty(0, dtype=x.dtype, device=x.device).set_(given.untyped_storage())
        assert storage.numel() > x.numel() and (storage == kernels.GUARD_VALUE).sum() >= 16
    assert kernels.guarded(x, layout="slice").stride(0) > 10


def test_the_reference_treats_a_fully_masked_row_as_padding():
    z = np.array([[-np.inf, -np.inf], [0.0, np.log(3.0)]])
    np.testing.assert_allclose(kernels.reference_softmax(z), [[0.0, 0.0], [0.25, 0.75]])
    assert kernels.reference_cross_entropy(z, np.array([0, 1])) == pytest.approx(-np.log(0.75) / 2)
