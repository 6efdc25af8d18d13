"""Mutants of ps5_pytorch: hand-written backward mistakes, forbidden shortcuts, devices, and correct variants."""

from mutants import correct, wrong

NOTEBOOK = "pytorch.ipynb"

_FORWARD = """\
    @staticmethod
    def forward(ctx, logits, target):
        ctx.save_for_backward(logits, target)
        picked = logits.gather(1, target.unsqueeze(1)).squeeze(1)
        return (torch.logsumexp(logits, dim=1) - picked).mean()
"""

_BACKWARD = """\
    @staticmethod
    def backward(ctx, grad_output):
        logits, target = ctx.saved_tensors
        grad = torch.softmax(logits, dim=1)
        grad[torch.arange(logits.shape[0], device=logits.device), target] -= 1.0
        return RESULT
"""


def function(forward: str = _FORWARD, backward: str = _BACKWARD,
             result: str = "grad_output * grad / logits.shape[0], None") -> str:
    """A SoftmaxCrossEntropy from a forward and a backward (each indented 4 spaces, with its decorator)."""
    return "class SoftmaxCrossEntropy(torch.autograd.Function):\n" + forward + "\n" + backward.replace("RESULT", result)


def forward(body: str) -> str:
    """A forward whose body (indented 8 spaces) follows `ctx.save_for_backward(logits, target)`."""
    return ("    @staticmethod\n    def forward(ctx, logits, target):\n"
            "        ctx.save_for_backward(logits, target)\n" + body)


