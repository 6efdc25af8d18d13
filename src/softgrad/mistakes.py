"""The catalogue of known mistakes, and implementations that reproduce them.

Every entry is a mistake that real students (and real code on the web) make. Each one is
taught in the chapter named in its ``section``, caught by a hidden test of an assignment,
and named in the feedback: when a student's result is wrong, the checks in
:mod:`softgrad.testing` run the wrong implementations registered here on the same input,
and if one of them reproduces the student's output, the message says which mistake it is
and how to fix it.

Each wrong implementation has the signature of the graded function it imitates, so
``suspects("softmax")`` gives, for each mistake, callables ``f(z, axis=-1)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from softgrad import reference

__all__ = ["CATALOGUE", "Mistake", "mistake", "suspects"]


@dataclass(frozen=True)
class Mistake:
    """A known mistake: a stable id, a title, what goes wrong and how to fix it, and where it is taught."""

    id: str
    title: str
    explanation: str
    section: str
    implementations: dict[str, list[Callable[..., object]]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def describe(self) -> str:
        """The paragraph a student reads when their code matches this mistake."""
        return (
            f"This matches a known mistake: {self.title} [{self.id}].\n"
            f"  {self.explanation}\n"
            f"  See: {self.section}."
        )


CATALOGUE: dict[str, Mistake] = {}
"""Every known mistake by id."""


def mistake(id: str, title: str, explanation: str, section: str) -> Mistake:
    """Create a :class:`Mistake` and add it to :data:`CATALOGUE` (ids are unique)."""
    if id in CATALOGUE:
        raise ValueError(f"mistake id {id!r} is already in the catalogue")
    entry = Mistake(id, title, " ".join(explanation.split()), section)
    CATALOGUE[id] = entry
    return entry


def _reproduces(entry: Mistake, function_name: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Register the decorated function as one way ``function_name`` goes wrong with ``entry``."""

    def register(implementation: Callable[..., object]) -> Callable[..., object]:
        entry.implementations.setdefault(function_name, []).append(implementation)
        return implementation

    return register


def suspects(function_name: str) -> dict[Mistake, list[Callable[..., object]]]:
    """The mistakes known for a graded function, each with its wrong implementations."""
    return {
        entry: entry.implementations[function_name]
        for entry in CATALOGUE.values()
        if function_name in entry.implementations
    }


# --------------------------------------------------------------------------------------
# Chapter 1: softmax, log-softmax and log-sum-exp
# --------------------------------------------------------------------------------------
_CH1 = "Chapter 1, The softmax function"

MUTATES_INPUT = mistake(
    "mutates-input",
    "the function modifies its input array",
    """An in-place operation such as `z -= z.max(axis=axis, keepdims=True)` changes the
    caller's array. The caller still needs the original logits (to compute a loss, or a
    gradient), and a function that silently edits them causes bugs far away from the cause.
    Write `z = z - z.max(axis=axis, keepdims=True)`, which makes a new array.""",
    f"{_CH1}, section 'Batches and axes'",
)

SOFTMAX_NO_MAX_SHIFT = mistake(
    "softmax-no-max-shift",
    "softmax without subtracting the maximum",
    """`np.exp(z)` overflows to inf once z exceeds about 709.78 in float64 (88.72 in
    float32, 11.09 in float16), and inf / inf is nan; for very negative logits every exp
    underflows to 0, and 0 / 0 is nan too. Softmax is shift invariant, so subtract each
    row's maximum first: then the largest exponent is exp(0) = 1, nothing can overflow, and
    the sum is at least 1.""",
    f"{_CH1}, section 'The max trick'",
)

SOFTMAX_GLOBAL_MAX = mistake(
    "global-max-shift",
    "subtracting the maximum of the whole batch instead of each row's maximum",
    """With `z - z.max()` a row whose logits are all far below the batch's maximum
    underflows: every exp in that row becomes 0, the row sums to 0, and 0 / 0 is nan (or
    log(0) = -inf). Take the maximum along the softmax axis with
    `z.max(axis=axis, keepdims=True)`, so that every row has its own largest entry at 0.""",
    f"{_CH1}, section 'Batches and axes'",
)

SOFTMAX_CLIP = mistake(
    "clip-logits",
    "clipping the logits instead of shifting them",
    """`np.clip(z, -c, c)` avoids the overflow but changes the answer: two logits 1000 and
    999 both become c, so the probabilities come out equal instead of 0.73 and 0.27.
    Softmax depends only on the differences between logits; subtracting the maximum keeps
    every difference, clipping destroys them.""",
    f"{_CH1}, section 'The max trick'",
)

SOFTMAX_WRONG_AXIS = mistake(
    "wrong-axis",
    "normalising over the wrong axis",
    """Softmax works along `axis` (the last axis by default) and nowhere else: the
    probabilities sum to one along it, and every reduction built on them (the maximum, the
    sum, the inner product <g, p>) runs along it too. Normalising over axis 0, over the whole
    array, or ignoring the `axis` argument gives arrays that look plausible but are not
    distributions over the classes. Pass `axis=axis` to every reduction.""",
    f"{_CH1}, section 'Batches and axes'",
)

SOFTMAX_NO_KEEPDIMS = mistake(
    "missing-keepdims",
    "a reduction without keepdims=True, broadcast against the wrong axis",
    """A reduction along an axis (a maximum, a sum, an inner product such as
    np.sum(g * p, axis=axis)) without keepdims=True loses that axis: for an (N, C) batch it
    has shape (N,), not (N, 1). Subtracting, dividing or multiplying by it then broadcasts
    along the last axis, so entry [i, j] is combined with row j's value instead of row
    i's. For a square batch this runs without an error and gives wrong numbers. Use
    `keepdims=True`.""",
    f"{_CH1}, section 'Batches and axes'",
)

LOG_OF_SOFTMAX = mistake(
    "log-of-softmax",
    "log(softmax(z)) instead of a log-softmax",
    """For a confident prediction the small probabilities underflow to exactly 0 (exp(-800)
    is below half the smallest positive float64, so it rounds to 0), and log(0) is -inf,
    although the true log-probability is an ordinary number such as -800. Compute it in the
    log domain: log_softmax(z) = z - logsumexp(z), with the shift inside logsumexp.""",
    f"{_CH1}, section 'Why log(softmax(z)) is wrong'",
)

LOGSUMEXP_NO_SHIFT = mistake(
    "logsumexp-no-shift",
    "log-sum-exp without the shift",
    """`np.log(np.sum(np.exp(z)))` overflows to inf for large logits and gives log(0) = -inf
    for very negative ones. Use logsumexp(z) = m + log(sum(exp(z - m))) with m the maximum
    along the axis.""",
    f"{_CH1}, section 'Log-sum-exp and log-softmax'",
)

