"""The PyTorch checks of problem set 5 accept right Functions and name the mistakes of wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from softgrad import torch_testing  # noqa: E402
from softgrad.torch_testing import check_gradcheck, check_pick_device, check_softmax_cross_entropy  # noqa: E402
from softgrad.torchtools import describe_device, device_time, pick_device, synchronize  # noqa: E402


def make_function(loss=None, grad=None, target_grad=None):
    """A SoftmaxCrossEntropy whose forward or backward can be replaced by a (wrong) one."""

    class SoftmaxCrossEntropy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, logits, target):
            ctx.save_for_backward(logits, target)
            if loss is not None:
                return loss(logits, target)
            picked = logits.gather(1, target.unsqueeze(1)).squeeze(1)
            return (torch.logsumexp(logits, dim=1) - picked).mean()

        @staticmethod
        def backward(ctx, grad_output):
            logits, target = ctx.saved_tensors
            if grad is not None:
                return grad(logits, target, grad_output), None
            p = torch.softmax(logits, dim=1)
            p[torch.arange(len(target)), target] -= 1
            return grad_output * p / len(target), (target_grad(target) if target_grad else None)

    return SoftmaxCrossEntropy


def inputs(dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(6, 5, dtype=dtype, generator=generator), torch.randint(0, 5, (6,), generator=generator)


def check(cls, logits, target, apply=None, **kwargs):
    check_softmax_cross_entropy(apply or cls.apply, logits, target, function_class=cls, **kwargs)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("grad_output", [1.0, 3.0, -0.5])
def test_a_right_function_passes(dtype, grad_output):
    cls = make_function()
    check(cls, *inputs(dtype), grad_output=grad_output)
    big = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 999.0, 1000.0]], dtype=dtype)
    check(cls, big, torch.tensor([1, 2]), grad_output=grad_output, case="logits of +-1000")
    check_gradcheck(cls.apply, *inputs())


def _softmax_grad(logits, target):
    p = torch.softmax(logits, dim=1)
    p[torch.arange(len(target)), target] -= 1
    return p


WRONG = {
    "backward-ignores-grad-output": dict(grad=lambda z, t, g: _softmax_grad(z, t) / len(t)),
    "ce-grad-missing-1-over-n": dict(grad=lambda z, t, g: g * _softmax_grad(z, t)),
    "ce-grad-sign-flipped": dict(grad=lambda z, t, g: -g * _softmax_grad(z, t) / len(t)),
    "backward-grad-for-target": dict(target_grad=torch.zeros_like),
    "autograd-inside-function": dict(loss=lambda z, t: F.cross_entropy(z, t)),
    "host-round-trip": dict(loss=lambda z, t: torch.tensor(float(np.mean(
        np.log(np.exp(z.numpy()).sum(1)) - z.numpy()[np.arange(len(t)), t.numpy()])), dtype=z.dtype)),
}


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_a_wrong_function_fails_with_the_mistake_named(mistake):
    cls = make_function(**WRONG[mistake])
    with pytest.raises(AssertionError, match=rf"(?s)\[{mistake}\]"):
        check(cls, *inputs(), grad_output=3.0)


@pytest.mark.parametrize(("loss", "mistake"), [
    (lambda z, t: -torch.log(torch.softmax(z, 1).gather(1, t[:, None])).mean(), "log-of-probability"),
    (lambda z, t: (torch.log(torch.exp(z).sum(1)) - z.gather(1, t[:, None]).squeeze(1)).mean(),
     "softmax-no-max-shift"),
])
def test_an_unstable_forward_is_named_on_the_inputs_that_expose_it(loss, mistake):
    cls = make_function(loss=loss)
    check(cls, *inputs())  # ordinary logits: no difference
    exposing = {"log-of-probability": torch.tensor([[0.0, -800.0, 3.0]], dtype=torch.float64),
                "softmax-no-max-shift": torch.tensor([[1000.0, 0.0, -3.0]], dtype=torch.float64)}[mistake]
    with pytest.raises(AssertionError, match=rf"(?s)is (inf|nan), but the correct value.*\[{mistake}\]") as failure:
        check(cls, exposing, torch.tensor([1]))
    assert "F.cross_entropy agrees" in " ".join(str(failure.value).split())


def test_a_loss_not_made_by_the_function_is_named():
    cls = make_function()
    with pytest.raises(AssertionError, match=r"(?s)NllLossBackward.*\[function-not-applied\]"):
        check(cls, *inputs(), apply=lambda z, t: F.cross_entropy(z, t))


def test_dtype_and_mutation_are_checked():
    cls = make_function()
    with pytest.raises(AssertionError, match="must keep the logits' dtype"):
        check(cls, *inputs(), apply=lambda z, t: cls.apply(z.float(), t))
    in_place = make_function(loss=lambda z, t: (z.sub_(1.0), torch.logsumexp(z, 1).mean() -
                                                z.gather(1, t[:, None]).mean())[1])
    logits, target = inputs()
    original = logits.clone()
    with pytest.raises(AssertionError, match=r"(?s)\[mutates-input\]"):
        check(in_place, logits, target)
    assert torch.equal(logits, original), "the check must hand the student a copy"


def test_forbidden_functions_imported_by_name_are_caught_and_everything_is_restored():
    namespace = {"torch": torch}
    exec(  # a notebook cell that imported the loss by name
        "from torch.nn.functional import cross_entropy\n"
        "class SoftmaxCrossEntropy(torch.autograd.Function):\n"
        "    @staticmethod\n"
        "    def forward(ctx, logits, target):\n"
        "        ctx.save_for_backward(logits, target)\n"
        "        return cross_entropy(logits, target)\n"
        "    @staticmethod\n"
        "    def backward(ctx, g):\n"
        "        return None, None\n", namespace)
    cls = namespace["SoftmaxCrossEntropy"]
    originals = (F.cross_entropy, torch.Tensor.backward, torch.autograd.grad, torch.Tensor.numpy)
    with pytest.raises(AssertionError, match=r"(?s)F\.cross_entropy\s+\(in\s+forward\).*\[autograd-inside-function\]"):
        check(cls, *inputs())
    assert (F.cross_entropy, torch.Tensor.backward, torch.autograd.grad, torch.Tensor.numpy) == originals
    assert namespace["cross_entropy"] is F.cross_entropy
    assert "backward" not in vars(torch.Tensor) or vars(torch.Tensor)["backward"] is originals[1]


def test_gradcheck_fails_a_backward_that_disagrees_with_the_forward():
    cls = make_function(grad=lambda z, t, g: g * _softmax_grad(z, t))  # no 1/N
    evidence = r"(?s)disagrees with central differences.*Largest differences.*yours -?0\.\d+, expected -?0\.1\d+"
    with pytest.raises(AssertionError, match=evidence):
        check_gradcheck(cls.apply, *inputs())


def test_pick_device_checks_the_order_on_simulated_machines():
    check_pick_device(pick_device)
    with pytest.raises(AssertionError, match=r"(?s)CUDA\s+available.*simulated.*\[device-preference\]"):
        check_pick_device(lambda: torch.device("cpu"))
    with pytest.raises(AssertionError, match="should return a torch.device"):
        check_pick_device(lambda: "cpu")

    def mps_first():
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")

    mps_chosen = r"(?s)MPS\s+available\s+\(simulated\)\s+returned\s+mps.*\[device-preference\]"
    with pytest.raises(AssertionError, match=mps_chosen):
        check_pick_device(mps_first)
    assert not torch.cuda.is_available() or torch.cuda.device_count() > 0  # the simulation was undone


def test_timing_helpers_on_the_cpu():
    device = torch.device("cpu")
    synchronize(device)
    assert describe_device(device).startswith("cpu (")
    calls = []
    seconds = device_time(lambda: calls.append(1), device, repeats=3, warmup=2)
    assert len(calls) == 5 and seconds >= 0
    with pytest.raises(ValueError, match="repeats"):
        device_time(lambda: None, device, repeats=0)
    assert torch_testing.describe_tensor("z", torch.tensor([1.0, -2.0])).endswith("values in [-2, 1]")


def test_the_tolerance_is_tight_enough_to_see_a_small_error():
    """float64 results must agree to about 1e-13: a relative error of 1e-9 in the loss fails."""
    cls = make_function(loss=lambda z, t: (torch.logsumexp(z, 1) - z.gather(1, t[:, None]).squeeze(1)).mean()
                        * (1 + 1e-9))
    with pytest.raises(AssertionError, match="The loss of"):
        check(cls, *inputs())
    nudged = make_function(grad=lambda z, t, g: g * _softmax_grad(z, t) / len(t) + 1e-9)
    with pytest.raises(AssertionError, match="is wrong in 30 of 30 entries"):
        check(nudged, *inputs())
