"""Chapter 7, softmax in PyTorch: a hand-written autograd Function, devices."""

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
    LOG_OF_PROBABILITY,
    _ce_grad_no_mean,
    _ce_grad_sign,
    _ce_log_of_softmax,
    _ce_no_shift,
    _ce_sum,
)
from softgrad.mistakes.inside import variants
from softgrad.mistakes.softmax import SOFTMAX_NO_MAX_SHIFT, SOFTMAX_WRONG_AXIS

__all__ = [
    "BACKWARD_IGNORES_GRAD_OUTPUT", "BACKWARD_GRAD_FOR_TARGET", "FORBIDDEN_CALL_IN_FUNCTION",
    "FUNCTION_NOT_APPLIED", "HOST_ROUND_TRIP", "DEVICE_PREFERENCE"
]


# Wrong implementations of `softmax_cross_entropy` here take NumPy float64 arrays and the
# upstream gradient: f(logits, target, grad_output) -> (loss, gradient of grad_output * loss).
_CHAPTER = "07_pytorch"

BACKWARD_IGNORES_GRAD_OUTPUT = mistake(
    "backward-ignores-grad-output",
    N_("a backward that ignores grad_output"),
    N_("""backward(ctx, grad_output) receives dL/d(output) for whatever loss L the caller
    builds on top of your function, and must return grad_output times the local gradient
    (the chain rule). Returning the local gradient alone is right only when your output is
    the final loss and nothing scales it: (3 * loss).backward(), a weighted sum of losses,
    or gradient scaling in mixed precision all give wrong gradients. Multiply by
    grad_output."""),
    _CHAPTER, N_("A hand-written backward"),
)

BACKWARD_GRAD_FOR_TARGET = mistake(
    "backward-grad-for-target",
    N_("a backward that returns a gradient for the integer target"),
    N_("""backward returns one value per input of forward, in the same order: a gradient for
    the logits, and None for the target, which holds class indices. An integer tensor has no
    gradient; PyTorch drops what you return in its place without a word, so the mistake
    hides until the target is a float tensor. Return (grad_logits, None)."""),
    _CHAPTER, N_("A hand-written backward"),
)

FORBIDDEN_CALL_IN_FUNCTION = mistake(
    "autograd-inside-function",
    N_("PyTorch's loss functions or autograd called inside the hand-written Function"),
    N_("""The point of a custom autograd.Function is that you write the forward and the
    backward yourself. Calling F.cross_entropy, F.nll_loss or F.log_softmax in forward, or
    torch.autograd.grad / .backward() inside backward, hands the work back to PyTorch.
    Compute the loss from logsumexp (with the max shift) and the gradient as
    grad_output * (softmax(logits) - onehot(target)) / N."""),
    _CHAPTER, N_("A hand-written backward"),
)

FUNCTION_NOT_APPLIED = mistake(
    "function-not-applied",
    N_("softmax_cross_entropy does not go through SoftmaxCrossEntropy.apply"),
    N_("""A custom Function is used through its apply method: SoftmaxCrossEntropy.apply(logits,
    target). Calling forward directly, or computing the loss with other tensor code, never
    records your backward in the graph, so PyTorch differentiates something else (or
    nothing: the loss has no grad_fn)."""),
    _CHAPTER, N_("A hand-written backward"),
)

HOST_ROUND_TRIP = mistake(
    "host-round-trip",
    N_("the Function goes through NumPy (.numpy(), np.asarray)"),
    N_(""".numpy() works only for tensors in CPU memory: on a GPU the same code raises
    "can't convert cuda:0 device type tensor to numpy", and on the CPU it steps outside
    PyTorch, so the result loses its device and dtype unless rebuilt by hand. Use torch
    operations throughout (torch.logsumexp, torch.softmax, gather, scatter or indexing),
    and create new tensors with device=logits.device."""),
    _CHAPTER, N_("Traps on a GPU"),
)

