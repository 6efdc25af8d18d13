"""Mutants of ps7_triton: Triton kernels with a mask, a block, a rescaling, a launch or a layout wrong, and right."""

from mutants import correct, wrong

NOTEBOOK = "kernels.ipynb"

_SOFTMAX = '''
@triton.jit
def softmax_kernel(x_ptr, y_ptr, n_cols, x_row_stride, y_row_stride, BLOCK: tl.constexpr, COMPUTE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_row_stride
    y_row = y_ptr + row * y_row_stride
    offsets = tl.arange(0, BLOCK)
    m = tl.full([], float("-inf"), COMPUTE)
    s = tl.full([], 0.0, COMPUTE)
    for start in range(0, n_cols, BLOCK):
        cols = start + offsets
        x = tl.load(x_row + cols, mask=cols < n_cols, other=float("-inf")).to(COMPUTE)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        s = s * tl.exp(m - shift) + tl.sum(tl.exp(x - shift), axis=0)
        m = m_new
    shift = tl.where(m == float("-inf"), 0.0, m)
    s = tl.where(s > 0.0, s, 1.0)
    for start in range(0, n_cols, BLOCK):
        cols = start + offsets
        x = tl.load(x_row + cols, mask=cols < n_cols, other=float("-inf")).to(COMPUTE)
        tl.store(y_row + cols, tl.exp(x - shift) / s, mask=cols < n_cols)


def triton_softmax(x, block_size=1024):
    n_cols = x.shape[-1]
    rows = x.reshape(-1, n_cols)
    if rows.stride(-1) != 1:
        rows = rows.contiguous()
    y = torch.empty(rows.shape, dtype=x.dtype, device=x.device)
    compute = tl.float64 if x.dtype == torch.float64 else tl.float32
    softmax_kernel[(rows.shape[0],)](rows, y, n_cols, rows.stride(0), y.stride(0), BLOCK=block_size,
                                     COMPUTE=compute)
    return y.reshape(x.shape)
'''

_CROSS_ENTROPY = '''
@triton.jit
def cross_entropy_kernel(z_ptr, target_ptr, grad_ptr, loss_ptr, n_rows, n_cols, z_row_stride, grad_row_stride,
                         BLOCK: tl.constexpr, COMPUTE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    z_row = z_ptr + row * z_row_stride
    g_row = grad_ptr + row * grad_row_stride
    offsets = tl.arange(0, BLOCK)
    target = tl.load(target_ptr + row)
    z_target = tl.load(z_row + target).to(COMPUTE)
    m = tl.full([], float("-inf"), COMPUTE)
    s = tl.full([], 0.0, COMPUTE)
    for start in range(0, n_cols, BLOCK):
        cols = start + offsets
        z = tl.load(z_row + cols, mask=cols < n_cols, other=float("-inf")).to(COMPUTE)
        m_new = tl.maximum(m, tl.max(z, axis=0))
        shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        s = s * tl.exp(m - shift) + tl.sum(tl.exp(z - shift), axis=0)
        m = m_new
    masked = m == float("-inf")
    lse = tl.where(masked, 0.0, m) + tl.log(tl.where(masked, 1.0, s))
    tl.store(loss_ptr + row, tl.where(masked, 0.0, lse - z_target))
    for start in range(0, n_cols, BLOCK):
        cols = start + offsets
        z = tl.load(z_row + cols, mask=cols < n_cols, other=float("-inf")).to(COMPUTE)
        g = (tl.exp(z - lse) - tl.where(cols == target, 1.0, 0.0)) / n_rows
        tl.store(g_row + cols, tl.where(masked, 0.0, g), mask=cols < n_cols)


def fused_cross_entropy(logits, target, block_size=1024):
    n_rows, n_cols = logits.shape
    if logits.stride(-1) != 1:
        logits = logits.contiguous()
    grad = torch.empty((n_rows, n_cols), dtype=logits.dtype, device=logits.device)
    if logits.dtype == torch.float64:
        compute, accumulate = tl.float64, torch.float64
    else:
        compute, accumulate = tl.float32, torch.float32
    losses = torch.empty(n_rows, dtype=accumulate, device=logits.device)
    cross_entropy_kernel[(n_rows,)](logits, target, grad, losses, n_rows, n_cols, logits.stride(0), grad.stride(0),
                                    BLOCK=block_size, COMPUTE=compute)
    return (losses.sum() / n_rows).to(logits.dtype), grad
'''


def _edit(source: str, *edits: tuple[str, str]) -> str:
    """``source`` with each ``(old, new)`` replaced everywhere (``old`` must occur: a mutant that changes
    nothing would prove nothing)."""
    for old, new in edits:
        if old not in source:
            raise ValueError(f"not in the solution: {old!r}")
        source = source.replace(old, new)
    return source


