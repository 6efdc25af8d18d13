"""Chapter 8, softmax at scale: online log-sum-exp and chunked cross-entropy."""

from __future__ import annotations

import numpy as np

from softgrad import reference
from softgrad.i18n import N_
from softgrad.mistakes.catalogue import in_its_dtype, mistake, reproduces
from softgrad.mistakes.cross_entropy import (
    CE_GRAD_NO_BATCH_MEAN,
    CE_GRAD_SIGN_FLIPPED,
    CE_INTEGER_LABELS_AS_ONEHOT,
    CE_SUM_NOT_MEAN,
    DW_TRANSPOSED,
    LOG_OF_PROBABILITY,
)
from softgrad.mistakes.softmax import CLIP_BOUNDS, LOGSUMEXP_NO_SHIFT, SOFTMAX_CLIP, SOFTMAX_GLOBAL_MAX

__all__ = [
    "ONLINE_SUM_NOT_RESCALED", "ONLINE_MAX_NOT_UPDATED", "CHUNKS_READ_TWICE", "MATERIALISES_FULL_LOGITS",
    "CHUNK_LOCAL_SOFTMAX", "DH_NOT_ACCUMULATED", "TARGET_NOT_OFFSET", "MASKED_ROW_NAN",
]


# Wrong implementations of `online_logsumexp` take the chunks (an iterable, read as the
# student's code would read it); those of `chunked_linear_cross_entropy` take
# (h, W, target, chunk_size) and return (loss, dh, dW).
_CHAPTER = "08_at_scale"

ONLINE_SUM_NOT_RESCALED = mistake(
    "online-sum-not-rescaled",
    N_("an online log-sum-exp that does not rescale the running sum when the maximum grows"),
    N_("""The running sum s holds sum(exp(z - m_old)) over the columns seen so far. When a new
    chunk raises the maximum to m_new, every term of s must be re-expressed against the new
    maximum: s * exp(m_old - m_new). Adding the new chunk's sum(exp(z - m_new)) to the old s
    without that factor mixes two scales, and the result is too large by up to the whole
    difference of the maxima. Combine (m_a, s_a) and (m_b, s_b) as m = max(m_a, m_b),
    s = s_a * exp(m_a - m) + s_b * exp(m_b - m)."""),
    _CHAPTER, N_("Online softmax"),
)

ONLINE_MAX_NOT_UPDATED = mistake(
    "online-max-not-updated",
    N_("an online log-sum-exp that shifts every chunk by the first chunk's maximum"),
    N_("""The shift must be the largest value seen so far, not the first one: a later chunk
    with logits above the first chunk's maximum gives exp(z - m) > 1, and a gap of 710
    (float64) or 89 (float32) overflows to inf. Keep a running maximum and rescale the
    running sum each time it grows."""),
    _CHAPTER, N_("Online softmax"),
)

CHUNKS_READ_TWICE = mistake(
    "chunks-read-twice",
    N_("the chunks read twice, or used like a list"),
    N_("""The chunks may come from a generator that produces each block of logits once (from a
    matrix product, a file, another device) and cannot be rewound: a first loop for the
    maximum and a second loop for the sum sees nothing the second time, so the sum is 0 and
    log(0) = -inf. Indexing (chunks[0]) or len(chunks) fails on a generator too. Read each
    chunk once, and fold it into a running maximum and a rescaled running sum."""),
    _CHAPTER, N_("Online softmax"),
)

MATERIALISES_FULL_LOGITS = mistake(
    "materialises-full-logits",
    N_("the full (N, V) logits materialised where chunking was asked for"),
    N_("""Joining the chunks (np.concatenate), keeping them all (list(chunks), to loop over
    them twice), or computing h @ W for the whole vocabulary gives the right numbers with
    the memory that chunking exists to avoid: for a language model the logits of one batch
    can be the largest array of the whole step. Work on one chunk of columns at a time and
    keep only per-row summaries (maximum, sum, the target's logit) between chunks; the
    extra memory is then a few arrays of N x chunk_size."""),
    _CHAPTER, N_("Cross-entropy over a large vocabulary"),
)

CHUNK_LOCAL_SOFTMAX = mistake(
    "chunk-local-softmax",
    N_("the gradient of each chunk normalised by that chunk's own sum"),
    N_("""softmax(z)_j = exp(z_j - lse) with lse the log-sum-exp over the whole vocabulary.
    Normalising each chunk by its own sum makes every chunk's probabilities add up to one,
    so the gradient pushes on every chunk as if it were the whole distribution. Compute the
    row's lse in a first pass over the chunks, then exp(z - lse) in the second."""),
    _CHAPTER, N_("Cross-entropy over a large vocabulary"),
)

