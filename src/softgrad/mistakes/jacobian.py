"""Chapter 3, the Jacobian of softmax: the Jacobian and the vector-Jacobian product."""

from __future__ import annotations

import numpy as np

from softgrad import reference
from softgrad.i18n import N_
from softgrad.mistakes.catalogue import in_its_dtype, mistake, reproduces
from softgrad.mistakes.inside import variants
from softgrad.mistakes.softmax import SOFTMAX_NO_KEEPDIMS, SOFTMAX_WRONG_AXIS

__all__ = [
    "JACOBIAN_DIAGONAL_ONLY", "JACOBIAN_OFF_DIAGONAL_ONLY", "JACOBIAN_SIGN_FLIPPED", "VJP_MISSING_INNER_PRODUCT",
    "VJP_INNER_PRODUCT_OVER_BATCH", "VJP_BUILDS_JACOBIAN", "LOG_SOFTMAX_VJP_TRANSPOSED"
]


_CHAPTER = "03_jacobian"

JACOBIAN_DIAGONAL_ONLY = mistake(
    "jacobian-diagonal-only",
    N_("the Jacobian's diagonal p_i (1 - p_i) only, as if softmax acted entry by entry"),
    N_("""This derivation, widely copied on the web, differentiates p_i only with respect to its
    own z_i. But every z_j appears in the denominator sum_k exp(z_k), so p_i depends on all
    of them: d p_i / d z_j = -p_i p_j for j != i. The full Jacobian is diag(p) - p p^T, and
    the gradient of a loss is p * (g - <g, p>), not g * p * (1 - p)."""),
    _CHAPTER, N_("A widely copied wrong derivation"),
)

JACOBIAN_OFF_DIAGONAL_ONLY = mistake(
    "jacobian-off-diagonal-only",
    N_("the Jacobian's off-diagonal term -p_i p_j only, without the diagonal p_i"),
    N_("""The quotient rule gives two terms: d p_i / d z_j = delta_ij p_i - p_i p_j. The first
    term, from differentiating the numerator exp(z_i), is there only when j = i; dropping it
    leaves -p p^T (and zeroing the diagonal as well leaves nothing right at all on it).
    Keep both: J = diag(p) - p p^T, whose diagonal is p_i (1 - p_i)."""),
    _CHAPTER, N_("The quotient rule, step by step"),
)

JACOBIAN_SIGN_FLIPPED = mistake(
    "jacobian-sign-flipped",
    N_("the Jacobian with its sign flipped, p p^T - diag(p)"),
    N_("""Raising z_i raises p_i, so the diagonal entries d p_i / d z_i = p_i (1 - p_i) are
    positive, and raising z_j lowers every other p_i, so the off-diagonal entries are
    negative. The quotient rule is (u'v - uv') / v^2: numerator derivative first."""),
    _CHAPTER, N_("The quotient rule, step by step"),
)

VJP_MISSING_INNER_PRODUCT = mistake(
    "vjp-missing-inner-product",
    N_("a vector-Jacobian product that forgets the <g, p> term"),
    N_("""g^T J = g^T (diag(p) - p p^T) = p * g - p * <g, p>. The second term comes from the
    off-diagonal entries of J; without it, p * g is the product with diag(p) alone."""),
    _CHAPTER, N_("The vector–Jacobian product"),
)

VJP_INNER_PRODUCT_OVER_BATCH = mistake(
    "vjp-inner-product-over-batch",
    N_("the inner product <g, p> summed over the whole batch instead of each row"),
    N_("""Every row of a batch has its own softmax and its own Jacobian, so <g, p> is one
    number per row: np.sum(g * p, axis=axis, keepdims=True). np.sum(g * p) adds the rows
    together and mixes the examples of the batch."""),
    _CHAPTER, N_("Batches and other axes"),
)