def softmax(*edits: tuple[str, str]) -> str:
    """The solution's triton_softmax cell with ``edits``."""
    return _edit(_SOFTMAX, *edits)


def cross_entropy(*edits: tuple[str, str]) -> str:
    """The solution's fused_cross_entropy cell with ``edits``."""
    return _edit(_CROSS_ENTROPY, *edits)


_X_LOAD = 'x = tl.load(x_row + cols, mask=cols < n_cols, other=float("-inf")).to(COMPUTE)'
_X_SUM = "s = s * tl.exp(m - shift) + tl.sum(tl.exp(x - shift), axis=0)"
_LAUNCH = ("softmax_kernel[(rows.shape[0],)](rows, y, n_cols, rows.stride(0), y.stride(0), BLOCK=block_size,\n"
           "                                     COMPUTE=compute)")
_CE_RETURN = "return (losses.sum() / n_rows).to(logits.dtype), grad"
_ONEHOT = "tl.where(cols == target, 1.0, 0.0)"

# Every ps7 notebook takes about 15 s in Triton's interpreter, so a mistake that the bug-class matrix
# already gives a student-style mutant of the same function (tests/mutants/matrix_triton.py: the masks,
# the blocks, the online recurrence, chapters 1 and 4's mistakes, dtypes, inputs) is not repeated here.
# These are the mistakes only a launcher or a kernel's indexing can make, and right variants.
MUTANTS = [
    # ---- indexing ----------------------------------------------------------------------------------------
    wrong("cross_entropy_target_in_block_numbers", "[target-not-offset]", fused_cross_entropy=cross_entropy(
        (_ONEHOT, "tl.where(offsets == target, 1.0, 0.0)"))),
    # ---- launchers: launches, PyTorch's work, layouts, dtypes, inputs -----------------------------------
    wrong("softmax_one_launch_per_row", "[kernel-launch-count]", triton_softmax=softmax((_LAUNCH, (
        "for r in range(rows.shape[0]):\n"
        "        softmax_kernel[(1,)](rows[r:], y[r:], n_cols, rows.stride(0), y.stride(0), BLOCK=block_size,\n"
        "                             COMPUTE=compute)")))),
    wrong("cross_entropy_two_launches", "[kernel-launch-count]", fused_cross_entropy=cross_entropy((_CE_RETURN, (
        "cross_entropy_kernel[(n_rows,)](logits, target, grad, losses, n_rows, n_cols, logits.stride(0),\n"
        "                                    grad.stride(0), BLOCK=block_size, COMPUTE=compute)\n"
        "    " + _CE_RETURN)))),
    wrong("cross_entropy_loss_by_pytorch", "[kernel-work-outside]", fused_cross_entropy=cross_entropy(
        (_CE_RETURN, "return torch.nn.functional.cross_entropy(logits, target), grad"))),
    wrong("softmax_with_the_course_kernel", "[kernel-work-outside]", triton_softmax=softmax(
        ("return y.reshape(x.shape)", "from softgrad import gpu\n\n    return gpu.softmax(x, block_size)"))),
    wrong("softmax_through_numpy", "[host-round-trip]", triton_softmax=softmax(
        ("return y.reshape(x.shape)", "return torch.from_numpy(y.cpu().numpy().copy()).reshape(x.shape)"))),
    wrong("softmax_rows_n_apart", "[kernel-ignores-row-stride]", triton_softmax=softmax(
        ("x_row = x_ptr + row * x_row_stride", "x_row = x_ptr + row * n_cols"))),
    # ---- right in other ways --------------------------------------------------------------------------------
    correct("softmax_three_passes", triton_softmax=softmax(
        (_X_SUM + "\n        m = m_new", "m = m_new"),
        ("    shift = tl.where(m == float(\"-inf\"), 0.0, m)\n    s = tl.where(s > 0.0, s, 1.0)\n", (
            "    shift = tl.where(m == float(\"-inf\"), 0.0, m)\n"
            "    for start in range(0, n_cols, BLOCK):\n"
            "        cols = start + offsets\n"
            "        " + _X_LOAD + "\n"
            "        s += tl.sum(tl.exp(x - shift), axis=0)\n"
            "    s = tl.where(s > 0.0, s, 1.0)\n")))),
    correct("softmax_refuses_other_layouts", triton_softmax=softmax(
        ("    if rows.stride(-1) != 1:\n        rows = rows.contiguous()\n",
         "    if not x.is_contiguous():\n        raise ValueError(\"triton_softmax needs a contiguous tensor\")\n"))),
    correct("cross_entropy_target_found_in_its_block", fused_cross_entropy=cross_entropy(
        ("    z_target = tl.load(z_row + target).to(COMPUTE)\n", "    z_target = tl.full([], 0.0, COMPUTE)\n"),
        ("        m = m_new\n",
         "        m = m_new\n        z_target += tl.sum(tl.where(cols == target, z, 0.0), axis=0)\n"))),
]