DH_NOT_ACCUMULATED = mistake(
    "dh-not-accumulated",
    N_("the gradient with respect to h taken from one chunk only"),
    N_("""Every class contributes to the gradient of h: dh = G @ W^T sums over all V columns,
    so chunk by chunk it is a sum, dh += G_chunk @ W_chunk^T. Assigning dh = ... inside the
    loop keeps only the last chunk's share. (dW, by contrast, has a separate block of
    columns per chunk, dW[:, chunk] = h^T @ G_chunk.)"""),
    _CHAPTER, N_("Cross-entropy over a large vocabulary"),
)

TARGET_NOT_OFFSET = mistake(
    "target-not-offset",
    N_("the target compared with column numbers inside the chunk instead of the vocabulary"),
    N_("""A chunk holds the columns start to stop - 1 of the vocabulary, but inside the chunk
    they are numbered 0 to stop - start - 1. The one-hot term of a row belongs to the chunk
    that contains its target, at column target - start; comparing target with the chunk's
    local numbers puts a -1 at column `target` of every chunk for the rows whose target is
    below the chunk width (a wrong class in every chunk but the first), and no -1 at all
    for the other rows."""),
    _CHAPTER, N_("Cross-entropy over a large vocabulary"),
)


MASKED_ROW_NAN = mistake(
    "masked-row-nan",
    N_("nan for a fully masked row, whose log-sum-exp is -inf"),
    N_("""A row whose entries are all -inf (a masked attention row) has a maximum of -inf, and
    exp(z - m) = exp(-inf - (-inf)) = exp(nan) = nan; so does the rescaling factor
    exp(m_old - m_new) when both maxima are -inf. The sum of no terms is 0 and its log-sum-exp is
    -inf. Define the factor as 0 when a maximum is -inf (shift such a row by 0 instead of by -inf):
    then the empty state (m, s) = (-inf, 0) combines with anything without changing it, and a
    fully masked row ends at -inf."""),
    _CHAPTER, N_("Masking with $-\\infty$"),
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


reproduces(ONLINE_SUM_NOT_RESCALED, "online_logsumexp")(lambda chunks: _online(chunks, rescale=False))
reproduces(ONLINE_MAX_NOT_UPDATED, "online_logsumexp")(lambda chunks: _online(chunks, update_max=False))


@reproduces(CHUNKS_READ_TWICE, "online_logsumexp")
def _online_two_passes(chunks):
    m = None
    for chunk in chunks:  # first pass: the maximum
        chunk_max = np.asarray(chunk, dtype=np.float64).max(axis=-1)
        m = chunk_max if m is None else np.maximum(m, chunk_max)
    s = np.zeros_like(m)
    for chunk in chunks:  # second pass: empty when chunks is a generator
        s = s + np.exp(np.asarray(chunk, dtype=np.float64) - m[..., None]).sum(axis=-1)
    return m + np.log(s)


@reproduces(CHUNKS_READ_TWICE, "online_logsumexp")
def _online_indexes_chunks(chunks):
    return _online([chunks[0], *chunks[1:]])


@reproduces(CHUNKS_READ_TWICE, "online_logsumexp")
def _online_len_of_chunks(chunks):
    if len(chunks) == 0:
        raise ValueError("no chunks")
    return _online(chunks)


@reproduces(LOGSUMEXP_NO_SHIFT, "online_logsumexp")
def _online_no_shift(chunks):
    total = 0.0
    for chunk in chunks:
        total = total + np.exp(np.asarray(chunk, dtype=np.float64)).sum(axis=-1)
    return np.log(total)


@reproduces(MATERIALISES_FULL_LOGITS, "online_logsumexp")
def _online_concatenates(chunks):
    # Right values, wrong memory: recognised only by what it allocates.
    return reference.logsumexp(np.concatenate(list(chunks), axis=-1))


@reproduces(MATERIALISES_FULL_LOGITS, "online_logsumexp")
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
    """A chunked linear cross-entropy with one deliberate change (in the inputs' dtype, as a student's
    code computes)."""
    h, W = in_its_dtype(h), in_its_dtype(W)
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


@reproduces(ONLINE_SUM_NOT_RESCALED, "chunked_linear_cross_entropy")
def _chunked_not_rescaled(h, W, target, chunk_size):
    logits = np.asarray(h, dtype=np.float64) @ np.asarray(W, dtype=np.float64)
    chunks = [logits[:, i:i + int(chunk_size)] for i in range(0, logits.shape[1], int(chunk_size))]
    return _chunked(h, W, target, chunk_size, lse=_online(chunks, rescale=False))


reproduces(CHUNK_LOCAL_SOFTMAX, "chunked_linear_cross_entropy")(
    lambda h, W, target, chunk_size: _chunked(h, W, target, chunk_size, local=True))
reproduces(DH_NOT_ACCUMULATED, "chunked_linear_cross_entropy")(
    lambda h, W, target, chunk_size: _chunked(h, W, target, chunk_size, accumulate=False))
reproduces(TARGET_NOT_OFFSET, "chunked_linear_cross_entropy")(
    lambda h, W, target, chunk_size: _chunked(h, W, target, chunk_size, onehot_offset=False))
reproduces(CE_GRAD_NO_BATCH_MEAN, "chunked_linear_cross_entropy")(
    lambda h, W, target, chunk_size: _chunked(h, W, target, chunk_size, scale=1))


@reproduces(MATERIALISES_FULL_LOGITS, "chunked_linear_cross_entropy")
def _chunked_materialises(h, W, target, chunk_size):
    # Right values, wrong memory: recognised only by what it allocates.
    return reference.linear_cross_entropy_and_grad(h, W, target)


# ---- chapter 1's mistakes, and chapter 4's, made inside the online and chunked computations -------

@reproduces(SOFTMAX_GLOBAL_MAX, "online_logsumexp")
def _online_chunk_maximum(chunks):
    # the running maximum of the whole chunk (all rows), not of each row
    m = s = None
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float64)
        chunk_max = np.full(chunk.shape[:-1], np.max(chunk))
        new = chunk_max if m is None else np.maximum(m, chunk_max)
        s = (0.0 if s is None else s * np.exp(m - new)) + np.exp(chunk - new[..., None]).sum(axis=-1)
        m = new
    return m + np.log(s)


