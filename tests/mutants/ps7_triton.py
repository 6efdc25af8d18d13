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
_Z_LOAD = 'z = tl.load(z_row + cols, mask=cols < n_cols, other=float("-inf")).to(COMPUTE)'
_X_STORE = "tl.store(y_row + cols, tl.exp(x - shift) / s, mask=cols < n_cols)"
_X_SUM = "s = s * tl.exp(m - shift) + tl.sum(tl.exp(x - shift), axis=0)"
_Z_SUM = "s = s * tl.exp(m - shift) + tl.sum(tl.exp(z - shift), axis=0)"
_X_GUARD = 'shift = tl.where(m_new == float("-inf"), 0.0, m_new)'
_LAUNCH = ("softmax_kernel[(rows.shape[0],)](rows, y, n_cols, rows.stride(0), y.stride(0), BLOCK=block_size,\n"
           "                                     COMPUTE=compute)")
_CE_RETURN = "return (losses.sum() / n_rows).to(logits.dtype), grad"
_ONEHOT = "tl.where(cols == target, 1.0, 0.0)"

MUTANTS = [
    # ---- masks ------------------------------------------------------------------------------------------
    wrong("softmax_unmasked_loads", "[kernel-unmasked-load]",
          triton_softmax=softmax((_X_LOAD, "x = tl.load(x_row + cols).to(COMPUTE)"))),
    wrong("softmax_padding_zero", "[kernel-padding-zero]",
          triton_softmax=softmax((_X_LOAD, "x = tl.load(x_row + cols, mask=cols < n_cols, other=0.0).to(COMPUTE)"))),
    wrong("softmax_unmasked_store", "[kernel-store-past-row-end]",
          triton_softmax=softmax((_X_STORE, "tl.store(y_row + cols, tl.exp(x - shift) / s)"))),
    wrong("softmax_no_masks_at_all", "[kernel-unmasked-load]",
          triton_softmax=softmax((_X_LOAD, "x = tl.load(x_row + cols).to(COMPUTE)"),
                                 (_X_STORE, "tl.store(y_row + cols, tl.exp(x - shift) / s)"))),
    wrong("cross_entropy_unmasked_first_pass", "[kernel-unmasked-load]", fused_cross_entropy=_edit(
        _CROSS_ENTROPY.replace(_Z_LOAD, "z = tl.load(z_row + cols).to(COMPUTE)", 1))),
    wrong("cross_entropy_padding_zero", "[kernel-padding-zero]", fused_cross_entropy=cross_entropy(
        (_Z_LOAD, "z = tl.load(z_row + cols, mask=cols < n_cols, other=0.0).to(COMPUTE)"))),
    wrong("cross_entropy_unmasked_store", "[kernel-store-past-row-end]", fused_cross_entropy=cross_entropy(
        ("tl.store(g_row + cols, tl.where(masked, 0.0, g), mask=cols < n_cols)",
         "tl.store(g_row + cols, tl.where(masked, 0.0, g))"))),
    # ---- blocks and the online recurrence ------------------------------------------------------------------
    wrong("softmax_block_max_in_second_pass", "[kernel-block-max]",
          triton_softmax=softmax((_X_STORE, "tl.store(y_row + cols, tl.exp(x - tl.max(x, axis=0)) / s, "
                                            "mask=cols < n_cols)"))),
    wrong("softmax_sum_not_rescaled", "[online-sum-not-rescaled]",
          triton_softmax=softmax((_X_SUM, "s = s + tl.sum(tl.exp(x - shift), axis=0)"))),
    wrong("cross_entropy_block_max", "[kernel-block-max]", fused_cross_entropy=cross_entropy(
        ("m_new = tl.maximum(m, tl.max(z, axis=0))", "m_new = tl.max(z, axis=0)"),
        (_Z_SUM, "s = s + tl.sum(tl.exp(z - shift), axis=0)"))),
    wrong("cross_entropy_sum_not_rescaled", "[online-sum-not-rescaled]", fused_cross_entropy=cross_entropy(
        (_Z_SUM, "s = s + tl.sum(tl.exp(z - shift), axis=0)"))),
    wrong("softmax_masked_row_nan", "[masked-row-nan]", triton_softmax=softmax(
        (_X_GUARD, "shift = m_new"),
        ('shift = tl.where(m == float("-inf"), 0.0, m)\n    s = tl.where(s > 0.0, s, 1.0)', "shift = m"))),
    wrong("cross_entropy_masked_row_nan", "[masked-row-nan]", fused_cross_entropy=cross_entropy(
        ('shift = tl.where(m_new == float("-inf"), 0.0, m_new)', "shift = m_new"),
        ('masked = m == float("-inf")\n    lse = tl.where(masked, 0.0, m) + tl.log(tl.where(masked, 1.0, s))',
         "masked = m != m\n    lse = m + tl.log(s)"))),
    # ---- chapter 1's and chapter 4's mistakes, inside a kernel ---------------------------------------------
    wrong("softmax_no_max_shift", "[softmax-no-max-shift]", triton_softmax=softmax(
        (_X_SUM, "s = s + tl.sum(tl.exp(x), axis=0)"), (_X_STORE, "tl.store(y_row + cols, tl.exp(x) / s, "
                                                                  "mask=cols < n_cols)"))),
    wrong("softmax_batch_maximum", "[global-max-shift]", triton_softmax=softmax(
        ("BLOCK: tl.constexpr, COMPUTE", "top, BLOCK: tl.constexpr, COMPUTE"),
        ("m_new = tl.maximum(m, tl.max(x, axis=0))", "m_new = top"),
        ("tl.store(y_row + cols, tl.exp(x - shift)", "tl.store(y_row + cols, tl.exp(x - top)"),
        ("y.stride(0), BLOCK=block_size", "y.stride(0), rows.max().item(), BLOCK=block_size"))),
    wrong("softmax_clipped_logits", "[clip-logits]", triton_softmax=softmax(
        (_X_LOAD, _X_LOAD + "\n        x = tl.minimum(tl.maximum(x, -50.0), 50.0)"))),
    wrong("cross_entropy_no_max_shift", "[softmax-no-max-shift]", fused_cross_entropy=cross_entropy(
        (_Z_SUM, "s = s + tl.sum(tl.exp(z), axis=0)"),
        ("lse = tl.where(masked, 0.0, m) + tl.log(tl.where(masked, 1.0, s))", "lse = tl.log(s)"))),
    wrong("cross_entropy_log_of_probability", "[log-of-probability]", fused_cross_entropy=cross_entropy(
        ("tl.store(loss_ptr + row, tl.where(masked, 0.0, lse - z_target))",
         "tl.store(loss_ptr + row, tl.where(masked, 0.0, -tl.log(tl.exp(z_target - lse))))"))),
    wrong("cross_entropy_gradient_without_1_over_n", "[ce-grad-missing-1-over-n]", fused_cross_entropy=cross_entropy(
        (f"g = (tl.exp(z - lse) - {_ONEHOT}) / n_rows", f"g = tl.exp(z - lse) - {_ONEHOT}"))),
    wrong("cross_entropy_loss_summed", "[ce-sum-not-mean]", fused_cross_entropy=cross_entropy(
        (_CE_RETURN, "return losses.sum().to(logits.dtype), grad"))),
    wrong("cross_entropy_sign_flipped", "[ce-grad-sign-flipped]", fused_cross_entropy=cross_entropy(
        (f"g = (tl.exp(z - lse) - {_ONEHOT})", f"g = ({_ONEHOT} - tl.exp(z - lse))"))),
    wrong("cross_entropy_label_subtracted", "[ce-integer-labels-as-onehot]", fused_cross_entropy=cross_entropy(
        (f"g = (tl.exp(z - lse) - {_ONEHOT})", "g = (tl.exp(z - lse) - target)"))),
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
    wrong("softmax_by_torch_in_the_launcher", "[kernel-work-outside]", triton_softmax=softmax(
        ("return y.reshape(x.shape)", "return torch.softmax(x, dim=-1)"))),
    wrong("cross_entropy_loss_by_pytorch", "[kernel-work-outside]", fused_cross_entropy=cross_entropy(
        (_CE_RETURN, "return torch.nn.functional.cross_entropy(logits, target), grad"))),
    wrong("softmax_with_the_course_kernel", "[kernel-work-outside]", triton_softmax=softmax(
        ("return y.reshape(x.shape)", "from softgrad import gpu\n\n    return gpu.softmax(x, block_size)"))),
    wrong("softmax_exp_in_the_launcher", "[kernel-work-outside]", triton_softmax=softmax(
        ("return y.reshape(x.shape)",
         "e = torch.exp(x - x.amax(dim=-1, keepdim=True))\n    return e / e.sum(dim=-1, keepdim=True)"))),
    wrong("softmax_through_numpy", "[host-round-trip]", triton_softmax=softmax(
        ("return y.reshape(x.shape)", "return torch.from_numpy(y.cpu().numpy().copy()).reshape(x.shape)"))),
    wrong("softmax_rows_n_apart", "[kernel-ignores-row-stride]", triton_softmax=softmax(
        ("x_row = x_ptr + row * x_row_stride", "x_row = x_ptr + row * n_cols"))),
    wrong("cross_entropy_rows_n_apart", "[kernel-ignores-row-stride]", fused_cross_entropy=cross_entropy(
        ("z_row = z_ptr + row * z_row_stride", "z_row = z_ptr + row * n_cols"))),
    wrong("softmax_float32_output", "[dtype-not-kept]", triton_softmax=softmax(
        ("y = torch.empty(rows.shape, dtype=x.dtype", "y = torch.empty(rows.shape, dtype=torch.float32"))),
    wrong("cross_entropy_float32_gradient", "[dtype-not-kept]", fused_cross_entropy=cross_entropy(
        ("grad = torch.empty((n_rows, n_cols), dtype=logits.dtype",
         "grad = torch.empty((n_rows, n_cols), dtype=torch.float32"))),
    wrong("cross_entropy_gradient_transposed", "[gradient-transposed]", fused_cross_entropy=cross_entropy(
        (_CE_RETURN, "return (losses.sum() / n_rows).to(logits.dtype), grad.t()"))),
    wrong("softmax_in_place", "[mutates-input]", triton_softmax=softmax(
        ("y = torch.empty(rows.shape, dtype=x.dtype, device=x.device)", "y = rows"))),
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
    correct("softmax_reciprocal_and_contiguous_copy", triton_softmax=softmax(
        ("s = tl.where(s > 0.0, s, 1.0)", "inverse = 1.0 / tl.where(s > 0.0, s, 1.0)"),
        ("tl.exp(x - shift) / s", "tl.exp(x - shift) * inverse"),
        ("rows = x.reshape(-1, n_cols)", "rows = x.contiguous().reshape(-1, n_cols)"))),
    correct("cross_entropy_target_found_in_its_block", fused_cross_entropy=cross_entropy(
        ("    z_target = tl.load(z_row + target).to(COMPUTE)\n", "    z_target = tl.full([], 0.0, COMPUTE)\n"),
        ("        m = m_new\n",
         "        m = m_new\n        z_target += tl.sum(tl.where(cols == target, z, 0.0), axis=0)\n"))),
    correct("cross_entropy_mean_in_float64", fused_cross_entropy=cross_entropy(
        (_CE_RETURN, "return losses.double().mean().to(logits.dtype), grad"))),
]
