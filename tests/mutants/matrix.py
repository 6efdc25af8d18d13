"""The bug-class matrix: for every graded function, a wrong implementation for every class of bug that
applies to it, written the way students write them.

The hand-written mutants of ``psN_*.py`` prove that the grader catches the course's own idea of each
mistake. Real student code is less polite: it computes its own softmax inside a loss function, shifts
by the maximum of the whole batch (``scores -= np.max(scores)``), takes ``-np.log(probs[range(N), y])``,
builds one-hot rows with ``np.eye``, loops over rows, keeps helper functions in the answer cell. This
module writes down the classes of bugs (:data:`BUG_CLASSES`) and, for every graded function, the
wrong implementations in those styles (:data:`MATRIX`), each of which must lose points *and* be named
by one of its class's catalogue ids; and correct implementations in the same styles
(:data:`CORRECT`), which must keep full marks.

Each mutant says which catalogue ids it truly makes (``own``): the diagnosis's precision counts
a named id as right only if it is one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent

from mutants import Mutant


@dataclass(frozen=True)
class BugClass:
    """A class of bug, and the catalogue ids that name it."""

    id: str
    title: str
    ids: frozenset[str]


def _bug(id: str, title: str, *ids: str) -> BugClass:
    return BugClass(id, title, frozenset(ids))


BUG_CLASSES = [
    _bug("no-shift", "no max shift before exp", "softmax-no-max-shift", "logsumexp-no-shift"),
    _bug("global-shift", "shift by the batch's maximum", "global-max-shift"),
    _bug("clip", "clipped logits", "clip-logits"),
    _bug("log-of-probability", "log of a probability", "log-of-softmax", "log-of-probability"),
    _bug("wrong-axis", "wrong axis", "wrong-axis", "predict-wrong-axis"),
    _bug("sum-not-mean", "sum instead of mean", "ce-sum-not-mean"),
    _bug("missing-1/N", "missing 1/N", "ce-grad-missing-1-over-n"),
    _bug("labels-as-one-hot", "integer labels used as one-hot", "ce-integer-labels-as-onehot"),
    _bug("smoothing-over-C-1", "label smoothing over C-1", "label-smoothing-c-minus-1"),
    _bug("reg-factor-2", "regularisation gradient 2 reg W", "reg-gradient-factor-two"),
    _bug("reg-missing", "regularisation missing", "reg-gradient-missing", "reg-not-passed"),
    _bug("sign", "gradient sign flipped", "ce-grad-sign-flipped", "jacobian-sign-flipped", "sgd-ascends"),
    _bug("transposed", "gradient transposed", "dw-transposed", "gradient-transposed", "log-softmax-vjp-transposed"),
    _bug("dtype", "dtype widened", "dtype-not-kept"),
    _bug("mutates-input", "input modified in place", "mutates-input"),
    _bug("builds-jacobian", "the n x n Jacobian built", "vjp-builds-jacobian"),
    _bug("materialises", "the full logits materialised", "materialises-full-logits"),
    _bug("masked-row", "nan for a fully masked row", "masked-row-nan"),
]
BY_ID = {bug.id: bug for bug in BUG_CLASSES}


@dataclass(frozen=True)
class MatrixMutant:
    """A wrong implementation of one graded function, of one class of bug, in one style."""

    assignment: str
    function: str
    bug: str
    style: str
    cells: dict[str, str]
    also: frozenset[str] = frozenset()  # catalogue ids of other mistakes this code makes too

    @property
    def name(self) -> str:
        slug = "".join(c if c.isalnum() else "_" for c in f"{self.bug}_{self.style}").strip("_")
        return f"m_{self.function}__{slug}"

    @property
    def own(self) -> frozenset[str]:
        return BY_ID[self.bug].ids | self.also

    def mutant(self) -> Mutant:
        return Mutant(self.name, self.cells, wrong=True, diagnosis=None)


def _code(source: str) -> str:
    return dedent(source).strip("\n")


MATRIX: list[MatrixMutant] = []
CORRECT: dict[str, list[Mutant]] = {}
NOT_APPLICABLE: dict[tuple[str, str], str] = {}
"""(function, bug class) -> why that class cannot happen to that function."""


def _add(assignment: str, function: str, bug: str, style: str, also: tuple[str, ...] = (), cell: str | None = None,
         **sources: str) -> None:
    cells = {cell or function: _code(sources.pop("source"))} if "source" in sources else {}
    cells.update({k: _code(v) for k, v in sources.items()})
    MATRIX.append(MatrixMutant(assignment, function, bug, style, cells, frozenset(also)))


def _correct(assignment: str, name: str, **cells: str) -> None:
    CORRECT.setdefault(assignment, []).append(Mutant(f"c_{name}", {k: _code(v) for k, v in cells.items()}, wrong=False))


def _na(function: str, bug: str, why: str) -> None:
    NOT_APPLICABLE[(function, bug)] = why


# =========================================================================================
# ps1_softmax: softmax, logsumexp, log_softmax
# =========================================================================================
PS1 = "ps1_softmax"

_add(PS1, "softmax", "no-shift", "one line", source="""
    def softmax(z, axis=-1):
        return np.exp(z) / np.sum(np.exp(z), axis=axis, keepdims=True)
""")
_add(PS1, "softmax", "global-shift", "in place on a copy", source="""
    def softmax(z, axis=-1):
        scores = z.copy()
        scores -= np.max(scores)
        exps = np.exp(scores)
        return exps / np.sum(exps, axis=axis, keepdims=True)
""")
_add(PS1, "softmax", "clip", "clip then shift", source="""
    def softmax(z, axis=-1):
        z = np.clip(z, -500, 500)
        e = np.exp(z - np.max(z, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)
""")
_add(PS1, "softmax", "wrong-axis", "axis ignored", source="""
    def softmax(z, axis=-1):
        e = np.exp(z - np.max(z, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)
""")
_add(PS1, "softmax", "dtype", "preallocated with np.zeros", source="""
    def softmax(z, axis=-1):
        out = np.zeros(np.shape(z))
        out[...] = np.exp(z - np.max(z, axis=axis, keepdims=True))
        return out / np.sum(out, axis=axis, keepdims=True)
""")
_add(PS1, "softmax", "mutates-input", "in place", source="""
    def softmax(z, axis=-1):
        if not np.issubdtype(z.dtype, np.floating):
            z = z.astype(np.float64)
        z -= np.max(z, axis=axis, keepdims=True)
        np.exp(z, out=z)
        z /= np.sum(z, axis=axis, keepdims=True)
        return z
""")

_add(PS1, "logsumexp", "no-shift", "one line", source="""
    def logsumexp(z, axis=-1):
        return np.log(np.sum(np.exp(z), axis=axis))
""")
_add(PS1, "logsumexp", "global-shift", "scalar maximum", source="""
    def logsumexp(z, axis=-1):
        m = np.max(z)
        return m + np.log(np.sum(np.exp(z - m), axis=axis))
""")
_add(PS1, "logsumexp", "clip", "clip at 700", source="""
    def logsumexp(z, axis=-1):
        z = np.clip(z, -700, 700)
        m = np.max(z, axis=axis, keepdims=True)
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(z - m), axis=axis))
""")
_add(PS1, "logsumexp", "wrong-axis", "first axis", source="""
    def logsumexp(z, axis=-1):
        m = np.max(z, axis=0, keepdims=True)
        return np.squeeze(m, axis=0) + np.log(np.sum(np.exp(z - m), axis=0))
