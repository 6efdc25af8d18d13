"""Problem set 5 re-run outside the kernel: the student's autograd.Function runs in the sandbox behind a
stand-in, and the course's PyTorch checks judge it as they do in the kernel."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from softgrad.grader.remote import remote_function  # noqa: E402
from softgrad.grader.sandbox import Proxy, Sandbox  # noqa: E402
from softgrad.testing.pytorch import check_gradcheck, check_softmax_cross_entropy  # noqa: E402

SETUP = "import torch\nimport torch.nn.functional as F\n"


def function(forward: str, backward: str) -> str:
    return f"""
class SoftmaxCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target):
        ctx.save_for_backward(logits, target)
        rows = torch.arange(logits.shape[0])
        {forward}

    @staticmethod
    def backward(ctx, grad_output):
        logits, target = ctx.saved_tensors
        rows = torch.arange(logits.shape[0])
        {backward}


def softmax_cross_entropy(logits, target):
    return SoftmaxCrossEntropy.apply(logits, target)
"""


RIGHT = function("return (torch.logsumexp(logits, dim=1) - logits[rows, target]).mean()",
                 "grad = torch.softmax(logits, dim=1)\n        grad[rows, target] -= 1.0\n"
                 "        return grad_output * grad / logits.shape[0], None")
STUDENTS = {
    "right": RIGHT,
    "ignores grad_output": RIGHT.replace("return grad_output * grad / logits.shape[0], None",
                                        "return grad / logits.shape[0], None"),
    "F.cross_entropy in forward": RIGHT.replace(
        "return (torch.logsumexp(logits, dim=1) - logits[rows, target]).mean()",
        "return F.cross_entropy(logits, target)"),
    "a gradient for the target": RIGHT.replace("return grad_output * grad / logits.shape[0], None",
                                               "return grad_output * grad / logits.shape[0], torch.zeros(3)"),
    "shifts the logits in place": RIGHT.replace(
        "ctx.save_for_backward(logits, target)",
        "logits.sub_(logits.max(dim=1, keepdim=True).values)\n        ctx.save_for_backward(logits, target)"),
    "wrapper skips the Function": RIGHT.replace("return SoftmaxCrossEntropy.apply(logits, target)",
                                                "return F.cross_entropy(logits, target)"),
}
EXPECTED = {
    "ignores grad_output": "[backward-ignores-grad-output]",
    "F.cross_entropy in forward": "[autograd-inside-function]",
    "a gradient for the target": "[backward-grad-for-target]",
    "shifts the logits in place": "[mutates-input]",
    "wrapper skips the Function": "[function-not-applied]",
}


@pytest.fixture(scope="module", params=sorted(STUDENTS))
def student(request, tmp_path_factory):
    with Sandbox(cwd=tmp_path_factory.mktemp("remote"), call_timeout=60) as box:
        box.run_cell("provided", SETUP)
        box.run_cell("student", STUDENTS[request.param])
        assert not box.cell_errors, box.cell_errors
        kinds = box.names()
        assert kinds["SoftmaxCrossEntropy"] == "torch-function" and kinds["softmax_cross_entropy"] == "function"
        yield request.param, Proxy(box, "softmax_cross_entropy"), remote_function("SoftmaxCrossEntropy",
                                                                                    box.apply_function)


def test_the_checks_judge_the_remote_function_as_they_judge_a_local_one(student):
    name, wrapper, stand_in = student
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    target = torch.tensor([0, 2, 1])
    if name == "right":
        check_softmax_cross_entropy(wrapper, logits, target, function_class=stand_in, grad_output=3.0)
        check_gradcheck(wrapper, logits, target)
        return
    with pytest.raises(AssertionError) as failure:
        check_softmax_cross_entropy(wrapper, logits, target, function_class=stand_in, grad_output=3.0)
    assert EXPECTED[name] in " ".join(str(failure.value).split()), str(failure.value)


def test_a_stand_in_applied_directly_runs_the_students_function(student):
    name, _, stand_in = student
    if name != "right":
        pytest.skip("one student is enough")
    logits = torch.tensor([[1000.0, 0.0, -3.0]], dtype=torch.float64, requires_grad=True)
    loss = stand_in.apply(logits, torch.tensor([0]))
    assert type(loss.grad_fn).__name__ == "SoftmaxCrossEntropyBackward"
    loss.backward()
    expected = torch.softmax(logits.detach(), dim=1) - torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(logits.grad, expected)


def test_a_graph_stays_as_long_as_its_result_and_no_longer(tmp_path):
    """gradcheck keeps its first result while it makes hundreds more: that graph must survive them, and the
    graphs of the results it dropped must be freed in the sandbox."""
    import gc

    from softgrad.grader import remote

    with Sandbox(cwd=tmp_path, call_timeout=60) as box:
        box.run_cell("provided", SETUP)
        box.run_cell("student", RIGHT)
        wrapper = Proxy(box, "softmax_cross_entropy")
        logits = torch.randn(7, 6, dtype=torch.float64, requires_grad=True)
        target = torch.tensor([0, 1, 2, 3, 4, 5, 0])
        first = wrapper(logits, target)
        for _ in range(remote.KEPT_GRAPHS + 50):
            wrapper(logits, target)  # dropped at once: freed in the sandbox, or `first` would be pushed out
        gc.collect()
        (grad,) = torch.autograd.grad(first, logits)
        expected = (torch.softmax(logits, 1) - torch.nn.functional.one_hot(target, 6)) / 7
        assert torch.allclose(grad, expected)