DEVICE_PREFERENCE = mistake(
    "device-preference",
    N_("the devices tried in the wrong order, or a device that does not exist"),
    N_("""pick_device must return the best device that exists on the machine it runs on:
    CUDA if torch.cuda.is_available(), else Apple's MPS if torch.backends.mps.is_available(),
    else the CPU. Hard-coding "cuda" fails on every machine without an NVIDIA GPU, and
    always returning the CPU wastes the GPU that a reader (or Colab) has."""),
    _CHAPTER, N_("One device value"),
)


def _loss_and_grad(loss, grad):
    """A wrong `softmax_cross_entropy`, from a (maybe wrong) NumPy loss and gradient."""

    def wrong(logits, target, grad_output=1.0):
        return loss(logits, target), grad_output * grad(logits, target)

    return wrong


reproduces(BACKWARD_IGNORES_GRAD_OUTPUT, "softmax_cross_entropy")(
    lambda logits, target, grad_output=1.0: (reference.cross_entropy(logits, target),
                                             reference.cross_entropy_grad(logits, target)))


def _picked(log_p, target):
    """The mean of -log p[n, target[n]]: how tensor code picks the right class (no 0 * inf)."""
    target = np.asarray(target)
    return -np.mean(log_p[np.arange(target.shape[0]), target])


def _ce_log_of_softmax_picked(logits, target):
    return _picked(np.log(reference.softmax(logits)), target)


def _ce_no_shift_picked(logits, target):
    logits = in_its_dtype(logits)
    return _picked(logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True)), target)


for _loss in (_ce_log_of_softmax, _ce_log_of_softmax_picked):
    reproduces(LOG_OF_PROBABILITY, "softmax_cross_entropy")(_loss_and_grad(_loss, reference.cross_entropy_grad))
for _loss in (_ce_no_shift, _ce_no_shift_picked):
    reproduces(SOFTMAX_NO_MAX_SHIFT, "softmax_cross_entropy")(_loss_and_grad(_loss, reference.cross_entropy_grad))
reproduces(CE_SUM_NOT_MEAN, "softmax_cross_entropy", also=(CE_GRAD_NO_BATCH_MEAN,))(
    _loss_and_grad(_ce_sum, _ce_grad_no_mean))
reproduces(CE_GRAD_NO_BATCH_MEAN, "softmax_cross_entropy")(
    _loss_and_grad(reference.cross_entropy, _ce_grad_no_mean))
reproduces(CE_GRAD_SIGN_FLIPPED, "softmax_cross_entropy")(
    _loss_and_grad(reference.cross_entropy, _ce_grad_sign))


# ---- a student's own softmax inside forward and backward (softgrad.mistakes.inside) ----------------

def _function_with(probabilities, log_probabilities):
    """forward's loss from the given log-probabilities (the target's picked), backward's gradient from
    the given probabilities, as a hand-written Function computes them."""

    def wrong(logits, target, grad_output=1.0):
        logits = in_its_dtype(logits)
        target = np.asarray(target)
        onehot = np.eye(logits.shape[1])[target]
        return _picked(log_probabilities(logits), target), grad_output * (probabilities(logits) - onehot) / len(target)

    return wrong


for _inner in variants(LOG_OF_PROBABILITY):
    reproduces(_inner.mistake, "softmax_cross_entropy", also=_inner.also)(
        _function_with(_inner.probabilities, _inner.log_probabilities))


@reproduces(SOFTMAX_WRONG_AXIS, "softmax_cross_entropy")
def _function_softmax_over_the_batch(logits, target, grad_output=1.0):
    target = np.asarray(target)
    onehot = np.eye(np.shape(logits)[1])[target]
    return (reference.cross_entropy(logits, target),
            grad_output * (reference.softmax(logits, axis=0) - onehot) / len(target))


@reproduces(CE_INTEGER_LABELS_AS_ONEHOT, "softmax_cross_entropy")
def _function_labels_subtracted(logits, target, grad_output=1.0):
    target = np.asarray(target)
    return (reference.cross_entropy(logits, target),
            grad_output * (reference.softmax(logits) - target[:, None]) / len(target))