VJP_BUILDS_JACOBIAN = mistake(
    "vjp-builds-jacobian",
    N_("a vector-Jacobian product that builds the n x n Jacobian"),
    N_("""Forming J costs n^2 memory and time: 80 GB for n = 100,000 in float64. The whole point
    of a vector-Jacobian product is that it needs only a few arrays of size n: multiply out
    g^T J by hand once, and compute the result directly from p and g, without np.eye, np.diag,
    np.outer or an (n, n) einsum."""),
    _CHAPTER, N_("The vector–Jacobian product"),
)

LOG_SOFTMAX_VJP_TRANSPOSED = mistake(
    "log-softmax-vjp-transposed",
    N_("the product with the untransposed Jacobian of log-softmax, K g = g - <g, p>"),
    N_("""A vector-Jacobian product multiplies by the transpose: entry j of K^T g sums g_i K_ij over
    the outputs i. Softmax's Jacobian is symmetric, so there the two products agree and the
    mistake hides; log-softmax's is K = I - 1 p^T, not symmetric. K g subtracts the same number
    <g, p> from every entry; K^T g = g - p * sum(g) subtracts a multiple of p."""),
    _CHAPTER, N_("The transposed-Jacobian trap"),
)


def _jacobian_parts(z):
    p = np.asarray(reference.softmax(z, axis=-1))
    eye = np.eye(p.shape[-1])
    return p, np.einsum("...i,ij->...ij", p, eye), np.einsum("...i,...j->...ij", p, p)


@reproduces(JACOBIAN_DIAGONAL_ONLY, "softmax_jacobian")
def _jacobian_diagonal_only(z):
    p, _, _ = _jacobian_parts(z)
    return np.einsum("...i,ij->...ij", p * (1 - p), np.eye(p.shape[-1]))


@reproduces(JACOBIAN_OFF_DIAGONAL_ONLY, "softmax_jacobian")
def _jacobian_outer_only(z):
    return -_jacobian_parts(z)[2]


@reproduces(JACOBIAN_OFF_DIAGONAL_ONLY, "softmax_jacobian")
def _jacobian_zero_diagonal(z):
    p, _, outer = _jacobian_parts(z)
    return -outer * (1 - np.eye(p.shape[-1]))


@reproduces(JACOBIAN_SIGN_FLIPPED, "softmax_jacobian")
def _jacobian_sign_flipped(z):
    _, diagonal, outer = _jacobian_parts(z)
    return outer - diagonal