MUTANTS = [
    # ---- the backward -------------------------------------------------------------------------------
    wrong("backward_ignores_grad_output", "[backward-ignores-grad-output]",
          SoftmaxCrossEntropy=function(result="grad / logits.shape[0], None")),
    wrong("backward_gradient_for_target", "[backward-grad-for-target]",
          SoftmaxCrossEntropy=function(result="grad_output * grad / logits.shape[0], torch.zeros_like(target)")),
    wrong("backward_without_1_over_n", "[ce-grad-missing-1-over-n]",
          SoftmaxCrossEntropy=function(result="grad_output * grad, None")),
    wrong("backward_sign_flipped", "[ce-grad-sign-flipped]",
          SoftmaxCrossEntropy=function(result="-grad_output * grad / logits.shape[0], None")),
    wrong("backward_through_autograd", "[autograd-inside-function]", SoftmaxCrossEntropy=function(backward="""\
    @staticmethod
    def backward(ctx, grad_output):
        logits, target = ctx.saved_tensors
        with torch.enable_grad():
            z = logits.detach().requires_grad_(True)
            picked = z.gather(1, target.unsqueeze(1)).squeeze(1)
            (grad,) = torch.autograd.grad((torch.logsumexp(z, dim=1) - picked).mean(), z)
        return grad_output * grad, None
""")),
    # ---- the forward --------------------------------------------------------------------------------
    wrong("forward_log_of_softmax", "[log-of-probability]", SoftmaxCrossEntropy=function(forward=forward("""\
        p = torch.softmax(logits, dim=1)
        return -torch.log(p.gather(1, target.unsqueeze(1))).mean()
"""))),
    wrong("forward_without_max_shift", "[softmax-no-max-shift]", SoftmaxCrossEntropy=function(forward=forward("""\
        picked = logits.gather(1, target.unsqueeze(1)).squeeze(1)
        return (torch.log(torch.exp(logits).sum(dim=1)) - picked).mean()
"""))),
    wrong("loss_summed_over_batch", "[ce-sum-not-mean]", SoftmaxCrossEntropy=function(forward=forward("""\
        picked = logits.gather(1, target.unsqueeze(1)).squeeze(1)
        return (torch.logsumexp(logits, dim=1) - picked).sum()
"""), result="grad_output * grad, None")),
    wrong("forward_calls_F_cross_entropy", "[autograd-inside-function]", SoftmaxCrossEntropy=function(
        forward=forward("        return F.cross_entropy(logits, target)\n"))),
    wrong("forward_calls_log_softmax", "[autograd-inside-function]", SoftmaxCrossEntropy=function(
        forward=forward("        return -logits.log_softmax(dim=1).gather(1, target.unsqueeze(1)).mean()\n"))),
    wrong("forward_through_numpy", "[host-round-trip]", SoftmaxCrossEntropy=function(forward=forward("""\
        import numpy as np

        z, y = logits.numpy(), target.numpy()
        top = z.max(axis=1)
        losses = top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - z[np.arange(len(y)), y]
        return torch.tensor(losses.mean(), dtype=logits.dtype)
"""))),
    wrong("forward_shifts_logits_in_place", "[mutates-input]", SoftmaxCrossEntropy=function(forward=forward("""\
        logits -= logits.max(dim=1, keepdim=True).values
        picked = logits.gather(1, target.unsqueeze(1)).squeeze(1)
        return (torch.logsumexp(logits, dim=1) - picked).mean()
"""))),
    wrong("forward_in_float32", "keep the logits' dtype", SoftmaxCrossEntropy=function(forward=forward("""\
        z = logits.float()
        picked = z.gather(1, target.unsqueeze(1)).squeeze(1)
        return (torch.logsumexp(z, dim=1) - picked).mean()
"""))),
    # ---- softmax_cross_entropy ----------------------------------------------------------------------
    wrong("wrapper_skips_the_function", "[function-not-applied]", softmax_cross_entropy="""
        def softmax_cross_entropy(logits, target):
            return F.cross_entropy(logits, target)
    """),
    # ---- pick_device --------------------------------------------------------------------------------
    wrong("device_always_cpu", "[device-preference]", pick_device="""
        def pick_device():
            return torch.device("cpu")
    """),
    wrong("device_mps_before_cuda", "[device-preference]", pick_device="""
        def pick_device():
            if torch.backends.mps.is_available():
                return torch.device("mps")
            if torch.cuda.is_available():
                return torch.device("cuda")
            return torch.device("cpu")
    """),
    wrong("device_cuda_hard_coded", "[device-preference]", pick_device="""
        def pick_device():
            return torch.device("cuda")
    """),
    wrong("device_as_string", "should return a torch.device", pick_device="""
        def pick_device():
            return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    """),
    # ---- correct variants ---------------------------------------------------------------------------
    correct("one_hot_and_manual_shift", SoftmaxCrossEntropy="""
        class SoftmaxCrossEntropy(torch.autograd.Function):
            @staticmethod
            def forward(ctx, logits, target):
                top = logits.max(dim=1, keepdim=True).values
                shifted = logits - top
                log_p = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
                onehot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
                ctx.save_for_backward(torch.exp(log_p), onehot)
                return -(onehot * log_p).sum() / logits.shape[0]

            @staticmethod
            def backward(ctx, grad_output):
                p, onehot = ctx.saved_tensors
                return grad_output * (p - onehot) / p.shape[0], None
    """),
    correct("setup_context_style", SoftmaxCrossEntropy="""
        class SoftmaxCrossEntropy(torch.autograd.Function):
            @staticmethod
            def forward(logits, target):
                lse = torch.logsumexp(logits, dim=1)
                return (lse - logits[torch.arange(logits.shape[0], device=logits.device), target]).mean()

            @staticmethod
            def setup_context(ctx, inputs, output):
                logits, target = inputs
                ctx.save_for_backward(logits, target)

            @staticmethod
            def backward(ctx, grad_output):
                logits, target = ctx.saved_tensors
                p = torch.softmax(logits, dim=1)
                p = p.scatter_add(1, target.unsqueeze(1), -torch.ones_like(p[:, :1]))
                return p * (grad_output / logits.shape[0]), None
    """),
    correct("device_one_expression", pick_device="""
        def pick_device():
            name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
            return torch.device(name)
    """),
    correct("device_from_accelerator_api", pick_device="""
        def pick_device():
            accelerator = torch.accelerator.current_accelerator()
            return accelerator if accelerator is not None else torch.device("cpu")
    """),
]
