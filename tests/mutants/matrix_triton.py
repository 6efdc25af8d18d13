"""The bug-class matrix's rows for ps7_triton (see tests/mutants/matrix.py): written with its helpers.

Problem set 7's graded functions are launchers with their Triton kernels: ``triton_softmax`` and
``fused_cross_entropy``. The kernels here are written in another style than the hand-written mutants
of ``ps7_triton.py`` (upper-case pointer names, blocks counted with ``tl.cdiv``, the launcher making
the input contiguous), so that the grader meets more than one way of writing each mistake. The four
classes of bug that only a kernel can have are added to :data:`BUG_CLASSES` here; every function of
the other problem sets is marked not applicable for them.
"""

from __future__ import annotations

from mutants.matrix import BUG_CLASSES, BY_ID, _add, _bug, _correct, _na, functions

PS7 = "ps7_triton"

_KERNEL_BUGS = [
    _bug("unmasked-last-block", "no mask (or a 0 filler) on the last block of a row", "kernel-unmasked-load",
         "kernel-padding-zero"),
    _bug("block-max", "the maximum of a block used as the row's", "kernel-block-max"),
    _bug("no-rescale", "the running sum not rescaled when the maximum grows", "online-sum-not-rescaled"),
    _bug("store-past-end", "a store past the end of the row", "kernel-store-past-row-end"),
]
for _new in _KERNEL_BUGS:
    for _function in functions():  # the other problem sets' functions, before ps7's rows are added
        _na(_function, _new.id, "no Triton kernel in this function: it has no blocks, masks or launches")
BUG_CLASSES.extend(_KERNEL_BUGS)
BY_ID.update({bug.id: bug for bug in _KERNEL_BUGS})


# ---- triton_softmax ------------------------------------------------------------------------------

_LOAD = 'v = tl.load(X + pid * STRIDE + idx, mask=idx < N, other=float("-inf")).to(COMPUTE)'
_UPDATE = ("new_max = tl.maximum(mx, tl.max(v, 0))\n"
           "                safe = tl.where(new_max == float(\"-inf\"), 0.0, new_max)\n"
           "                total = total * tl.exp(mx - safe) + tl.sum(tl.exp(v - safe), 0)\n"
           "                mx = new_max")
_FINISH = ("safe = tl.where(mx == float(\"-inf\"), 0.0, mx)\n"
           "            total = tl.where(total == 0.0, 1.0, total)")
_PROBABILITIES = "p = tl.exp(v - safe) / total"
_STORE = "tl.store(Y + pid * STRIDE + idx, p, mask=idx < N)"
_SOFTMAX_LAUNCH = ("softmax_kernel[(x2.shape[0],)](x2, out, x2.shape[1], x2.stride(0), BLOCK=block_size, "
                   "COMPUTE=compute)")


def _softmax(load: str = _LOAD, update: str = _UPDATE, finish: str = _FINISH, probabilities: str = _PROBABILITIES,
             store: str = _STORE, launch: str = _SOFTMAX_LAUNCH, out: str = "torch.empty_like(x2)") -> str:
    """A triton_softmax in this module's style, with one step replaced."""
    return f"""
        @triton.jit
        def softmax_kernel(X, Y, N, STRIDE, BLOCK: tl.constexpr, COMPUTE: tl.constexpr):
            pid = tl.program_id(0)
            mx = tl.full([], float("-inf"), COMPUTE)
            total = tl.full([], 0.0, COMPUTE)
            for b in range(0, tl.cdiv(N, BLOCK)):
                idx = b * BLOCK + tl.arange(0, BLOCK)
                {load}
                {update}
            {finish}
            for b in range(0, tl.cdiv(N, BLOCK)):
                idx = b * BLOCK + tl.arange(0, BLOCK)
                {load}
                {probabilities}
                {store}


        def triton_softmax(x, block_size=1024):
            x2 = x.contiguous().view(-1, x.shape[-1])
            out = {out}
            compute = tl.float64 if x.dtype == torch.float64 else tl.float32
            {launch}
            return out.view(x.shape)
    """


_SM = "triton_softmax"
_add(PS7, _SM, "no-shift", "exp of the raw logits", source=_softmax(
    update="total = total + tl.sum(tl.exp(v), 0)", probabilities="p = tl.exp(v) / total"))
_add(PS7, _SM, "global-shift", "the batch maximum from the launcher", source=_softmax(
    update="mx = TOP\n                total = total + tl.sum(tl.exp(v - TOP), 0)",
    launch="top = x2.max().item()\n            " + _SOFTMAX_LAUNCH.replace("x2.stride(0), ", "x2.stride(0), top, "),
).replace("N, STRIDE, BLOCK", "N, STRIDE, TOP, BLOCK"))
_add(PS7, _SM, "clip", "logits clamped to +-20", source=_softmax(
    load=_LOAD + "\n                v = tl.minimum(tl.maximum(v, -20.0), 20.0)"))