@reproduces(JACOBIAN_DIAGONAL_ONLY, "softmax_vjp")
def _vjp_diagonal_only(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return g * p * (1 - p)


@reproduces(JACOBIAN_OFF_DIAGONAL_ONLY, "softmax_vjp")
def _vjp_outer_only(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return -p * np.sum(g * p, axis=axis, keepdims=True)


@reproduces(JACOBIAN_SIGN_FLIPPED, "softmax_vjp")
def _vjp_sign_flipped(z, g, axis=-1):
    return -reference.softmax_vjp(z, g, axis=axis)


@reproduces(VJP_MISSING_INNER_PRODUCT, "softmax_vjp")
def _vjp_missing_inner_product(z, g, axis=-1):
    return reference.softmax(z, axis=axis) * g


@reproduces(VJP_INNER_PRODUCT_OVER_BATCH, "softmax_vjp")
def _vjp_inner_product_over_batch(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return p * (g - np.sum(g * p))


@reproduces(SOFTMAX_WRONG_AXIS, "softmax_vjp")
def _vjp_ignores_axis(z, g, axis=-1):
    return reference.softmax_vjp(z, g, axis=-1)


@reproduces(SOFTMAX_WRONG_AXIS, "softmax_vjp")
def _vjp_axis0(z, g, axis=-1):
    return reference.softmax_vjp(z, g, axis=0)


@reproduces(SOFTMAX_NO_KEEPDIMS, "softmax_vjp")
def _vjp_inner_product_without_keepdims(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return p * (g - np.sum(g * p, axis=axis))


@reproduces(VJP_BUILDS_JACOBIAN, "softmax_vjp")
def _vjp_through_the_jacobian(z, g, axis=-1):
    # Right values, wrong cost: recognised only by the memory it needs on a large input.
    moved_z, moved_g = np.moveaxis(z, axis, -1), np.moveaxis(g, axis, -1)
    return np.moveaxis(np.einsum("...i,...ij->...j", moved_g, reference.softmax_jacobian(moved_z)), -1, axis)

@reproduces(SOFTMAX_WRONG_AXIS, "softmax_vjp")
def _vjp_inner_product_on_last_axis(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return p * (g - np.sum(g * p, axis=-1, keepdims=True))


# ---- a student's own softmax inside: no shift, the batch's maximum, clipped logits ------------

def _jacobian_of(probabilities):
    def softmax_jacobian(z):
        p = probabilities(in_its_dtype(z))
        return np.einsum("...i,ij->...ij", p, np.eye(p.shape[-1], dtype=p.dtype)) - np.einsum("...i,...j->...ij", p, p)

    return softmax_jacobian


def _vjp_of(probabilities):
    def softmax_vjp(z, g, axis=-1):
        p = np.moveaxis(probabilities(np.moveaxis(in_its_dtype(z), axis, -1)), -1, axis)
        return p * (g - np.sum(g * p, axis=axis, keepdims=True))

    return softmax_vjp


for _inner in variants():
    reproduces(_inner.mistake, "softmax_jacobian", also=_inner.also)(_jacobian_of(_inner.probabilities))
    reproduces(_inner.mistake, "softmax_vjp", also=_inner.also)(_vjp_of(_inner.probabilities))


# ---- the log-softmax VJP: the trap of the transposed Jacobian -------------------------------

@reproduces(LOG_SOFTMAX_VJP_TRANSPOSED, "log_softmax_vjp")
def _log_softmax_vjp_transposed(z, g, axis=-1):
    p = reference.softmax(z, axis=axis)
    return g - np.sum(g * p, axis=axis, keepdims=True)


@reproduces(JACOBIAN_SIGN_FLIPPED, "log_softmax_vjp")
def _log_softmax_vjp_sign_flipped(z, g, axis=-1):
    return -reference.log_softmax_vjp(z, g, axis=axis)


@reproduces(SOFTMAX_WRONG_AXIS, "log_softmax_vjp")
def _log_softmax_vjp_sum_on_last_axis(z, g, axis=-1):
    return g - reference.softmax(z, axis=axis) * np.sum(g, axis=-1, keepdims=True)


@reproduces(SOFTMAX_NO_KEEPDIMS, "log_softmax_vjp")
def _log_softmax_vjp_sum_without_keepdims(z, g, axis=-1):
    return g - reference.softmax(z, axis=axis) * np.sum(g, axis=axis)


@reproduces(VJP_BUILDS_JACOBIAN, "log_softmax_vjp")
def _log_softmax_vjp_through_the_jacobian(z, g, axis=-1):
    # Right values, wrong cost: recognised only by the memory it needs on a large input.
    p = np.moveaxis(reference.softmax(z, axis=axis), axis, -1)
    jacobian = np.eye(p.shape[-1]) - p[..., None, :]  # K = I - 1 p^T, row after row
    return np.moveaxis(np.einsum("...i,...ij->...j", np.moveaxis(g, axis, -1), jacobian), -1, axis)


def _log_softmax_vjp_of(probabilities):
    def log_softmax_vjp(z, g, axis=-1):
        p = np.moveaxis(probabilities(np.moveaxis(in_its_dtype(z), axis, -1)), -1, axis)
        return g - p * np.sum(g, axis=axis, keepdims=True)

    return log_softmax_vjp


for _inner in variants():
    reproduces(_inner.mistake, "log_softmax_vjp", also=_inner.also)(_log_softmax_vjp_of(_inner.probabilities))