LOGSUMEXP_SHIFT_NOT_ADDED_BACK = mistake(
    "logsumexp-shift-not-added-back",
    "log-sum-exp that subtracts the maximum but forgets to add it back",
    """log(sum(exp(z - m))) is logsumexp(z) - m, not logsumexp(z). The identity is
    logsumexp(z) = m + log(sum(exp(z - m))): add m back at the end. For log-softmax the m
    goes to z instead: log_softmax(z) = (z - m) - log(sum(exp(z - m))), so subtract it from
    z as well as inside the sum.""",
    f"{_CH1}, section 'Log-sum-exp and log-softmax'",
)


SHIFT_NOT_BY_MAX = mistake(
    "shift-not-by-max",
    "shifting by the minimum or the mean instead of the maximum",
    """Any shift leaves softmax unchanged in exact arithmetic, but only the maximum makes
    it safe in floating point: after subtracting the maximum every exponent is at most 0.
    After subtracting the mean or the minimum, a row such as [800, 0, -800] still has an
    exponent of 800 or 1600, which overflows to inf.""",
    f"{_CH1}, section 'The max trick'",
)

DENOMINATOR_EPSILON = mistake(
    "denominator-epsilon",
    "a small constant added to the denominator",
    """After subtracting the maximum, the denominator sum(exp(z - m)) is at least 1 (its
    largest term is exp(0) = 1), so it can never be 0 and needs no guard. A constant such
    as 1e-7 only makes the probabilities too small by that relative amount, so that they no
    longer sum to one; drop it.""",
    f"{_CH1}, section 'The max trick'",
)


# --- reproductions, with the graded signature -------------------------------------------------
# Each one is deliberately wrong. Overflow warnings are the point of some of them, so the
# checks that call these functions silence NumPy's floating-point warnings.


@_reproduces(SOFTMAX_NO_MAX_SHIFT, "softmax")
def _softmax_no_shift(z, axis=-1):
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


@_reproduces(SOFTMAX_GLOBAL_MAX, "softmax")
def _softmax_global_max(z, axis=-1):
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=axis, keepdims=True)


_CLIP_BOUNDS = (10, 15, 20, 30, 50, 60, 80, 88, 100, 200, 300, 500, 700, 709)


def _clip_variant(bound: float, shift: bool) -> Callable[..., object]:
    def softmax_clipped(z, axis=-1):
        zc = np.clip(z, -bound, bound)
        return reference.softmax(zc, axis) if shift else _softmax_no_shift(zc, axis)

    return softmax_clipped


for _bound in _CLIP_BOUNDS:
    _reproduces(SOFTMAX_CLIP, "softmax")(_clip_variant(_bound, shift=False))
    _reproduces(SOFTMAX_CLIP, "softmax")(_clip_variant(_bound, shift=True))


@_reproduces(SOFTMAX_WRONG_AXIS, "softmax")
def _softmax_axis0(z, axis=-1):
    return reference.softmax(z, 0)


@_reproduces(SOFTMAX_WRONG_AXIS, "softmax")
def _softmax_ignores_axis(z, axis=-1):
    return reference.softmax(z, -1)


@_reproduces(SOFTMAX_WRONG_AXIS, "softmax")
def _softmax_whole_array(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e)


@_reproduces(SOFTMAX_NO_KEEPDIMS, "softmax")
def _softmax_sum_without_keepdims(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis)


@_reproduces(SOFTMAX_NO_KEEPDIMS, "softmax")
def _softmax_max_without_keepdims(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis))
    return e / np.sum(e, axis=axis, keepdims=True)


@_reproduces(SOFTMAX_NO_KEEPDIMS, "softmax")
def _softmax_no_keepdims_anywhere(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis))
    return e / np.sum(e, axis=axis)


@_reproduces(LOG_OF_SOFTMAX, "log_softmax")
def _log_of_stable_softmax(z, axis=-1):
    return np.log(reference.softmax(z, axis))


@_reproduces(LOG_OF_SOFTMAX, "log_softmax")
def _log_of_naive_softmax(z, axis=-1):
    return np.log(_softmax_no_shift(z, axis))


@_reproduces(LOGSUMEXP_NO_SHIFT, "log_softmax")
def _log_softmax_no_shift(z, axis=-1):
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


@_reproduces(SOFTMAX_GLOBAL_MAX, "log_softmax")
def _log_softmax_global_max(z, axis=-1):
    shifted = z - np.max(z)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@_reproduces(SOFTMAX_WRONG_AXIS, "log_softmax")
def _log_softmax_ignores_axis(z, axis=-1):
    return z - np.expand_dims(reference.logsumexp(z, -1), -1)


@_reproduces(SOFTMAX_WRONG_AXIS, "log_softmax")
def _log_softmax_axis0(z, axis=-1):
    return z - np.expand_dims(reference.logsumexp(z, 0), 0)


@_reproduces(SOFTMAX_NO_KEEPDIMS, "log_softmax")
def _log_softmax_no_keepdims(z, axis=-1):
    return z - reference.logsumexp(z, axis)


@_reproduces(LOGSUMEXP_NO_SHIFT, "logsumexp")
def _logsumexp_no_shift(z, axis=-1):
    return np.log(np.sum(np.exp(z), axis=axis))


@_reproduces(LOGSUMEXP_SHIFT_NOT_ADDED_BACK, "logsumexp")
def _logsumexp_forgot_max(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(z - m), axis=axis))


@_reproduces(LOGSUMEXP_SHIFT_NOT_ADDED_BACK, "log_softmax")
def _log_softmax_forgot_max(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


@_reproduces(SOFTMAX_GLOBAL_MAX, "logsumexp")
def _logsumexp_global_max(z, axis=-1):
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m), axis=axis))


@_reproduces(SOFTMAX_WRONG_AXIS, "logsumexp")
def _logsumexp_ignores_axis(z, axis=-1):
    return reference.logsumexp(z, -1)


@_reproduces(SOFTMAX_WRONG_AXIS, "logsumexp")
def _logsumexp_axis0(z, axis=-1):
    return reference.logsumexp(z, 0)


# --------------------------------------------------------------------------------------
# Chapter 2: the Jacobian of softmax and the vector-Jacobian product
# --------------------------------------------------------------------------------------
_CH2 = "Chapter 2, The Jacobian of softmax"

JACOBIAN_DIAGONAL_ONLY = mistake(
    "jacobian-diagonal-only",
    "the Jacobian's diagonal p_i (1 - p_i) only, as if softmax acted entry by entry",
    """This derivation, widely copied on the web, differentiates p_i only with respect to its
    own z_i. But every z_j appears in the denominator sum_k exp(z_k), so p_i depends on all
    of them: d p_i / d z_j = -p_i p_j for j != i. The full Jacobian is diag(p) - p p^T, and
    the gradient of a loss is p * (g - <g, p>), not g * p * (1 - p).""",
    f"{_CH2}, section 'A widely copied wrong derivation'",
)