# Right for every row with a finite entry, nan for a fully masked one: the recurrence started from the
# first chunk (or from (-inf, 0)) without the factor defined as 0 for a maximum of -inf.
reproduces(MASKED_ROW_NAN, "online_logsumexp")(lambda chunks: _online(chunks))


def _chunked_with_lse(lse_of):
    return lambda h, W, target, chunk_size: _chunked(
        h, W, target, chunk_size, lse=lse_of(in_its_dtype(h) @ in_its_dtype(W)))


def _global_lse(logits):
    m = np.max(logits)
    return m + np.log(np.sum(np.exp(logits - m), axis=1))


reproduces(LOGSUMEXP_NO_SHIFT, "chunked_linear_cross_entropy")(
    _chunked_with_lse(lambda logits: np.log(np.sum(np.exp(logits), axis=1))))
reproduces(SOFTMAX_GLOBAL_MAX, "chunked_linear_cross_entropy")(_chunked_with_lse(_global_lse))
reproduces(CE_GRAD_SIGN_FLIPPED, "chunked_linear_cross_entropy")(
    lambda h, W, target, chunk_size: _chunked(h, W, target, chunk_size, scale=-len(target)))


@reproduces(CE_SUM_NOT_MEAN, "chunked_linear_cross_entropy", also=(CE_GRAD_NO_BATCH_MEAN,))
def _chunked_summed(h, W, target, chunk_size):
    loss, dh, dW = _chunked(h, W, target, chunk_size, scale=1)
    return loss * len(target), dh, dW


@reproduces(LOG_OF_PROBABILITY, "chunked_linear_cross_entropy")
def _chunked_log_of_probability(h, W, target, chunk_size):
    logits = in_its_dtype(h) @ in_its_dtype(W)  # in the inputs' dtype: exp(picked - lse) underflows as theirs
    m = np.max(logits, axis=1)
    lse = m + np.log(np.sum(np.exp(logits - m[:, None]), axis=1))
    picked = logits[np.arange(len(target)), np.asarray(target)]
    _, dh, dW = _chunked(h, W, target, chunk_size)
    return float(-np.mean(np.log(np.exp(picked - lse)))), dh, dW


@reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "chunked_linear_cross_entropy")
def _chunked_labels_subtracted(h, W, target, chunk_size):
    h, W = np.asarray(h, dtype=np.float64), np.asarray(W, dtype=np.float64)
    logits = h @ W
    G = (reference.softmax(logits) - np.asarray(target)[:, None]) / len(target)
    return reference.linear_cross_entropy(h, W, target), G @ W.T, h.T @ G


@reproduces(DW_TRANSPOSED, "chunked_linear_cross_entropy")
def _chunked_dw_transposed(h, W, target, chunk_size):
    loss, dh, dW = reference.linear_cross_entropy_and_grad(h, W, target)
    return loss, dh, dW.T


def _chunked_clipped(bound):
    def chunked_linear_cross_entropy(h, W, target, chunk_size):
        h, W = np.asarray(h, dtype=np.float64), np.asarray(W, dtype=np.float64)
        logits = np.clip(h @ W, -bound, bound)
        G = reference.cross_entropy_grad(logits, target)
        return reference.cross_entropy(logits, target), G @ W.T, h.T @ G

    return chunked_linear_cross_entropy


for _bound in CLIP_BOUNDS:
    reproduces(SOFTMAX_CLIP, "chunked_linear_cross_entropy")(_chunked_clipped(_bound))