_add(PS7, _SM, "dtype", "float32 output", source=_softmax(out="torch.empty_like(x2, dtype=torch.float32)"))
_add(PS7, _SM, "mutates-input", "probabilities written over the logits", source=_softmax(out="x2"))
_add(PS7, _SM, "masked-row", "no shift by 0 for an empty maximum", source=_softmax(
    update="new_max = tl.maximum(mx, tl.max(v, 0))\n"
           "                total = total * tl.exp(mx - new_max) + tl.sum(tl.exp(v - new_max), 0)\n"
           "                mx = new_max",
    finish="safe = mx"))
_add(PS7, _SM, "unmasked-last-block", "loads without a mask",
     source=_softmax(load="v = tl.load(X + pid * STRIDE + idx).to(COMPUTE)"))
_add(PS7, _SM, "unmasked-last-block", "masked with a 0 filler",
     source=_softmax(load=_LOAD.replace('other=float("-inf")', "other=0.0")))
_add(PS7, _SM, "block-max", "every block normalised by itself", source=_softmax(
    probabilities="e = tl.exp(v - tl.max(v, 0))\n                p = e / tl.sum(e, 0)"))
_add(PS7, _SM, "no-rescale", "the sum of every block added as it is", source=_softmax(
    update=_UPDATE.replace("total * tl.exp(mx - safe) + ", "total + ")))
_add(PS7, _SM, "store-past-end", "a store without a mask", source=_softmax(store="tl.store(Y + pid * STRIDE + idx, p)"))
for _bug_id in ("log-of-probability", "sum-not-mean", "missing-1/N", "labels-as-one-hot", "smoothing-over-C-1",
                "reg-factor-2", "reg-missing", "sign", "transposed"):
    _na(_SM, _bug_id, "a softmax: no logarithm, loss, labels, regularisation or gradient")
_na(_SM, "wrong-axis", "the launcher takes no axis: the softmax is along the last axis by definition")
_na(_SM, "builds-jacobian", "no Jacobian or vector-Jacobian product in this function")
_na(_SM, "materialises", "the input is the logits themselves: there is nothing larger to avoid")
_correct(PS7, "softmax_kernel_with_cdiv_blocks", triton_softmax=_softmax())


# ---- fused_cross_entropy ---------------------------------------------------------------------------

_CE_LOAD = 'v = tl.load(Z + pid * STRIDE + idx, mask=idx < C, other=float("-inf")).to(COMPUTE)'
_CE_STATS = ("safe = tl.where(mx == float(\"-inf\"), 0.0, mx)\n"
             "            empty = mx == float(\"-inf\")\n"
             "            lse = safe + tl.log(tl.where(empty, 1.0, total))")
_CE_LOSS = "tl.store(LOSS + pid, tl.where(empty, 0.0, lse - tl.load(Z + pid * STRIDE + t).to(COMPUTE)))"
_CE_GRAD = "g = (tl.exp(v - lse) - (idx == t).to(COMPUTE)) / R"
_CE_STORE = "tl.store(G + pid * STRIDE + idx, tl.where(empty, 0.0, g), mask=idx < C)"
_CE_LAUNCH = ("cross_entropy_kernel[(z.shape[0],)](z, target, grad, losses, z.shape[0], z.shape[1], z.stride(0),\n"
              "                                        BLOCK=block_size, COMPUTE=compute)")
_CE_RETURN = "return (losses.sum() / z.shape[0]).to(logits.dtype), grad"


def _cross_entropy(load: str = _CE_LOAD, update: str = _UPDATE, stats: str = _CE_STATS, loss: str = _CE_LOSS,
                   gradient: str = _CE_GRAD, store: str = _CE_STORE, grad: str = "torch.empty_like(z)",
                   finish: str = _CE_RETURN) -> str:
    """A fused_cross_entropy in this module's style, with one step replaced."""
    return f"""
        @triton.jit
        def cross_entropy_kernel(Z, T, G, LOSS, R, C, STRIDE, BLOCK: tl.constexpr, COMPUTE: tl.constexpr):
            pid = tl.program_id(0)
            t = tl.load(T + pid)
            mx = tl.full([], float("-inf"), COMPUTE)
            total = tl.full([], 0.0, COMPUTE)
            for b in range(0, tl.cdiv(C, BLOCK)):
                idx = b * BLOCK + tl.arange(0, BLOCK)
                {load}
                {update}
            {stats}
            {loss}
            for b in range(0, tl.cdiv(C, BLOCK)):
                idx = b * BLOCK + tl.arange(0, BLOCK)
                {load}
                {gradient}
                {store}


        def fused_cross_entropy(logits, target, block_size=1024):
            z = logits.contiguous()
            grad = {grad}
            compute = tl.float64 if z.dtype == torch.float64 else tl.float32
            losses = torch.empty(z.shape[0], dtype=torch.float64 if z.dtype == torch.float64 else torch.float32,
                                 device=z.device)
            {_CE_LAUNCH}
            {finish}
    """