JACOBIAN_OFF_DIAGONAL_ONLY = mistake(
    "jacobian-off-diagonal-only",
    "the Jacobian's off-diagonal term -p_i p_j only, without the diagonal p_i",
    """The quotient rule gives two terms: d p_i / d z_j = delta_ij p_i - p_i p_j. The first
    term, from differentiating the numerator exp(z_i), is there only when j = i; dropping it
    leaves -p p^T (and zeroing the diagonal as well leaves nothing right at all on it).
    Keep both: J = diag(p) - p p^T, whose diagonal is p_i (1 - p_i).""",
    f"{_CH2}, section 'The quotient rule, step by step'",
)

JACOBIAN_SIGN_FLIPPED = mistake(
    "jacobian-sign-flipped",
    "the Jacobian with its sign flipped, p p^T - diag(p)",
    """Raising z_i raises p_i, so the diagonal entries d p_i / d z_i = p_i (1 - p_i) are
    positive, and raising z_j lowers every other p_i, so the off-diagonal entries are
    negative. The quotient rule is (u'v - uv') / v^2: numerator derivative first.""",
    f"{_CH2}, section 'The quotient rule, step by step'",
)

VJP_MISSING_INNER_PRODUCT = mistake(
    "vjp-missing-inner-product",
    "a vector-Jacobian product that forgets the <g, p> term",
    """g^T J = g^T (diag(p) - p p^T) = p * g - p * <g, p>. The second term comes from the
    off-diagonal entries of J; without it, p * g is the product with diag(p) alone.""",
    f"{_CH2}, section 'The vector–Jacobian product'",
)

VJP_INNER_PRODUCT_OVER_BATCH = mistake(
    "vjp-inner-product-over-batch",
    "the inner product <g, p> summed over the whole batch instead of each row",
    """Every row of a batch has its own softmax and its own Jacobian, so <g, p> is one
    number per row: np.sum(g * p, axis=axis, keepdims=True). np.sum(g * p) adds the rows
    together and mixes the examples of the batch.""",
    f"{_CH2}, section 'Batches and other axes'",
)

VJP_BUILDS_JACOBIAN = mistake(
    "vjp-builds-jacobian",
    "a vector-Jacobian product that builds the n x n Jacobian",
    """Forming J costs n^2 memory and time: 80 GB for n = 100,000 in float64. The whole point
    of the vector-Jacobian product is that p * (g - <g, p>) needs only a few arrays of size n.
    Compute it directly from p and g, without np.diag, np.outer or an (n, n) einsum.""",
    f"{_CH2}, section 'The vector–Jacobian product'",
)


def _jacobian_parts(z):
    p = np.asarray(reference.softmax(z, axis=-1))
    eye = np.eye(p.shape[-1])
    return p, np.einsum("...i,ij->...ij", p, eye), np.einsum("...i,...j->...ij", p, p)


@_reproduces(JACOBIAN_DIAGONAL_ONLY, "softmax_jacobian")
def _jacobian_diagonal_only(z):
    p, _, _ = _jacobian_parts(z)
    return np.einsum("...i,ij->...ij", p * (1 - p), np.eye(p.shape[-1]))


@_reproduces(JACOBIAN_OFF_DIAGONAL_ONLY, "softmax_jacobian")
def _jacobian_outer_only(z):
    return -_jacobian_parts(z)[2]


@_reproduces(JACOBIAN_OFF_DIAGONAL_ONLY, "softmax_jacobian")
def _jacobian_zero_diagonal(z):
    p, _, outer = _jacobian_parts(z)
    return -outer * (1 - np.eye(p.shape[-1]))


@_reproduces(JACOBIAN_SIGN_FLIPPED, "softmax_jacobian")
def _jacobian_sign_flipped(z):
    _, diagonal, outer = _jacobian_parts(z)
    return outer - diagonal