""")
_add(PS1, "logsumexp", "dtype", "float64 accumulator", source="""
    def logsumexp(z, axis=-1):
        m = np.max(z, axis=axis, keepdims=True).astype(np.float64)
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(z - m), axis=axis))
""")
_add(PS1, "logsumexp", "mutates-input", "in place", source="""
    def logsumexp(z, axis=-1):
        if not np.issubdtype(z.dtype, np.floating):
            z = z.astype(np.float64)
        m = np.max(z, axis=axis, keepdims=True)
        z -= m
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(z), axis=axis))
""")

_add(PS1, "log_softmax", "no-shift", "one line", source="""
    def log_softmax(z, axis=-1):
        return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
""")
_add(PS1, "log_softmax", "global-shift", "scalar maximum", source="""
    def log_softmax(z, axis=-1):
        shifted = z - np.max(z)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
""")
_add(PS1, "log_softmax", "clip", "clip then shift", source="""
    def log_softmax(z, axis=-1):
        z = np.clip(z, -300, 300)
        shifted = z - np.max(z, axis=axis, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
""")
_add(PS1, "log_softmax", "log-of-probability", "helper in the cell", source="""
    def _probabilities(z, axis):
        e = np.exp(z - np.max(z, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)

    def log_softmax(z, axis=-1):
        return np.log(_probabilities(z, axis))
""")
_add(PS1, "log_softmax", "wrong-axis", "axis ignored", source="""
    def log_softmax(z, axis=-1):
        shifted = z - np.max(z, axis=-1, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
""")
_add(PS1, "log_softmax", "dtype", "float64 cast", source="""
    def log_softmax(z, axis=-1):
        z = np.asarray(z, dtype=np.float64)
        shifted = z - np.max(z, axis=axis, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
""")
_add(PS1, "log_softmax", "mutates-input", "in place", source="""
    def log_softmax(z, axis=-1):
        if not np.issubdtype(z.dtype, np.floating):
            z = z.astype(np.float64)
        z -= np.max(z, axis=axis, keepdims=True)
        z -= np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
        return z
""")
for _f in ("softmax", "logsumexp", "log_softmax"):
    for _bug_id in ("sum-not-mean", "missing-1/N", "labels-as-one-hot", "smoothing-over-C-1", "reg-factor-2",
                    "reg-missing", "transposed", "builds-jacobian", "materialises", "masked-row", "sign"):
        _na(_f, _bug_id, "no loss, label, regularisation, gradient or chunking in this function")
_na("softmax", "log-of-probability", "returns probabilities, takes no logarithm")
_na("logsumexp", "log-of-probability", "takes the log of a sum, not of a probability")

_correct(PS1, "softmax_helper_and_loop", softmax="""
    def _one_row(row):
        e = np.exp(row - row.max())
        return e / e.sum()

    def softmax(z, axis=-1):
        z = np.asarray(z)
        moved = np.moveaxis(z, axis, -1).astype(z.dtype if np.issubdtype(z.dtype, np.floating) else np.float64)
        out = np.empty_like(moved)
        for index in np.ndindex(moved.shape[:-1]):
            out[index] = _one_row(moved[index])
        return np.moveaxis(out, -1, axis)
""")
_correct(PS1, "log_softmax_from_logsumexp", log_softmax="""
    def log_softmax(z, axis=-1):
        return z - np.expand_dims(logsumexp(z, axis=axis), axis)
""")


# =========================================================================================
# ps2_jacobian: softmax_jacobian, softmax_vjp, log_softmax_vjp (students often write their own softmax inside)
# =========================================================================================
PS2 = "ps2_jacobian"

_INNER_SOFTMAX = {
    "no-shift": "e = np.exp(z)",
    "global-shift": "e = np.exp(z - np.max(z))",
    "clip": "e = np.exp(np.clip(z, -60, 60) - np.max(np.clip(z, -60, 60), axis=-1, keepdims=True))",
}
for _bug_id, _line in _INNER_SOFTMAX.items():
    _add(PS2, "softmax_jacobian", _bug_id, "own softmax in a helper", source=f"""
        def _my_softmax(z):
            {_line}
            return e / np.sum(e, axis=-1, keepdims=True)

        def softmax_jacobian(z):
            p = _my_softmax(z)
            n = p.shape[-1]
            return np.einsum("...i,ij->...ij", p, np.eye(n, dtype=p.dtype)) - np.einsum("...i,...j->...ij", p, p)
    """)
    _add(PS2, "softmax_vjp", _bug_id, "own softmax inline", source=f"""
        def softmax_vjp(z, g, axis=-1):
            z = np.moveaxis(z, axis, -1)
            {_line}
            p = e / np.sum(e, axis=-1, keepdims=True)
            g = np.moveaxis(g, axis, -1)
            return np.moveaxis(p * (g - np.sum(g * p, axis=-1, keepdims=True)), -1, axis)
    """)
    _add(PS2, "log_softmax_vjp", _bug_id, "own softmax inline", source=f"""
        def log_softmax_vjp(z, g, axis=-1):
            z, g = np.moveaxis(z, axis, -1), np.moveaxis(g, axis, -1)
            {_line}
            p = e / np.sum(e, axis=-1, keepdims=True)
            return np.moveaxis(g - p * np.sum(g, axis=-1, keepdims=True), -1, axis)
    """)
_add(PS2, "softmax_jacobian", "sign", "outer product minus diagonal", source="""
    def softmax_jacobian(z):
        p = softmax(z)
        return p[..., :, None] * p[..., None, :] - p[..., :, None] * np.eye(p.shape[-1], dtype=p.dtype)
""")
_add(PS2, "softmax_jacobian", "dtype", "np.eye without a dtype", source="""
    def softmax_jacobian(z):
        p = softmax(z)
        return np.einsum("...i,ij->...ij", p, np.eye(p.shape[-1])) - np.einsum("...i,...j->...ij", p, p)
""")
_add(PS2, "softmax_jacobian", "mutates-input", "shifted in place", source="""
    def softmax_jacobian(z):
        if not np.issubdtype(z.dtype, np.floating):
            z = z.astype(np.float64)
        z -= np.max(z, axis=-1, keepdims=True)
        p = np.exp(z) / np.sum(np.exp(z), axis=-1, keepdims=True)
        return p[..., :, None] * np.eye(p.shape[-1], dtype=p.dtype) - p[..., :, None] * p[..., None, :]
""")
_add(PS2, "softmax_vjp", "wrong-axis", "inner product on the last axis", source="""
    def softmax_vjp(z, g, axis=-1):
        p = softmax(z, axis=axis)
        return p * (g - np.sum(g * p, axis=-1, keepdims=True))
""")
_add(PS2, "softmax_vjp", "sign", "inner product minus g", source="""
    def softmax_vjp(z, g, axis=-1):
        p = softmax(z, axis=axis)
        return p * (np.sum(g * p, axis=axis, keepdims=True) - g)
""")
_add(PS2, "softmax_vjp", "dtype", "accumulated in np.zeros", source="""
    def softmax_vjp(z, g, axis=-1):
        p = softmax(z, axis=axis)
        out = np.zeros(np.shape(z))
        out += p * (g - np.sum(g * p, axis=axis, keepdims=True))
        return out
""")
_add(PS2, "softmax_vjp", "mutates-input", "g updated in place", source="""
    def softmax_vjp(z, g, axis=-1):
        p = softmax(z, axis=axis)
        g -= np.sum(g * p, axis=axis, keepdims=True)
        g *= p
        return g
""")
_add(PS2, "softmax_vjp", "builds-jacobian", "through the Jacobian", source="""
    def softmax_vjp(z, g, axis=-1):
        p = np.moveaxis(softmax(z, axis=axis), axis, -1)
        jacobian = p[..., :, None] * np.eye(p.shape[-1], dtype=p.dtype) - p[..., :, None] * p[..., None, :]
        return np.moveaxis(np.einsum("...i,...ij->...j", np.moveaxis(g, axis, -1), jacobian), -1, axis)
""")
_add(PS2, "log_softmax_vjp", "transposed", "K g instead of K^T g", source="""
    def log_softmax_vjp(z, g, axis=-1):
        p = softmax(z, axis=axis)
        return g - np.sum(p * g, axis=axis, keepdims=True)
""")
_add(PS2, "log_softmax_vjp", "wrong-axis", "sum of g over the last axis", source="""
    def log_softmax_vjp(z, g, axis=-1):
        return g - softmax(z, axis=axis) * g.sum(axis=-1, keepdims=True)
""")
_add(PS2, "log_softmax_vjp", "sign", "p times the sum minus g", source="""
    def log_softmax_vjp(z, g, axis=-1):
        p = softmax(z, axis=axis)
        return p * np.sum(g, axis=axis, keepdims=True) - g
""")
_add(PS2, "log_softmax_vjp", "dtype", "accumulated in np.zeros", source="""
    def log_softmax_vjp(z, g, axis=-1):
        out = np.zeros(np.shape(z))
        out += g - softmax(z, axis=axis) * np.sum(g, axis=axis, keepdims=True)
        return out
""")
_add(PS2, "log_softmax_vjp", "mutates-input", "g updated in place", source="""
    def log_softmax_vjp(z, g, axis=-1):
        g -= softmax(z, axis=axis) * np.sum(g, axis=axis, keepdims=True)
        return g
""")
_add(PS2, "log_softmax_vjp", "builds-jacobian", "K = I - 1 p^T built", source="""
    def log_softmax_vjp(z, g, axis=-1):
        p = np.moveaxis(softmax(z, axis=axis), axis, -1)
        K = np.eye(p.shape[-1], dtype=p.dtype) - p[..., None, :]
        return np.moveaxis(np.einsum("...i,...ij->...j", np.moveaxis(g, axis, -1), K), -1, axis)
""")
for _f in ("softmax_jacobian", "softmax_vjp", "log_softmax_vjp"):
    for _bug_id in ("sum-not-mean", "missing-1/N", "labels-as-one-hot", "smoothing-over-C-1", "reg-factor-2",
                    "reg-missing", "materialises", "masked-row", "log-of-probability"):
        _na(_f, _bug_id, "no loss, labels, regularisation, logarithm or chunking in this function")
for _f in ("softmax_jacobian", "softmax_vjp"):
    _na(_f, "transposed", "the softmax Jacobian is symmetric: its transpose is the same matrix")
_na("softmax_jacobian", "wrong-axis", "the Jacobian is taken along the last axis, by definition")
_na("softmax_jacobian", "builds-jacobian", "this function's result is the Jacobian")

_correct(PS2, "jacobian_loop_over_rows", softmax_jacobian="""
    def softmax_jacobian(z):
        p = softmax(z)
        flat = p.reshape(-1, p.shape[-1])
        out = np.empty((flat.shape[0], flat.shape[1], flat.shape[1]), dtype=p.dtype)
        for row in range(flat.shape[0]):
            out[row] = np.diag(flat[row]) - np.outer(flat[row], flat[row])
        return out.reshape(*p.shape, p.shape[-1])
""")
_correct(PS2, "vjp_own_stable_softmax", softmax_vjp="""
    def softmax_vjp(z, g, axis=-1):
        shifted = z - np.max(z, axis=axis, keepdims=True)
        p = np.exp(shifted)
        p /= np.sum(p, axis=axis, keepdims=True)
        return p * g - p * np.sum(p * g, axis=axis, keepdims=True)
""")


# =========================================================================================
# ps3_cross_entropy: cross_entropy, cross_entropy_grad, softmax_regression_loss_and_grad
# =========================================================================================
PS3 = "ps3_cross_entropy"

# One-hot rows and smoothing, as the notebook's students write it (np.eye, then the mixture).
_TARGET = """
            target = np.asarray(target)
            q = np.eye(c, dtype=logits.dtype)[target] if target.ndim == 1 else target.astype(logits.dtype)
            q = (1.0 - label_smoothing) * q + label_smoothing / c"""


def _ce(log_p: str, reduce: str = "-np.sum(q * log_p) / n") -> str:
    return f"""
        def cross_entropy(logits, target, label_smoothing=0.0):
            n, c = logits.shape{_TARGET}
            {log_p}
            return {reduce}
    """


_add(PS3, "cross_entropy", "no-shift", "log-sum-exp without the shift",
     source=_ce("log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))"))
_add(PS3, "cross_entropy", "global-shift", "shift by the batch maximum",
     source=_ce("shifted = logits - np.max(logits)\n"
                "            log_p = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))"))
_add(PS3, "cross_entropy", "clip", "clipped logits",
     source=_ce("log_p = log_softmax(np.clip(logits, -100, 100))"))
_add(PS3, "cross_entropy", "log-of-probability", "log of the softmax",
     source=_ce("log_p = np.log(softmax(logits))"))
_add(PS3, "cross_entropy", "log-of-probability", "picked probability", source="""
    def cross_entropy(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        probs = softmax(logits)
        target = np.asarray(target)
        if target.ndim == 1:
            nll = -np.log(probs[range(n), target])
            uniform = -np.mean(np.log(probs), axis=1)
            return float(np.mean((1.0 - label_smoothing) * nll + label_smoothing * uniform))
        q = (1.0 - label_smoothing) * target + label_smoothing / c
        return -np.sum(q * np.log(probs)) / n
""")
_add(PS3, "cross_entropy", "wrong-axis", "normalised over the batch",
     source=_ce("log_p = log_softmax(logits, axis=0)"))
_add(PS3, "cross_entropy", "sum-not-mean", "sum", source=_ce("log_p = log_softmax(logits)", "-np.sum(q * log_p)"))
_add(PS3, "cross_entropy", "smoothing-over-C-1", "wrong classes only", source="""
    def cross_entropy(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        target = np.asarray(target)
        q = np.eye(c)[target] if target.ndim == 1 else target
        q = (1.0 - label_smoothing) * q + label_smoothing * (1.0 - q) / (c - 1)
        return -np.sum(q * log_softmax(logits)) / n
""")
_add(PS3, "cross_entropy", "labels-as-one-hot", "labels multiplied in", source="""
    def cross_entropy(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        q = (1.0 - label_smoothing) * np.asarray(target) + label_smoothing / c
        return -np.sum(q * log_softmax(logits)) / n
""")
_add(PS3, "cross_entropy", "mutates-input", "shifted in place", source="""
    def cross_entropy(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        logits -= np.max(logits, axis=1, keepdims=True)
        log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
        target = np.asarray(target)
        q = np.eye(c)[target] if target.ndim == 1 else target
        q = (1.0 - label_smoothing) * q + label_smoothing / c
        return -np.sum(q * log_p) / n
""")


def _ce_grad(probs: str, result: str = "(p - q) / n") -> str:
    return f"""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape{_TARGET}
            {probs}
            return {result}
    """


_add(PS3, "cross_entropy_grad", "no-shift", "own softmax",
     source=_ce_grad("p = np.exp(logits) / np.sum(np.exp(logits), axis=1, keepdims=True)"))
_add(PS3, "cross_entropy_grad", "global-shift", "shift by the batch maximum", source="""
    def cross_entropy_grad(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        z = logits - np.max(logits)
        p = np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)
        target = np.asarray(target)
        q = np.eye(c, dtype=logits.dtype)[target] if target.ndim == 1 else target.astype(logits.dtype)
        q = (1.0 - label_smoothing) * q + label_smoothing / c
        return (p - q) / n
""")
_add(PS3, "cross_entropy_grad", "clip", "clipped logits", source=_ce_grad("p = softmax(np.clip(logits, -30, 30))"))
_add(PS3, "cross_entropy_grad", "wrong-axis", "softmax over the batch", source=_ce_grad("p = softmax(logits, axis=0)"))
_add(PS3, "cross_entropy_grad", "missing-1/N", "loop over examples", source="""
    def cross_entropy_grad(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        target = np.asarray(target)
        grad = np.empty_like(logits)
        for i in range(n):
            q = np.eye(c, dtype=logits.dtype)[target[i]] if target.ndim == 1 else target[i]
            grad[i] = softmax(logits[i]) - ((1.0 - label_smoothing) * q + label_smoothing / c)
        return grad
""")
_add(PS3, "cross_entropy_grad", "labels-as-one-hot", "labels subtracted",
     also=("dtype-not-kept", "label-smoothing-ignored"), source="""
    def cross_entropy_grad(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        target = np.asarray(target)
        y = target[:, None] if target.ndim == 1 else target
        return (softmax(logits) - y) / n
""")
_add(PS3, "cross_entropy_grad", "smoothing-over-C-1", "wrong classes only", source="""
    def cross_entropy_grad(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        target = np.asarray(target)
        q = np.eye(c, dtype=logits.dtype)[target] if target.ndim == 1 else target.astype(logits.dtype)
        q = (1.0 - label_smoothing) * q + label_smoothing * (1.0 - q) / (c - 1)
        return (softmax(logits) - q) / n
""")
_add(PS3, "cross_entropy_grad", "sign", "target minus probabilities",
     source=_ce_grad("p = softmax(logits)", "(q - p) / n"))
_add(PS3, "cross_entropy_grad", "transposed", "classes first", source=_ce_grad("p = softmax(logits)", "(p - q).T / n"))
_add(PS3, "cross_entropy_grad", "dtype", "np.eye without a dtype", source="""
    def cross_entropy_grad(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        target = np.asarray(target)
        q = np.eye(c)[target] if target.ndim == 1 else target
        q = (1.0 - label_smoothing) * q + label_smoothing / c
        return (softmax(logits) - q) / n
""")
_add(PS3, "cross_entropy_grad", "mutates-input", "probabilities in place", source="""
    def cross_entropy_grad(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        logits -= np.max(logits, axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= np.sum(logits, axis=1, keepdims=True)
        target = np.asarray(target)
        q = np.eye(c, dtype=logits.dtype)[target] if target.ndim == 1 else target.astype(logits.dtype)
        q = (1.0 - label_smoothing) * q + label_smoothing / c
        return (logits - q) / n
""")
for _bug_id in ("reg-factor-2", "reg-missing", "builds-jacobian", "materialises", "masked-row"):
    _na("cross_entropy", _bug_id, "no regularisation, Jacobian or chunking in this function")
    _na("cross_entropy_grad", _bug_id, "no regularisation, Jacobian or chunking in this function")
for _bug_id in ("missing-1/N", "sign", "transposed", "dtype"):
    _na("cross_entropy", _bug_id, "returns a loss (a float), no gradient")
_na("cross_entropy_grad", "log-of-probability", "the gradient p - q takes no logarithm")
_na("cross_entropy_grad", "sum-not-mean", "a gradient without 1/N is the class 'missing 1/N'")


def _regression(scores: str = "scores = X @ W + b",
                probs: str = "probs = np.exp(scores) / np.sum(np.exp(scores), axis=1, keepdims=True)",
                loss: str = "loss = -np.mean(np.log(probs[range(N), y])) + 0.5 * reg * np.sum(W * W)",
                dscores: str = "dscores = probs.copy()\n            dscores[range(N), y] -= 1\n"
                               "            dscores /= N",
                dW: str = "dW = X.T @ dscores + reg * W", db: str = "db = np.sum(dscores, axis=0)") -> str:
    """softmax_regression_loss_and_grad in the style of the classic course notes (scores, probs, dscores)."""
    return f"""
        def softmax_regression_loss_and_grad(W, b, X, y, reg=0.0):
            N = X.shape[0]
            {scores}
            {probs}
            {loss}
            {dscores}
            {dW}
            {db}
            return loss, dW, db
    """


_STABLE_PROBS = ("shifted = scores - np.max(scores, axis=1, keepdims=True)\n"
                 "            probs = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)")
_STABLE_LOSS = ("log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))\n"
                "            loss = -np.mean(log_probs[range(N), y]) + 0.5 * reg * np.sum(W * W)")
_REGRESSION = "softmax_regression_loss_and_grad"

# The classic snippet, unshifted: two mistakes at once.
_add(PS3, _REGRESSION, "no-shift", "classic snippet", also=("log-of-probability",), source=_regression())
_add(PS3, _REGRESSION, "no-shift", "log-sum-exp without the shift", source=_regression(
    loss="loss = np.mean(np.log(np.sum(np.exp(scores), axis=1)) - scores[range(N), y]) + 0.5 * reg * np.sum(W * W)"))
_add(PS3, _REGRESSION, "global-shift", "classic snippet with scores -= np.max(scores)", also=("log-of-probability",),
     source=_regression(scores="scores = X @ W + b\n            scores -= np.max(scores)"))
_add(PS3, _REGRESSION, "global-shift", "log-softmax with the batch maximum", source=_regression(
    scores="scores = X @ W + b\n            shifted = scores - np.max(scores)",
    probs="probs = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)", loss=_STABLE_LOSS))
_add(PS3, _REGRESSION, "log-of-probability", "classic snippet with the row maximum", source=_regression(
    probs=_STABLE_PROBS))
_add(PS3, _REGRESSION, "clip", "clipped scores", source=_regression(
    scores="scores = np.clip(X @ W + b, -50, 50)", probs=_STABLE_PROBS, loss=_STABLE_LOSS))
_add(PS3, _REGRESSION, "sum-not-mean", "summed loss and its gradient", also=("ce-grad-missing-1-over-n",),
     source=_regression(probs=_STABLE_PROBS,
                        loss="log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))\n"
                             "            loss = -np.sum(log_probs[range(N), y]) + 0.5 * reg * np.sum(W * W)",
                        dscores="dscores = probs.copy()\n            dscores[range(N), y] -= 1"))
_add(PS3, _REGRESSION, "missing-1/N", "dscores not divided", source=_regression(
    probs=_STABLE_PROBS, loss=_STABLE_LOSS, dscores="dscores = probs.copy()\n            dscores[range(N), y] -= 1"))
_add(PS3, _REGRESSION, "labels-as-one-hot", "labels subtracted", also=("dtype-not-kept",), source=_regression(
    probs=_STABLE_PROBS, loss=_STABLE_LOSS, dscores="dscores = (probs - y[:, None]) / N"))
_add(PS3, _REGRESSION, "reg-factor-2", "derivative of reg * W**2", source=_regression(
    probs=_STABLE_PROBS, loss=_STABLE_LOSS, dW="dW = X.T @ dscores + 2 * reg * W"))
_add(PS3, _REGRESSION, "reg-missing", "data term only", source=_regression(
    probs=_STABLE_PROBS, loss=_STABLE_LOSS, dW="dW = X.T @ dscores"))
_add(PS3, _REGRESSION, "sign", "one-hot minus probabilities", source=_regression(
    probs=_STABLE_PROBS, loss=_STABLE_LOSS,
    dscores="dscores = -probs\n            dscores[range(N), y] += 1\n            dscores /= N"))
_add(PS3, _REGRESSION, "transposed", "dscores.T @ X", source=_regression(
    probs=_STABLE_PROBS, loss=_STABLE_LOSS, dW="dW = dscores.T @ X + reg * W.T"))
_add(PS3, _REGRESSION, "dtype", "one-hot rows from np.eye", source=_regression(
    probs=_STABLE_PROBS, loss=_STABLE_LOSS, dscores="dscores = (probs - np.eye(W.shape[1])[y]) / N"))
_add(PS3, _REGRESSION, "mutates-input", "dW aliases W", source=_regression(
    probs=_STABLE_PROBS, loss=_STABLE_LOSS, dW="dW = W\n            dW *= reg\n            dW += X.T @ dscores"))
for _bug_id in ("wrong-axis", "smoothing-over-C-1", "builds-jacobian", "materialises", "masked-row"):
    _na(_REGRESSION, _bug_id, "no axis argument, label smoothing, Jacobian or chunking in this function")

_correct(PS3, "regression_classic_snippet_done_right", softmax_regression_loss_and_grad=_regression(
    probs=_STABLE_PROBS, loss=_STABLE_LOSS))
_correct(PS3, "regression_own_helpers_and_eye", softmax_regression_loss_and_grad="""
    def _log_softmax_rows(scores):
        shifted = scores - scores.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def softmax_regression_loss_and_grad(W, b, X, y, reg=0.0):
        n, c = X.shape[0], W.shape[1]
        log_p = _log_softmax_rows(X @ W + b)
        onehot = np.eye(c, dtype=log_p.dtype)[y]
        loss = -np.sum(onehot * log_p) / n + 0.5 * reg * np.sum(W ** 2)
        delta = (np.exp(log_p) - onehot) / n
        return loss, X.T @ delta + reg * W, delta.sum(axis=0)
""")
_correct(PS3, "ce_grad_loop_with_own_softmax", cross_entropy_grad="""
    def cross_entropy_grad(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        target = np.asarray(target)
        grad = np.empty_like(logits)
        for i in range(n):
            row = logits[i] - logits[i].max()
            p = np.exp(row) / np.exp(row).sum()
            q = np.eye(c, dtype=logits.dtype)[target[i]] if target.ndim == 1 else target[i]
            grad[i] = (p - ((1.0 - label_smoothing) * q + label_smoothing / c)) / n
        return grad
""")
_correct(PS3, "ce_picked_log_softmax", cross_entropy="""
    def cross_entropy(logits, target, label_smoothing=0.0):
        n, c = logits.shape
        log_p = log_softmax(logits)
        target = np.asarray(target)
        if target.ndim == 1:
            nll = -log_p[range(n), target]
        else:
            nll = -np.sum(target * log_p, axis=1)
        return float(np.mean((1.0 - label_smoothing) * nll - label_smoothing * np.mean(log_p, axis=1)))
""")


# =========================================================================================
# ps4_numpy_training: predict, train_softmax_regression
# =========================================================================================
PS4 = "ps4_numpy_training"


def _predict(probs: str, pick: str = "np.argmax(probs, axis=1)") -> str:
    return f"""
        def predict(W, b, X):
            scores = X @ W + b
            {probs}
            return {pick}
    """


_add(PS4, "predict", "no-shift", "argmax of probabilities",
     source=_predict("probs = np.exp(scores) / np.sum(np.exp(scores), axis=1, keepdims=True)"))
_add(PS4, "predict", "global-shift", "argmax of probabilities, batch maximum",
     source=_predict("scores -= np.max(scores)\n"
                     "            probs = np.exp(scores) / np.sum(np.exp(scores), axis=1, keepdims=True)"))
_add(PS4, "predict", "clip", "clipped scores", source=_predict("probs = np.clip(scores, -20, 20)"))
_add(PS4, "predict", "wrong-axis", "probabilities over the batch", source=_predict(
    "probs = np.exp(scores - scores.max(axis=0)) / np.sum(np.exp(scores - scores.max(axis=0)), axis=0)",
    "np.argmax(probs, axis=0)"))
for _bug_id in ("log-of-probability", "sum-not-mean", "missing-1/N", "labels-as-one-hot", "smoothing-over-C-1",
                "reg-factor-2", "reg-missing", "sign", "transposed", "dtype", "mutates-input", "builds-jacobian",
                "materialises", "masked-row"):
    _na("predict", _bug_id, "predict returns the arg max of the scores: no loss, gradient or float result")


def _train(step: str = "loss, dW, db = softmax_regression_loss_and_grad(W, b, X[batch], y[batch], reg)",
           update: str = "W -= lr * dW\n                    b -= lr * db") -> str:
    return f"""
        def train_softmax_regression(X, y, num_classes, lr=0.5, epochs=30, batch_size=64, reg=1e-4, seed=0):
            X, y = np.asarray(X), np.asarray(y)
            if X.ndim != 2 or y.ndim != 1 or len(y) != len(X) or num_classes < 2 or y.min() < 0 \\
                    or y.max() >= num_classes or lr <= 0 or epochs < 1 or batch_size < 1 or reg < 0:
                raise ValueError(
                    "bad arguments: X (N, D), y (N,) labels below num_classes, lr > 0, epochs >= 1, "
                    "batch_size >= 1, reg >= 0")
            n, d = X.shape
            W = np.zeros((d, num_classes), dtype=X.dtype)
            b = np.zeros(num_classes, dtype=X.dtype)
            rng = np.random.default_rng(seed)
            history = {{"loss": []}}
            for epoch in range(epochs):
                order = rng.permutation(n)
                losses = []
                for start in range(0, n, batch_size):
                    batch = order[start:start + batch_size]
                    {step}
                    {update}
                    losses.append(float(loss))
                history["loss"].append(float(np.mean(losses)))
            return W, b, history
    """


_add(PS4, "train_softmax_regression", "sign", "gradient added", source=_train(
    update="W = W + lr * dW\n                    b = b + lr * db"))
_add(PS4, "train_softmax_regression", "reg-missing", "reg left out of the call", source=_train(
    step="loss, dW, db = softmax_regression_loss_and_grad(W, b, X[batch], y[batch])"))
_add(PS4, "train_softmax_regression", "no-shift", "own loss and gradient", source=_train(step="""\
Xb, yb = X[batch], y[batch]
                    scores = Xb @ W + b
                    probs = np.exp(scores) / np.sum(np.exp(scores), axis=1, keepdims=True)
                    loss = np.mean(np.log(np.sum(np.exp(scores), axis=1)) - scores[range(len(yb)), yb])
                    loss += 0.5 * reg * np.sum(W * W)
                    dscores = probs.copy()
                    dscores[range(len(yb)), yb] -= 1
                    dscores /= len(yb)
                    dW = Xb.T @ dscores + reg * W
                    db = dscores.sum(axis=0)"""))
for _bug_id in ("global-shift", "clip", "log-of-probability", "wrong-axis", "sum-not-mean", "missing-1/N",
                "labels-as-one-hot", "smoothing-over-C-1", "reg-factor-2", "transposed", "dtype", "mutates-input",
                "builds-jacobian", "materialises", "masked-row"):
    _na("train_softmax_regression", _bug_id, "the loss and its gradients are the provided function's (problem set 3 "
        "grades them); what training adds is the update, the loop and the data it feeds")

_correct(PS4, "predict_scores_then_argmax_loop", predict="""
    def predict(W, b, X):
        scores = X @ W + b
        return scores.argmax(axis=1)
""")
_correct(PS4, "train_full_batches_by_index", train_softmax_regression=_train())


# =========================================================================================
# ps5_pytorch: the hand-written SoftmaxCrossEntropy (tested through softmax_cross_entropy)
# =========================================================================================
PS5 = "ps5_pytorch"


def _function(forward: str, backward: str) -> str:
    return f"""
        class SoftmaxCrossEntropy(torch.autograd.Function):
            @staticmethod
            def forward(ctx, logits, target):
                ctx.save_for_backward(logits, target)
                rows = torch.arange(logits.shape[0], device=logits.device)
                {forward}

            @staticmethod
            def backward(ctx, grad_output):
                logits, target = ctx.saved_tensors
                rows = torch.arange(logits.shape[0], device=logits.device)
                {backward}
    """


_FORWARD = "return (torch.logsumexp(logits, dim=1) - logits[rows, target]).mean()"
_BACKWARD = ("grad = torch.softmax(logits, dim=1)\n"
             "                grad[rows, target] -= 1.0\n"
             "                return grad_output * grad / logits.shape[0], None")
_SCE = "softmax_cross_entropy"
_add(PS5, _SCE, "no-shift", "exp and log by hand", cell="SoftmaxCrossEntropy", source=_function(
    "return (torch.log(torch.exp(logits).sum(dim=1)) - logits[rows, target]).mean()",
    "grad = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)\n"
    "                grad[rows, target] -= 1.0\n"
    "                return grad_output * grad / logits.shape[0], None"))
_add(PS5, _SCE, "global-shift", "shift by the batch maximum", cell="SoftmaxCrossEntropy", source=_function(
    "z = logits - logits.max()\n"
    "                return (torch.log(torch.exp(z).sum(dim=1)) - z[rows, target]).mean()",
    "z = logits - logits.max()\n"
    "                grad = torch.exp(z) / torch.exp(z).sum(dim=1, keepdim=True)\n"
    "                grad[rows, target] -= 1.0\n"
    "                return grad_output * grad / logits.shape[0], None"))
_add(PS5, _SCE, "clip", "clamped logits", cell="SoftmaxCrossEntropy", source=_function(
    "z = logits.clamp(-50, 50)\n"
    "                return (torch.logsumexp(z, dim=1) - z[rows, target]).mean()",
    "grad = torch.softmax(logits.clamp(-50, 50), dim=1)\n"
    "                grad[rows, target] -= 1.0\n"
    "                return grad_output * grad / logits.shape[0], None"))
_add(PS5, _SCE, "log-of-probability", "log of the picked probability", cell="SoftmaxCrossEntropy", source=_function(
    "return -torch.log(torch.softmax(logits, dim=1)[rows, target]).mean()", _BACKWARD))
_add(PS5, _SCE, "wrong-axis", "softmax over the batch in backward", cell="SoftmaxCrossEntropy", source=_function(
    _FORWARD, "grad = torch.softmax(logits, dim=0)\n"
              "                grad[rows, target] -= 1.0\n"
              "                return grad_output * grad / logits.shape[0], None"))
_add(PS5, _SCE, "sum-not-mean", "summed loss", cell="SoftmaxCrossEntropy", also=("ce-grad-missing-1-over-n",),
     source=_function("return (torch.logsumexp(logits, dim=1) - logits[rows, target]).sum()",
                      "grad = torch.softmax(logits, dim=1)\n"
                      "                grad[rows, target] -= 1.0\n"
                      "                return grad_output * grad, None"))
_add(PS5, _SCE, "missing-1/N", "one-hot from F.one_hot", cell="SoftmaxCrossEntropy", source=_function(
    _FORWARD, "onehot = F.one_hot(target, logits.shape[1]).to(logits.dtype)\n"
              "                return grad_output * (torch.softmax(logits, dim=1) - onehot), None"))
_add(PS5, _SCE, "labels-as-one-hot", "labels subtracted", cell="SoftmaxCrossEntropy", source=_function(
    _FORWARD, "grad = torch.softmax(logits, dim=1) - target[:, None]\n"
              "                return grad_output * grad / logits.shape[0], None"))
_add(PS5, _SCE, "sign", "one-hot minus probabilities", cell="SoftmaxCrossEntropy", source=_function(
    _FORWARD, "onehot = F.one_hot(target, logits.shape[1]).to(logits.dtype)\n"
              "                return grad_output * (onehot - torch.softmax(logits, dim=1)) / logits.shape[0], None"))
_add(PS5, _SCE, "transposed", "classes first", cell="SoftmaxCrossEntropy", source=_function(
    _FORWARD, "grad = torch.softmax(logits, dim=1)\n"
              "                grad[rows, target] -= 1.0\n"
              "                return grad_output * grad.T / logits.shape[0], None"))
_add(PS5, _SCE, "dtype", "loss in float64", cell="SoftmaxCrossEntropy", source=_function(
    "z = logits.double()\n"
    "                return (torch.logsumexp(z, dim=1) - z[rows, target]).mean()", _BACKWARD))
_add(PS5, _SCE, "mutates-input", "exp in place in backward", cell="SoftmaxCrossEntropy", source=_function(
    _FORWARD, "logits.sub_(logits.max(dim=1, keepdim=True).values).exp_()\n"
              "                grad = logits / logits.sum(dim=1, keepdim=True)\n"
              "                grad[rows, target] -= 1.0\n"
              "                return grad_output * grad / logits.shape[0], None"))
for _bug_id in ("smoothing-over-C-1", "reg-factor-2", "reg-missing", "builds-jacobian", "materialises", "masked-row"):
    _na(_SCE, _bug_id, "no label smoothing, regularisation, Jacobian or chunking in this function")

_correct(PS5, "function_one_hot_and_manual_shift", SoftmaxCrossEntropy=_function(
    "m = logits.max(dim=1, keepdim=True).values\n"
    "                lse = m.squeeze(1) + torch.log(torch.exp(logits - m).sum(dim=1))\n"
    "                return (lse - logits[rows, target]).mean()",
    "p = torch.exp(logits - logits.max(dim=1, keepdim=True).values)\n"
    "                p = p / p.sum(dim=1, keepdim=True)\n"
    "                onehot = F.one_hot(target, logits.shape[1]).to(logits.dtype)\n"
    "                return grad_output * (p - onehot) / logits.shape[0], None"))


# =========================================================================================
# ps6_at_scale: online_logsumexp, chunked_linear_cross_entropy
# =========================================================================================
PS6 = "ps6_at_scale"


def _online(body: str) -> str:
    return f"""
        def online_logsumexp(chunks):
            m = s = None
            for chunk in chunks:
                {body}
            return m + np.log(s)
    """


_ROW_UPDATE = ("new_m = chunk_max if m is None else np.maximum(m, chunk_max)\n"
               "                s = (0.0 if s is None else s * np.exp(m - new_m)) + "
               "np.sum(np.exp(chunk - new_m[:, None]), axis=1)\n"
               "                m = new_m")
_add(PS6, "online_logsumexp", "no-shift", "running sum of exponentials", source="""
    def online_logsumexp(chunks):
        total = None
        for chunk in chunks:
            part = np.sum(np.exp(chunk), axis=1)
            total = part if total is None else total + part
        return np.log(total)
""")
_add(PS6, "online_logsumexp", "global-shift", "maximum of the whole chunk", also=("masked-row-nan",),
     source=_online("chunk_max = np.full(chunk.shape[0], np.max(chunk))\n                " + _ROW_UPDATE))
_add(PS6, "online_logsumexp", "dtype", "chunks in float64", also=("masked-row-nan",),
     source=_online("chunk = np.asarray(chunk, dtype=np.float64)\n"
                    "                chunk_max = np.max(chunk, axis=1)\n                " + _ROW_UPDATE))
_add(PS6, "online_logsumexp", "mutates-input", "chunk shifted in place", also=("masked-row-nan",), source="""
    def online_logsumexp(chunks):
        m = s = None
        for chunk in chunks:
            chunk_max = np.max(chunk, axis=1)
            new_m = chunk_max if m is None else np.maximum(m, chunk_max)
            chunk -= new_m[:, None]
            s = (0.0 if s is None else s * np.exp(m - new_m)) + np.sum(np.exp(chunk), axis=1)
            m = new_m
        return m + np.log(s)
""")
_add(PS6, "online_logsumexp", "masked-row", "first chunk as the start",
     source=_online("chunk_max = np.max(chunk, axis=1)\n                " + _ROW_UPDATE))
_add(PS6, "online_logsumexp", "materialises", "stacked chunks", source="""
    def online_logsumexp(chunks):
        logits = np.hstack(list(chunks))
        m = np.max(logits, axis=1, keepdims=True)
        return m[:, 0] + np.log(np.sum(np.exp(logits - m), axis=1))
""")
for _bug_id in ("clip", "log-of-probability", "wrong-axis", "sum-not-mean", "missing-1/N", "labels-as-one-hot",
                "smoothing-over-C-1", "reg-factor-2", "reg-missing", "sign", "transposed", "builds-jacobian"):
    _na("online_logsumexp", _bug_id, "a log-sum-exp of a stream: no loss, labels, gradient or axis argument")


_ONLINE_PASS = ("new_m = np.maximum(m, np.max(z, axis=1))\n"
                "                s = s * np.exp(m - new_m) + np.sum(np.exp(z - new_m[:, None]), axis=1)\n"
                "                m = new_m")


def _chunked(first_pass: str = _ONLINE_PASS,
             lse: str = "lse = m + np.log(s)",
             loss: str = "loss = float(np.mean(lse - target_logit))",
             grad: str = "G = np.exp(h @ W_chunk - lse[:, None])\n"
                         "                G[rows[here], target[here] - start] -= 1.0\n"
                         "                G /= n",
             setup: str = "dh, dW = np.zeros_like(h), np.zeros_like(W)",
             store: str = "dW[:, start:stop] = h.T @ G",
             finish: str = "return loss, dh, dW") -> str:
    return f"""
        def chunked_linear_cross_entropy(h, W, target, chunk_size):
            n, vocabulary = h.shape[0], W.shape[1]
            rows = np.arange(n)
            m = np.full(n, -np.inf, dtype=h.dtype)
            s = np.zeros(n, dtype=h.dtype)
            target_logit = np.zeros(n, dtype=h.dtype)
            for start in range(0, vocabulary, chunk_size):
                stop = min(start + chunk_size, vocabulary)
                z = h @ W[:, start:stop]
                {first_pass}
                here = (target >= start) & (target < stop)
                target_logit[here] = z[rows[here], target[here] - start]
            {lse}
            {loss}
            {setup}
            for start in range(0, vocabulary, chunk_size):
                stop = min(start + chunk_size, vocabulary)
                W_chunk = W[:, start:stop]
                here = (target >= start) & (target < stop)
                {grad}
                {store}
                dh += G @ W_chunk.T
            {finish}
    """


_CHUNKED = "chunked_linear_cross_entropy"
_add(PS6, _CHUNKED, "no-shift", "sum of exponentials", source=_chunked(
    first_pass="s = s + np.sum(np.exp(z), axis=1)", lse="lse = np.log(s)"))
_add(PS6, _CHUNKED, "global-shift", "maximum of the whole chunk", source=_chunked(
    first_pass="new_m = np.maximum(m, np.max(z))\n"
               "                s = s * np.exp(m - new_m) + np.sum(np.exp(z - new_m), axis=1)\n"
               "                m = new_m"))
_add(PS6, _CHUNKED, "clip", "clipped logits", source=_chunked(
    first_pass="z = np.clip(z, -30, 30)\n"
               "                new_m = np.maximum(m, np.max(z, axis=1))\n"
               "                s = s * np.exp(m - new_m) + np.sum(np.exp(z - new_m[:, None]), axis=1)\n"
               "                m = new_m",
    grad="G = np.exp(np.clip(h @ W_chunk, -30, 30) - lse[:, None])\n"
         "                G[rows[here], target[here] - start] -= 1.0\n"
         "                G /= n"))
_add(PS6, _CHUNKED, "log-of-probability", "log of the target's probability", source=_chunked(
    loss="loss = float(-np.mean(np.log(np.exp(target_logit - lse))))"))
_add(PS6, _CHUNKED, "sum-not-mean", "summed loss and gradient", also=("ce-grad-missing-1-over-n",), source=_chunked(
    loss="loss = float(np.sum(lse - target_logit))",
    grad="G = np.exp(h @ W_chunk - lse[:, None])\n"
         "                G[rows[here], target[here] - start] -= 1.0"))
_add(PS6, _CHUNKED, "missing-1/N", "G not divided", source=_chunked(
    grad="G = np.exp(h @ W_chunk - lse[:, None])\n"
         "                G[rows[here], target[here] - start] -= 1.0"))
_add(PS6, _CHUNKED, "labels-as-one-hot", "labels subtracted", source=_chunked(
    grad="G = (np.exp(h @ W_chunk - lse[:, None]) - target[:, None]) / n"))
_add(PS6, _CHUNKED, "sign", "one-hot minus probabilities", source=_chunked(
    grad="G = -np.exp(h @ W_chunk - lse[:, None])\n"
         "                G[rows[here], target[here] - start] += 1.0\n"
         "                G /= n"))
_add(PS6, _CHUNKED, "transposed", "dW built vocabulary first", source=_chunked(
    setup="dh, dW = np.zeros_like(h), np.zeros((W.shape[1], W.shape[0]), dtype=W.dtype)",
    store="dW[start:stop] = G.T @ h"))
_add(PS6, _CHUNKED, "dtype", "gradients preallocated with np.zeros", source=_chunked(
    setup="dh, dW = np.zeros(h.shape), np.zeros(W.shape)"))
_add(PS6, _CHUNKED, "materialises", "all the logits at once", source="""
    def chunked_linear_cross_entropy(h, W, target, chunk_size):
        n = h.shape[0]
        logits = h @ W
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = float(-np.mean(log_p[np.arange(n), target]))
        G = np.exp(log_p)
        G[np.arange(n), target] -= 1.0
        G /= n
        return loss, G @ W.T, h.T @ G
""")
for _bug_id in ("wrong-axis", "smoothing-over-C-1", "reg-factor-2", "reg-missing", "builds-jacobian"):
    _na(_CHUNKED, _bug_id, "no axis argument, label smoothing, regularisation or Jacobian in this function")
_na(_CHUNKED, "mutates-input", "nothing in the computation is naturally done in place on h or W")
_na(_CHUNKED, "masked-row", "the logits h @ W are finite: no row is masked")

_correct(PS6, "online_from_the_empty_state", online_logsumexp="""
    def online_logsumexp(chunks):
        m, s = None, None
        for chunk in chunks:
            chunk = np.asarray(chunk)
            if not np.issubdtype(chunk.dtype, np.floating):
                chunk = chunk.astype(np.float64)
            if m is None:
                m = np.full(chunk.shape[:-1], -np.inf, dtype=chunk.dtype)
                s = np.zeros(chunk.shape[:-1], dtype=chunk.dtype)
            new_m = np.maximum(m, chunk.max(axis=-1))
            safe = np.where(np.isneginf(new_m), 0, new_m)
            s = s * np.exp(np.where(np.isneginf(m), -np.inf, m - safe)) + np.exp(chunk - safe[..., None]).sum(axis=-1)
            m = new_m
        if m is None:
            raise ValueError("no chunks")
        with np.errstate(divide="ignore"):
            return m + np.log(s)
""")


# ---- the whole matrix, by assignment --------------------------------------------------------

def by_assignment() -> dict[str, list[MatrixMutant]]:
    grouped: dict[str, list[MatrixMutant]] = {}
    for mutant in MATRIX:
        grouped.setdefault(mutant.assignment, []).append(mutant)
    return grouped


def functions() -> list[str]:
    """The graded functions of the matrix, in the course's order."""
    return list(dict.fromkeys(m.function for m in MATRIX))


def check_consistency() -> list[str]:
    """Problems with the matrix itself: names, classes, cells both filled and marked not applicable."""
    problems = []
    names = [m.name for m in MATRIX]
    problems += [f"duplicate mutant name {n}" for n in sorted({n for n in names if names.count(n) > 1})]
    problems += [f"{m.name}: unknown bug class {m.bug}" for m in MATRIX if m.bug not in BY_ID]
    filled = {(m.function, m.bug) for m in MATRIX}
    problems += [f"{f} x {b}: has mutants but is marked not applicable" for f, b in filled & set(NOT_APPLICABLE)]
    for function in functions():
        for bug in BY_ID:
            if (function, bug) not in filled and (function, bug) not in NOT_APPLICABLE:
                problems.append(f"{function} x {bug}: neither a mutant nor a reason why it does not apply")
    return problems



def summary(outcomes: list[tuple[str, str, bool, list[str], list[str]]]) -> list[str]:
    """The table function x class of bug, and precision and recall, from the mutants' outcomes."""
    if not outcomes:
        return []
    cells: dict[tuple[str, str], list[str]] = {}
    for function, bug, caught, own, foreign in outcomes:
        mark = "named" if caught and own and not foreign else ("caught" if caught else "MISSED")
        if foreign:
            mark = "MISNAMED"
        cells.setdefault((function, bug), []).append(mark)
    functions = list(dict.fromkeys(f for f, *_ in outcomes))
    bugs = [b.id for b in BUG_CLASSES if any(b.id == bug for _, bug, *_ in outcomes)]
    lines = ["| function | " + " | ".join(bugs) + " |", "|---|" + "---|" * len(bugs)]
    for function in functions:
        row = []
        for bug in bugs:
            marks = cells.get((function, bug))
            if marks is None:
                plain = function.rsplit(" (", 1)[0]
                row.append("n/a" if (plain, bug) in NOT_APPLICABLE else " ")
            else:
                good = sum(m == "named" for m in marks)
                row.append(f"{good}/{len(marks)}" if good < len(marks) else f"ok ({len(marks)})")
        lines.append(f"| {function} | " + " | ".join(row) + " |")
    right = sum(len(own) for *_, own, _ in outcomes)
    wrong = sum(len(foreign) for *_, foreign in outcomes)
    recalled = sum(bool(own) for *_, own, _ in outcomes)
    caught = sum(c for _, _, c, _, _ in outcomes)
    lines += ["", f"caught: {caught}/{len(outcomes)} mutants",
              f"precision: {right}/{right + wrong} named mistakes are the mutant's own"
              + (f" ({100 * right / (right + wrong):.1f}%)" if right + wrong else ""),
              f"recall: {recalled}/{len(outcomes)} mutants named for one of their own mistakes "
              f"({100 * recalled / len(outcomes):.1f}%)"]
    return lines

# ps7_triton's rows live in their own module, which adds to MATRIX, CORRECT and NOT_APPLICABLE with the
# same helpers (it imports them from here, so it is imported last).
import mutants.matrix_triton  # noqa: E402, F401