_CE = "fused_cross_entropy"
_add(PS7, _CE, "no-shift", "log of the sum of raw exponentials", source=_cross_entropy(
    update="total = total + tl.sum(tl.exp(v), 0)",
    stats="empty = mx != mx\n            lse = tl.log(total)"))
_add(PS7, _CE, "global-shift", "the batch maximum from the launcher", source=_cross_entropy(
    update="mx = TOP\n                total = total + tl.sum(tl.exp(v - TOP), 0)",
    finish="return (losses.sum() / z.shape[0]).to(logits.dtype), grad",
).replace("R, C, STRIDE, BLOCK", "R, C, STRIDE, TOP, BLOCK").replace(
    "z.stride(0),\n", "z.stride(0), z.max().item(),\n"))
_add(PS7, _CE, "clip", "logits clamped to +-30", source=_cross_entropy(
    load=_CE_LOAD + "\n                v = tl.minimum(tl.maximum(v, -30.0), 30.0)",
    loss=_CE_LOSS.replace("tl.load(Z + pid * STRIDE + t).to(COMPUTE)",
                          "tl.minimum(tl.maximum(tl.load(Z + pid * STRIDE + t).to(COMPUTE), -30.0), 30.0)")))
_add(PS7, _CE, "log-of-probability", "minus the log of the target's probability", source=_cross_entropy(
    loss=_CE_LOSS.replace("lse - tl.load(Z + pid * STRIDE + t).to(COMPUTE)",
                          "-tl.log(tl.exp(tl.load(Z + pid * STRIDE + t).to(COMPUTE) - lse))")))
_add(PS7, _CE, "sum-not-mean", "summed loss, gradient without 1/N", also=("ce-grad-missing-1-over-n",),
     source=_cross_entropy(gradient=_CE_GRAD.replace(" / R", ""),
                           finish="return losses.sum().to(logits.dtype), grad"))
_add(PS7, _CE, "missing-1/N", "gradient not divided by the batch", source=_cross_entropy(
    gradient=_CE_GRAD.replace(" / R", "")))
_add(PS7, _CE, "labels-as-one-hot", "the label subtracted from every class", source=_cross_entropy(
    gradient="g = (tl.exp(v - lse) - t) / R"))
_add(PS7, _CE, "sign", "one-hot minus probabilities", source=_cross_entropy(
    gradient="g = ((idx == t).to(COMPUTE) - tl.exp(v - lse)) / R"))
_add(PS7, _CE, "transposed", "the gradient returned transposed", source=_cross_entropy(
    finish="return (losses.sum() / z.shape[0]).to(logits.dtype), grad.T"))
_add(PS7, _CE, "dtype", "float32 gradient", source=_cross_entropy(grad="torch.empty_like(z, dtype=torch.float32)"))
_add(PS7, _CE, "mutates-input", "gradient written over the logits", source=_cross_entropy(grad="z"))
_add(PS7, _CE, "masked-row", "no guard for an empty maximum", source=_cross_entropy(
    update="new_max = tl.maximum(mx, tl.max(v, 0))\n"
           "                total = total * tl.exp(mx - new_max) + tl.sum(tl.exp(v - new_max), 0)\n"
           "                mx = new_max",
    stats="empty = mx != mx\n            lse = mx + tl.log(total)"))
_add(PS7, _CE, "unmasked-last-block", "loads without a mask",
     source=_cross_entropy(load="v = tl.load(Z + pid * STRIDE + idx).to(COMPUTE)"))
_add(PS7, _CE, "block-max", "the last block's maximum taken as the row's", source=_cross_entropy(
    update="mx = tl.max(v, 0)\n"
           "                safe = tl.where(mx == float(\"-inf\"), 0.0, mx)\n"
           "                total = total + tl.sum(tl.exp(v - safe), 0)"))
_add(PS7, _CE, "no-rescale", "the sum of every block added as it is", source=_cross_entropy(
    update=_UPDATE.replace("total * tl.exp(mx - safe) + ", "total + ")))
_add(PS7, _CE, "store-past-end", "a store without a mask", source=_cross_entropy(
    store="tl.store(G + pid * STRIDE + idx, tl.where(empty, 0.0, g))"))
for _bug_id in ("smoothing-over-C-1", "reg-factor-2", "reg-missing"):
    _na(_CE, _bug_id, "no label smoothing or regularisation in this function")
_na(_CE, "wrong-axis", "one program per row: the launcher takes no axis, each program normalises its own row")
_na(_CE, "builds-jacobian", "the gradient (p - y) / N needs no Jacobian")
_na(_CE, "materialises", "the logits are the input; a second (N, C) array would need a second launch, which the "
                         "checks count (kernel-launch-count)")
_correct(PS7, "cross_entropy_kernel_with_cdiv_blocks", fused_cross_entropy=_cross_entropy())