@_reproduces(JACOBIAN_DIAGONAL_ONLY, "softmax_vjp")
def _vjp_diagonal_only(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return g * p * (1 - p)


@_reproduces(JACOBIAN_OFF_DIAGONAL_ONLY, "softmax_vjp")
def _vjp_outer_only(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return -p * np.sum(g * p, axis=axis, keepdims=True)


@_reproduces(JACOBIAN_SIGN_FLIPPED, "softmax_vjp")
def _vjp_sign_flipped(z, g, axis=-1):
    return -reference.softmax_vjp(z, g, axis=axis)


@_reproduces(VJP_MISSING_INNER_PRODUCT, "softmax_vjp")
def _vjp_missing_inner_product(z, g, axis=-1):
    return reference.softmax(z, axis=axis) * g


@_reproduces(VJP_INNER_PRODUCT_OVER_BATCH, "softmax_vjp")
def _vjp_inner_product_over_batch(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return p * (g - np.sum(g * p))


@_reproduces(SOFTMAX_WRONG_AXIS, "softmax_vjp")
def _vjp_ignores_axis(z, g, axis=-1):
    return reference.softmax_vjp(z, g, axis=-1)


@_reproduces(SOFTMAX_WRONG_AXIS, "softmax_vjp")
def _vjp_axis0(z, g, axis=-1):
    return reference.softmax_vjp(z, g, axis=0)


@_reproduces(SOFTMAX_NO_KEEPDIMS, "softmax_vjp")
def _vjp_inner_product_without_keepdims(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return p * (g - np.sum(g * p, axis=axis))


@_reproduces(VJP_BUILDS_JACOBIAN, "softmax_vjp")
def _vjp_through_the_jacobian(z, g, axis=-1):
    # Right values, wrong cost: recognised only by the memory it needs on a large input.
    moved_z, moved_g = np.moveaxis(z, axis, -1), np.moveaxis(g, axis, -1)
    return np.moveaxis(np.einsum("...i,...ij->...j", moved_g, reference.softmax_jacobian(moved_z)), -1, axis)


# ---- chapter 1, continued: more ways to get the shift and the reductions wrong --------------

_EPSILONS = (1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12)


def _epsilon_variant(epsilon: float) -> Callable[..., object]:
    def softmax_with_epsilon(z, axis=-1):
        e = np.exp(z - np.max(z, axis=axis, keepdims=True))
        return e / (np.sum(e, axis=axis, keepdims=True) + epsilon)

    return softmax_with_epsilon


for _epsilon in _EPSILONS:
    _reproduces(DENOMINATOR_EPSILON, "softmax")(_epsilon_variant(_epsilon))


@_reproduces(SHIFT_NOT_BY_MAX, "softmax")
def _softmax_shift_by_min(z, axis=-1):
    e = np.exp(z - np.min(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@_reproduces(SHIFT_NOT_BY_MAX, "softmax")
def _softmax_shift_by_mean(z, axis=-1):
    e = np.exp(z - np.mean(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@_reproduces(SHIFT_NOT_BY_MAX, "logsumexp")
def _logsumexp_shift_by_mean(z, axis=-1):
    c = np.mean(z, axis=axis, keepdims=True)
    return np.squeeze(c, axis=axis) + np.log(np.sum(np.exp(z - c), axis=axis))


@_reproduces(SHIFT_NOT_BY_MAX, "log_softmax")
def _log_softmax_shift_by_mean(z, axis=-1):
    shifted = z - np.mean(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@_reproduces(SOFTMAX_NO_KEEPDIMS, "logsumexp")
def _logsumexp_max_without_keepdims(z, axis=-1):
    m = np.max(z, axis=axis)
    return m + np.log(np.sum(np.exp(z - m), axis=axis))


@_reproduces(SOFTMAX_NO_KEEPDIMS, "log_softmax")
def _log_softmax_max_without_keepdims(z, axis=-1):
    shifted = z - np.max(z, axis=axis)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# --------------------------------------------------------------------------------------
# Chapter 3: cross-entropy and its gradients
# --------------------------------------------------------------------------------------
_CH3 = "Chapter 3, Cross-entropy and its gradient"

CE_SUM_NOT_MEAN = mistake(
    "ce-sum-not-mean",
    "the loss summed over the batch instead of averaged",
    """The course's cross-entropy, like PyTorch's default reduction='mean', is the mean over
    the N examples of the batch. A sum is N times larger, and its gradient too, so the
    learning rate that suits one batch size no longer suits another. Divide by N.""",
    f"{_CH3}, section 'Batches: the mean and the 1/N'",
)

CE_GRAD_NO_BATCH_MEAN = mistake(
    "ce-grad-missing-1-over-n",
    "the gradient of a mean loss without the factor 1/N",
    """The loss is the mean of N per-example losses, so each logit's gradient is
    (p - q) / N, not p - q. Without the 1/N every gradient is N times too large. The same
    factor appears in dW = X^T (P - Y) / N and db = sum over examples of (P - Y) / N.""",
    f"{_CH3}, section 'Batches: the mean and the 1/N'",
)

CE_GRAD_SIGN_FLIPPED = mistake(
    "ce-grad-sign-flipped",
    "the cross-entropy gradient with its sign flipped, (q - p) / N",
    """The gradient of -sum q log p with respect to the logits is p - q. For an unsmoothed
    integer label the loss goes down when the logit of the right class goes up, so that
    logit's gradient, p_y - 1, is negative. A flipped sign makes gradient descent climb the
    loss.""",
    f"{_CH3}, section 'The gradient, derived twice'",
)

CE_INTEGER_LABELS_AS_ONEHOT = mistake(
    "ce-integer-labels-as-onehot",
    "integer class labels used as if they were one-hot vectors",
    """p - y needs y as a one-hot (N, C) array. With integer labels of shape (N,),
    subtracting them broadcasts the label's value (0, 1, 2, ...) across a row, or across the
    wrong axis. Build the one-hot rows first, or subtract 1 at [range(N), y] only.""",
    f"{_CH3}, section 'From likelihood to cross-entropy'",
)

CE_LABEL_SMOOTHING_C_MINUS_1 = mistake(
    "label-smoothing-c-minus-1",
    "label smoothing spread over the C - 1 wrong classes",
    """The course follows PyTorch: q = (1 - eps) * q + eps / C, which mixes in the uniform
    distribution over all C classes, the right one included (it gets 1 - eps + eps/C).
    Giving eps / (C - 1) to each wrong class and 1 - eps to the right one is another
    convention, and gives other numbers.""",
    f"{_CH3}, section 'Soft targets and label smoothing'",
)

CE_LABEL_SMOOTHING_IGNORED = mistake(
    "label-smoothing-ignored",
    "the label_smoothing argument ignored",
    """With label_smoothing = eps the target is (1 - eps) * q + eps / C, not q, for integer
    labels and probability targets alike. The function accepts the argument and must use
    it, for every kind of target, in the loss and in the gradient.""",
    f"{_CH3}, section 'Soft targets and label smoothing'",
)

CE_SOFT_TARGETS_ARGMAX = mistake(
    "soft-targets-collapsed",
    "soft targets collapsed to their most likely class",
    """A probability target such as (0.7, 0.2, 0.1) is a distribution, and cross-entropy
    uses all of it: -sum_c q_c log p_c. Replacing it by the one-hot vector of its arg max
    throws away what the soft target says about the other classes.""",
    f"{_CH3}, section 'Soft targets and label smoothing'",
)

CE_GRAD_THROUGH_PROBABILITIES = mistake(
    "ce-grad-through-probabilities",
    "the gradient computed through the probabilities, -q / p, then the softmax Jacobian",
    """In exact arithmetic p * (g - <g, p>) with g = -q / p is p - q. In floating point, a
    probability that has underflowed to 0 makes -q / p infinite and 0 * inf = nan, for
    exactly the confident predictions where the gradient matters most. Compute p - q
    directly: it never divides by a probability.""",
    f"{_CH3}, section 'The gradient, derived twice'",
)

DW_TRANSPOSED = mistake(
    "dw-transposed",
    "dW transposed, (P - Y)^T X instead of X^T (P - Y)",
    """W has shape (D, C), so dW must too. With Z = X W + b, dZ = (P - Y) / N has shape
    (N, C), and dW = X^T dZ: (D, N) times (N, C). Check every gradient's shape against its
    parameter's.""",
    f"{_CH3}, section 'Softmax regression'",
)

REG_GRADIENT_FACTOR_TWO = mistake(
    "reg-gradient-factor-two",
    "the regularisation gradient 2 reg W for a loss with 0.5 reg ||W||^2",
    """The derivative of 0.5 * reg * sum(W**2) is reg * W: the 0.5 is there precisely to
    cancel the 2 of the square. 2 * reg * W is the gradient of reg * sum(W**2), which is not
    the loss you computed.""",
    f"{_CH3}, section 'Softmax regression'",
)

REG_GRADIENT_MISSING = mistake(
    "reg-gradient-missing",
    "the regularisation term in the loss but not in the gradient",
    """Every term of the loss contributes to its gradient: 0.5 * reg * sum(W**2) adds
    reg * W to dW. A gradient without it belongs to another loss.""",
    f"{_CH3}, section 'Softmax regression'",
)


def _one_hot(y, num_classes):
    return np.eye(num_classes)[np.asarray(y)]


def _q(target, num_classes, label_smoothing):
    return reference.target_distribution(target, num_classes, label_smoothing)


@_reproduces(CE_SUM_NOT_MEAN, "cross_entropy")
def _ce_sum(logits, target, label_smoothing=0.0):
    return reference.cross_entropy(logits, target, label_smoothing) * np.shape(logits)[0]


@_reproduces(LOG_OF_SOFTMAX, "cross_entropy")
def _ce_log_of_softmax(logits, target, label_smoothing=0.0):
    q = _q(target, np.shape(logits)[-1], label_smoothing)
    return -np.sum(q * np.log(reference.softmax(logits))) / np.shape(logits)[0]


@_reproduces(SOFTMAX_NO_MAX_SHIFT, "cross_entropy")
def _ce_no_shift(logits, target, label_smoothing=0.0):
    q = _q(target, np.shape(logits)[-1], label_smoothing)
    log_p = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    return -np.sum(q * log_p) / np.shape(logits)[0]


def _smooth_other_classes(target, logits, label_smoothing):
    num_classes = np.shape(logits)[-1]
    q = _q(target, num_classes, 0.0)
    return (1 - label_smoothing) * q + label_smoothing * (1 - q) / (num_classes - 1)


def _argmax_target(target):
    target = np.asarray(target)
    return target if np.issubdtype(target.dtype, np.integer) else np.argmax(target, axis=-1)


def _target_mistake(entry: Mistake, wrong_target: Callable[..., tuple[object, float]]) -> None:
    """A wrong target distribution shows in the loss and in its gradient alike: register both.

    ``wrong_target(logits, target, label_smoothing)`` returns the ``(target, label_smoothing)``
    that the mistaken code effectively uses.
    """

    def loss(logits, target, label_smoothing=0.0):
        return reference.cross_entropy(logits, *wrong_target(logits, target, label_smoothing))

    def grad(logits, target, label_smoothing=0.0):
        return reference.cross_entropy_grad(logits, *wrong_target(logits, target, label_smoothing))

    _reproduces(entry, "cross_entropy")(loss)
    _reproduces(entry, "cross_entropy_grad")(grad)


_target_mistake(CE_LABEL_SMOOTHING_C_MINUS_1,
                lambda logits, target, eps: (_smooth_other_classes(target, logits, eps), 0.0))
_target_mistake(CE_LABEL_SMOOTHING_IGNORED, lambda logits, target, eps: (target, 0.0))
_target_mistake(CE_LABEL_SMOOTHING_IGNORED,  # smoothing applied to integer labels only
                lambda logits, target, eps: (target, eps if np.asarray(target).ndim == 1 else 0.0))
_target_mistake(CE_SOFT_TARGETS_ARGMAX, lambda logits, target, eps: (_argmax_target(target), eps))


@_reproduces(CE_GRAD_NO_BATCH_MEAN, "cross_entropy_grad")
def _ce_grad_no_mean(logits, target, label_smoothing=0.0):
    return reference.cross_entropy_grad(logits, target, label_smoothing) * np.shape(logits)[0]


@_reproduces(CE_GRAD_SIGN_FLIPPED, "cross_entropy_grad")
def _ce_grad_sign(logits, target, label_smoothing=0.0):
    return -reference.cross_entropy_grad(logits, target, label_smoothing)


def _integer_labels(target):
    """The labels, if they are integer class indices; other targets cannot show this mistake."""
    target = np.asarray(target)
    if target.ndim != 1 or not np.issubdtype(target.dtype, np.integer):
        raise ValueError("only integer labels can be mistaken for one-hot rows")
    return target


@_reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "cross_entropy_grad")
def _ce_grad_integer_column(logits, target, label_smoothing=0.0):
    return (reference.softmax(logits) - _integer_labels(target)[:, None]) / np.shape(logits)[0]


@_reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "cross_entropy_grad")
def _ce_grad_integer_row(logits, target, label_smoothing=0.0):
    return (reference.softmax(logits) - _integer_labels(target)) / np.shape(logits)[0]


def _regression_parts(W, b, X, y):
    X = np.asarray(X, dtype=np.float64)
    logits = X @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
    return X, logits, reference.cross_entropy_grad(logits, y)


@_reproduces(CE_GRAD_NO_BATCH_MEAN, "softmax_regression_loss_and_grad")
def _regression_no_mean(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    n = X.shape[0]
    return reference.softmax_regression_loss(W, b, X, y, reg), X.T @ dlogits * n + reg * W, dlogits.sum(0) * n


@_reproduces(DW_TRANSPOSED, "softmax_regression_loss_and_grad")
def _regression_dw_transposed(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    return reference.softmax_regression_loss(W, b, X, y, reg), (X.T @ dlogits).T + reg * np.asarray(W).T, \
        dlogits.sum(0)


@_reproduces(REG_GRADIENT_FACTOR_TWO, "softmax_regression_loss_and_grad")
def _regression_reg_twice(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    return reference.softmax_regression_loss(W, b, X, y, reg), X.T @ dlogits + 2 * reg * W, dlogits.sum(0)


@_reproduces(REG_GRADIENT_MISSING, "softmax_regression_loss_and_grad")
def _regression_reg_missing(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    return reference.softmax_regression_loss(W, b, X, y, reg), X.T @ dlogits, dlogits.sum(0)


@_reproduces(CE_GRAD_SIGN_FLIPPED, "softmax_regression_loss_and_grad")
def _regression_sign(W, b, X, y, reg=0.0):
    X, logits, dlogits = _regression_parts(W, b, X, y)
    return reference.softmax_regression_loss(W, b, X, y, reg), -X.T @ dlogits + reg * W, -dlogits.sum(0)


@_reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "softmax_regression_loss_and_grad")
def _regression_integer_labels(W, b, X, y, reg=0.0):
    X = np.asarray(X, dtype=np.float64)
    logits = X @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
    dlogits = (reference.softmax(logits) - np.asarray(y)[:, None]) / X.shape[0]
    return reference.softmax_regression_loss(W, b, X, y, reg), X.T @ dlogits + reg * W, dlogits.sum(0)


@_reproduces(SOFTMAX_WRONG_AXIS, "softmax_vjp")
def _vjp_inner_product_on_last_axis(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return p * (g - np.sum(g * p, axis=-1, keepdims=True))


@_reproduces(CE_GRAD_THROUGH_PROBABILITIES, "cross_entropy_grad")
def _ce_grad_through_probabilities(logits, target, label_smoothing=0.0):
    p = reference.softmax(logits)
    q = _q(target, np.shape(logits)[-1], label_smoothing)
    g = -q / p
    return p * (g - np.sum(g * p, axis=-1, keepdims=True)) / np.shape(logits)[0]


# --------------------------------------------------------------------------------------
# Chapter 4: softmax regression in NumPy, trained
# --------------------------------------------------------------------------------------
_CH4 = "Chapter 4, Softmax regression in NumPy"

PREDICT_WRONG_AXIS = mistake(
    "predict-wrong-axis",
    "the arg max taken over the examples instead of the classes",
    """The scores X @ W + b have shape (N, C): one row per example, one column per class. The
    prediction for example n is the column of the largest score in row n, np.argmax(scores,
    axis=1). np.argmax(scores, axis=0) answers another question (which example scores highest
    for each class), and np.argmax(scores) flattens the array.""",
    f"{_CH4}, section 'The model and its gradient check'",
)

PYTHON_LOOP_OVER_ROWS = mistake(
    "python-loop-over-rows",
    "a Python loop over the rows where one array operation would do",
    """Each pass through a Python loop costs microseconds of interpreter work, whatever the
    row holds; one matrix product handles all rows in compiled code. For N examples the loop
    runs N times: predict with X @ W + b and np.argmax(..., axis=1) on the whole batch.""",
    f"{_CH4}, section 'Vectorisation, measured'",
)

SGD_ASCENDS = mistake(
    "sgd-ascends",
    "the parameters moved along the gradient instead of against it",
    """Gradient descent subtracts: W = W - lr * dW. The gradient points to where the loss grows
    fastest, so adding it climbs the loss: the loss goes up, and the accuracy falls to chance.""",
    f"{_CH4}, section 'What a gradient bug does to training'",
)

NO_SHUFFLE = mistake(
    "no-shuffle",
    "mini-batches taken in the data's order, without shuffling",
    """When the data is sorted (all the 0s, then all the 1s, ...), most mini-batches hold a
    single class, and each stretch of steps pulls the model towards that class and away from
    the others: the model remembers mostly what it saw last. Draw a new random order every epoch,
    rng.permutation(N) with rng = np.random.default_rng(seed), and take the batches from it.""",
    f"{_CH4}, section 'Mini-batch SGD'",
)

UNSEEDED_RANDOMNESS = mistake(
    "unseeded-randomness",
    "randomness that does not come from the seed",
    """Training with the same seed must give the same result. np.random.shuffle and
    np.random.permutation use NumPy's global state, which other code changes; create one
    generator, rng = np.random.default_rng(seed), and draw every random number from it.""",
    f"{_CH4}, section 'Mini-batch SGD'",
)

SEED_IGNORED = mistake(
    "seed-ignored",
    "a random generator that ignores the seed argument",
    """np.random.default_rng(0) (or any fixed number) gives every call the same order, whatever
    seed the caller asks for. Create the generator from the argument:
    rng = np.random.default_rng(seed).""",
    f"{_CH4}, section 'Mini-batch SGD'",
)

ORDER_DRAWN_ONCE = mistake(
    "order-drawn-once",
    "one random order for all epochs",
    """A permutation drawn once, before the loop over epochs, makes every epoch visit the
    mini-batches in the same order with the same members. Draw a new order at the start of
    every epoch: order = rng.permutation(N) inside the epoch loop.""",
    f"{_CH4}, section 'Mini-batch SGD'",
)

LAST_BATCH_DROPPED = mistake(
    "last-batch-dropped",
    "the last, smaller mini-batch skipped",
    """When batch_size does not divide N, the last mini-batch of an epoch has N % batch_size
    rows. Skipping it means those examples are never trained on in that epoch: walk through
    the whole order, range(0, N, batch_size), and let the last slice be short.""",
    f"{_CH4}, section 'Mini-batch SGD'",
)

REG_NOT_PASSED = mistake(
    "reg-not-passed",
    "the regularisation strength not passed on to the loss",
    """train_softmax_regression receives reg and must hand it to
    softmax_regression_loss_and_grad(W, b, X_batch, y_batch, reg) at every step; otherwise
    the model is trained without the penalty that the caller asked for.""",
    f"{_CH4}, section 'Mini-batch SGD'",
)

LABELS_OFF_BY_ONE = mistake(
    "labels-off-by-one",
    "labels shifted by one",
    """The digits' labels are 0 to 9 and index the columns of W directly. Adding or subtracting
    1 (a habit from 1-based data, or from a one-hot vector built with the wrong offset) trains
    the model to predict the next or previous digit: the accuracy falls to almost zero.""",
    f"{_CH4}, section 'The data'",
)


@_reproduces(PREDICT_WRONG_AXIS, "predict")
def _predict_axis0(W, b, X):
    return np.argmax(np.asarray(X) @ W + b, axis=0)


@_reproduces(PREDICT_WRONG_AXIS, "predict")
def _predict_flat(W, b, X):
    return np.argmax(np.asarray(X) @ W + b)


def _first_step_variant(scale: float, shift: int) -> Callable[..., object]:
    def first_step(X, y, num_classes, lr, reg=0.0):
        W, b = reference.sgd_first_step(X, (np.asarray(y) + shift) % num_classes, num_classes, lr, reg)
        return scale * W, scale * b

    return first_step


_reproduces(SGD_ASCENDS, "sgd_first_step")(_first_step_variant(-1.0, 0))
_reproduces(LABELS_OFF_BY_ONE, "sgd_first_step")(_first_step_variant(1.0, 1))
_reproduces(LABELS_OFF_BY_ONE, "sgd_first_step")(_first_step_variant(1.0, -1))


# --------------------------------------------------------------------------------------
# Chapter 5: PyTorch, a hand-written backward, devices
# --------------------------------------------------------------------------------------
# Wrong implementations of `softmax_cross_entropy` here take NumPy float64 arrays and the
# upstream gradient: f(logits, target, grad_output) -> (loss, gradient of grad_output * loss).
_CH5 = "Chapter 5, Softmax in PyTorch"

BACKWARD_IGNORES_GRAD_OUTPUT = mistake(
    "backward-ignores-grad-output",
    "a backward that ignores grad_output",
    """backward(ctx, grad_output) receives dL/d(output) for whatever loss L the caller
    builds on top of your function, and must return grad_output times the local gradient
    (the chain rule). Returning the local gradient alone is right only when your output is
    the final loss and nothing scales it: (3 * loss).backward(), a weighted sum of losses,
    or gradient scaling in mixed precision all give wrong gradients. Multiply by
    grad_output.""",
    f"{_CH5}, section 'A hand-written backward'",
)

BACKWARD_GRAD_FOR_TARGET = mistake(
    "backward-grad-for-target",
    "a backward that returns a gradient for the integer target",
    """backward returns one value per input of forward, in the same order: a gradient for
    the logits, and None for the target, which holds class indices. An integer tensor has no
    gradient; PyTorch drops what you return in its place without a word, so the mistake
    hides until the target is a float tensor. Return (grad_logits, None).""",
    f"{_CH5}, section 'A hand-written backward'",
)

FORBIDDEN_CALL_IN_FUNCTION = mistake(
    "autograd-inside-function",
    "PyTorch's loss functions or autograd called inside the hand-written Function",
    """The point of a custom autograd.Function is that you write the forward and the
    backward yourself. Calling F.cross_entropy, F.nll_loss or F.log_softmax in forward, or
    torch.autograd.grad / .backward() inside backward, hands the work back to PyTorch.
    Compute the loss from logsumexp (with the max shift) and the gradient as
    grad_output * (softmax(logits) - onehot(target)) / N.""",
    f"{_CH5}, section 'A hand-written backward'",
)

FUNCTION_NOT_APPLIED = mistake(
    "function-not-applied",
    "softmax_cross_entropy does not go through SoftmaxCrossEntropy.apply",
    """A custom Function is used through its apply method: SoftmaxCrossEntropy.apply(logits,
    target). Calling forward directly, or computing the loss with other tensor code, never
    records your backward in the graph, so PyTorch differentiates something else (or
    nothing: the loss has no grad_fn).""",
    f"{_CH5}, section 'A hand-written backward'",
)

HOST_ROUND_TRIP = mistake(
    "host-round-trip",
    "the Function goes through NumPy (.numpy(), np.asarray)",
    """.numpy() works only for tensors in CPU memory: on a GPU the same code raises
    "can't convert cuda:0 device type tensor to numpy", and on the CPU it steps outside
    PyTorch, so the result loses its device and dtype unless rebuilt by hand. Use torch
    operations throughout (torch.logsumexp, torch.softmax, gather, scatter or indexing),
    and create new tensors with device=logits.device.""",
    f"{_CH5}, section 'Traps on a GPU'",
)

DEVICE_PREFERENCE = mistake(
    "device-preference",
    "the devices tried in the wrong order, or a device that does not exist",
    """pick_device must return the best device that exists on the machine it runs on:
    CUDA if torch.cuda.is_available(), else Apple's MPS if torch.backends.mps.is_available(),
    else the CPU. Hard-coding "cuda" fails on every machine without an NVIDIA GPU, and
    always returning the CPU wastes the GPU that a reader (or Colab) has.""",
    f"{_CH5}, section 'One device value'",
)


def _loss_and_grad(loss, grad):
    """A wrong `softmax_cross_entropy`, from a (maybe wrong) NumPy loss and gradient."""

    def wrong(logits, target, grad_output=1.0):
        return loss(logits, target), grad_output * grad(logits, target)

    return wrong


_reproduces(BACKWARD_IGNORES_GRAD_OUTPUT, "softmax_cross_entropy")(
    lambda logits, target, grad_output=1.0: (reference.cross_entropy(logits, target),
                                             reference.cross_entropy_grad(logits, target)))


def _picked(log_p, target):
    """The mean of -log p[n, target[n]]: how tensor code picks the right class (no 0 * inf)."""
    target = np.asarray(target)
    return -np.mean(log_p[np.arange(target.shape[0]), target])


def _ce_log_of_softmax_picked(logits, target):
    return _picked(np.log(reference.softmax(logits)), target)


def _ce_no_shift_picked(logits, target):
    logits = np.asarray(logits, dtype=np.float64)
    return _picked(logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True)), target)


for _loss in (_ce_log_of_softmax, _ce_log_of_softmax_picked):
    _reproduces(LOG_OF_SOFTMAX, "softmax_cross_entropy")(_loss_and_grad(_loss, reference.cross_entropy_grad))
for _loss in (_ce_no_shift, _ce_no_shift_picked):
    _reproduces(SOFTMAX_NO_MAX_SHIFT, "softmax_cross_entropy")(_loss_and_grad(_loss, reference.cross_entropy_grad))
_reproduces(CE_SUM_NOT_MEAN, "softmax_cross_entropy")(
    _loss_and_grad(_ce_sum, _ce_grad_no_mean))
_reproduces(CE_GRAD_NO_BATCH_MEAN, "softmax_cross_entropy")(
    _loss_and_grad(reference.cross_entropy, _ce_grad_no_mean))
_reproduces(CE_GRAD_SIGN_FLIPPED, "softmax_cross_entropy")(
    _loss_and_grad(reference.cross_entropy, _ce_grad_sign))


# --------------------------------------------------------------------------------------
# Chapter 6: softmax at scale (online log-sum-exp, chunked cross-entropy)
# --------------------------------------------------------------------------------------
# Wrong implementations of `online_logsumexp` take the chunks (an iterable, read as the
# student's code would read it); those of `chunked_linear_cross_entropy` take
# (h, W, target, chunk_size) and return (loss, dh, dW).
_CH6 = "Chapter 6, Softmax at scale"

ONLINE_SUM_NOT_RESCALED = mistake(
    "online-sum-not-rescaled",
    "an online log-sum-exp that does not rescale the running sum when the maximum grows",
    """The running sum s holds sum(exp(z - m_old)) over the columns seen so far. When a new
    chunk raises the maximum to m_new, every term of s must be re-expressed against the new
    maximum: s * exp(m_old - m_new). Adding the new chunk's sum(exp(z - m_new)) to the old s
    without that factor mixes two scales, and the result is too large by up to the whole
    difference of the maxima. Combine (m_a, s_a) and (m_b, s_b) as m = max(m_a, m_b),
    s = s_a * exp(m_a - m) + s_b * exp(m_b - m).""",
    f"{_CH6}, section 'Online softmax'",
)

ONLINE_MAX_NOT_UPDATED = mistake(
    "online-max-not-updated",
    "an online log-sum-exp that shifts every chunk by the first chunk's maximum",
    """The shift must be the largest value seen so far, not the first one: a later chunk
    with logits above the first chunk's maximum gives exp(z - m) > 1, and a gap of 710
    (float64) or 89 (float32) overflows to inf. Keep a running maximum and rescale the
    running sum each time it grows.""",
    f"{_CH6}, section 'Online softmax'",
)

CHUNKS_READ_TWICE = mistake(
    "chunks-read-twice",
    "the chunks read twice, or used like a list",
    """The chunks may come from a generator that produces each block of logits once (from a
    matrix product, a file, another device) and cannot be rewound: a first loop for the
    maximum and a second loop for the sum sees nothing the second time, so the sum is 0 and
    log(0) = -inf. Indexing (chunks[0]) or len(chunks) fails on a generator too. Read each
    chunk once, and fold it into a running maximum and a rescaled running sum.""",
    f"{_CH6}, section 'Online softmax'",
)

MATERIALISES_FULL_LOGITS = mistake(
    "materialises-full-logits",
    "the full (N, V) logits materialised where chunking was asked for",
    """Joining the chunks (np.concatenate), keeping them all (list(chunks), to loop over
    them twice), or computing h @ W for the whole vocabulary gives the right numbers with
    the memory that chunking exists to avoid: for a language model the logits of one batch
    can be the largest array of the whole step. Work on one chunk of columns at a time and
    keep only per-row summaries (maximum, sum, the target's logit) between chunks; the
    extra memory is then a few arrays of N x chunk_size.""",
    f"{_CH6}, section 'Cross-entropy over a large vocabulary'",
)

CHUNK_LOCAL_SOFTMAX = mistake(
    "chunk-local-softmax",
    "the gradient of each chunk normalised by that chunk's own sum",
    """softmax(z)_j = exp(z_j - lse) with lse the log-sum-exp over the whole vocabulary.
    Normalising each chunk by its own sum makes every chunk's probabilities add up to one,
    so the gradient pushes on every chunk as if it were the whole distribution. Compute the
    row's lse in a first pass over the chunks, then exp(z - lse) in the second.""",
    f"{_CH6}, section 'Cross-entropy over a large vocabulary'",
)

DH_NOT_ACCUMULATED = mistake(
    "dh-not-accumulated",
    "the gradient with respect to h taken from one chunk only",
    """Every class contributes to the gradient of h: dh = G @ W^T sums over all V columns,
    so chunk by chunk it is a sum, dh += G_chunk @ W_chunk^T. Assigning dh = ... inside the
    loop keeps only the last chunk's share. (dW, by contrast, has a separate block of
    columns per chunk, dW[:, chunk] = h^T @ G_chunk.)""",
    f"{_CH6}, section 'Cross-entropy over a large vocabulary'",
)

TARGET_NOT_OFFSET = mistake(
    "target-not-offset",
    "the target compared with column numbers inside the chunk instead of the vocabulary",
    """A chunk holds the columns start to stop - 1 of the vocabulary, but inside the chunk
    they are numbered 0 to stop - start - 1. The one-hot term of a row belongs to the chunk
    that contains its target, at column target - start; comparing target with the chunk's
    local numbers puts a -1 at column `target` of every chunk for the rows whose target is
    below the chunk width (a wrong class in every chunk but the first), and no -1 at all
    for the other rows.""",
    f"{_CH6}, section 'Cross-entropy over a large vocabulary'",
)


def _online(chunks, rescale: bool = True, update_max: bool = True):
    # In the chunks' own dtype, as a student's code computes: a float32 overflow (a gap of
    # 89 above the first maximum) then shows as it does in the student's result.
    m = s = None
    for chunk in chunks:
        chunk = np.asarray(chunk)
        if not np.issubdtype(chunk.dtype, np.floating):
            chunk = chunk.astype(np.float64)
        chunk_max = chunk.max(axis=-1)
        if m is None:
            m, s = chunk_max, np.zeros_like(chunk_max)
        new = np.maximum(m, chunk_max) if update_max else m
        s = (s * np.exp(m - new) if rescale else s) + np.exp(chunk - new[..., None]).sum(axis=-1)
        m = new
    return m + np.log(s)


_reproduces(ONLINE_SUM_NOT_RESCALED, "online_logsumexp")(lambda chunks: _online(chunks, rescale=False))
_reproduces(ONLINE_MAX_NOT_UPDATED, "online_logsumexp")(lambda chunks: _online(chunks, update_max=False))


@_reproduces(CHUNKS_READ_TWICE, "online_logsumexp")
def _online_two_passes(chunks):
    m = None
    for chunk in chunks:  # first pass: the maximum
        chunk_max = np.asarray(chunk, dtype=np.float64).max(axis=-1)
        m = chunk_max if m is None else np.maximum(m, chunk_max)
    s = np.zeros_like(m)
    for chunk in chunks:  # second pass: empty when chunks is a generator
        s = s + np.exp(np.asarray(chunk, dtype=np.float64) - m[..., None]).sum(axis=-1)
    return m + np.log(s)


@_reproduces(CHUNKS_READ_TWICE, "online_logsumexp")
def _online_indexes_chunks(chunks):
    return _online([chunks[0], *chunks[1:]])


@_reproduces(CHUNKS_READ_TWICE, "online_logsumexp")
def _online_len_of_chunks(chunks):
    if len(chunks) == 0:
        raise ValueError("no chunks")
    return _online(chunks)


@_reproduces(LOGSUMEXP_NO_SHIFT, "online_logsumexp")
def _online_no_shift(chunks):
    total = 0.0
    for chunk in chunks:
        total = total + np.exp(np.asarray(chunk, dtype=np.float64)).sum(axis=-1)
    return np.log(total)


@_reproduces(MATERIALISES_FULL_LOGITS, "online_logsumexp")
def _online_concatenates(chunks):
    # Right values, wrong memory: recognised only by what it allocates.
    return reference.logsumexp(np.concatenate(list(chunks), axis=-1))


@_reproduces(MATERIALISES_FULL_LOGITS, "online_logsumexp")
def _online_lists_the_chunks(chunks):
    # Right values, and a generator read once: but every chunk is held at the same time.
    chunks = list(chunks)
    m = None
    for chunk in chunks:  # first pass: the maximum
        chunk_max = np.asarray(chunk, dtype=np.float64).max(axis=-1)
        m = chunk_max if m is None else np.maximum(m, chunk_max)
    s = np.zeros_like(m)
    for chunk in chunks:  # second pass: the sum
        s = s + np.exp(np.asarray(chunk, dtype=np.float64) - m[..., None]).sum(axis=-1)
    return m + np.log(s)


def _chunked(h, W, target, chunk_size, *, lse=None, local=False, onehot_offset=True, accumulate=True,
             scale=None):
    """A chunked linear cross-entropy with one deliberate change (float64, for the diagnosis)."""
    h, W = np.asarray(h, dtype=np.float64), np.asarray(W, dtype=np.float64)
    target = np.asarray(target)
    n, vocabulary = h.shape[0], W.shape[1]
    logits = h @ W  # the reproductions may materialise: only their values matter
    lse = reference.logsumexp(logits) if lse is None else lse
    loss = float(np.mean(lse - logits[np.arange(n), target]))
    dh, dW = np.zeros_like(h), np.empty_like(W)
    for start in range(0, vocabulary, int(chunk_size)):
        stop = min(start + int(chunk_size), vocabulary)
        z = logits[:, start:stop]
        p = reference.softmax(z) if local else np.exp(z - lse[:, None])
        columns = np.arange(start, stop) if onehot_offset else np.arange(stop - start)
        G = (p - (columns[None, :] == target[:, None])) / (n if scale is None else scale)
        dW[:, start:stop] = h.T @ G
        dh = dh + G @ W[:, start:stop].T if accumulate else G @ W[:, start:stop].T
    return loss, dh, dW


@_reproduces(ONLINE_SUM_NOT_RESCALED, "chunked_linear_cross_entropy")
def _chunked_not_rescaled(h, W, target, chunk_size):
    logits = np.asarray(h, dtype=np.float64) @ np.asarray(W, dtype=np.float64)
    chunks = [logits[:, i:i + int(chunk_size)] for i in range(0, logits.shape[1], int(chunk_size))]
    return _chunked(h, W, target, chunk_size, lse=_online(chunks, rescale=False))


_reproduces(CHUNK_LOCAL_SOFTMAX, "chunked_linear_cross_entropy")(
    lambda h, W, target, chunk_size: _chunked(h, W, target, chunk_size, local=True))
_reproduces(DH_NOT_ACCUMULATED, "chunked_linear_cross_entropy")(
    lambda h, W, target, chunk_size: _chunked(h, W, target, chunk_size, accumulate=False))
_reproduces(TARGET_NOT_OFFSET, "chunked_linear_cross_entropy")(
    lambda h, W, target, chunk_size: _chunked(h, W, target, chunk_size, onehot_offset=False))
_reproduces(CE_GRAD_NO_BATCH_MEAN, "chunked_linear_cross_entropy")(
    lambda h, W, target, chunk_size: _chunked(h, W, target, chunk_size, scale=1))


@_reproduces(MATERIALISES_FULL_LOGITS, "chunked_linear_cross_entropy")
def _chunked_materialises(h, W, target, chunk_size):
    # Right values, wrong memory: recognised only by what it allocates.
    return reference.linear_cross_entropy_and_grad(h, W, target)
