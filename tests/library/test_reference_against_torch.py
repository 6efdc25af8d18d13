"""The trusted references follow PyTorch: the hidden tests of ps3 rely on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from softgrad import reference


@pytest.mark.parametrize("label_smoothing", [0.0, 0.05, 0.3, 1.0])
@pytest.mark.parametrize("kind", ["indices", "probabilities"])
def test_cross_entropy_and_its_gradient_match_pytorch(label_smoothing, kind):
    rng = np.random.default_rng(7)
    logits = rng.normal(scale=3.0, size=(6, 5))
    target = rng.integers(0, 5, size=6) if kind == "indices" else rng.dirichlet(np.ones(5), size=6)
    z = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(z, torch.tensor(target), label_smoothing=label_smoothing)
    loss.backward()
    assert reference.cross_entropy(logits, target, label_smoothing) == pytest.approx(loss.item(), rel=1e-13)
    np.testing.assert_allclose(reference.cross_entropy_grad(logits, target, label_smoothing),
                               z.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_softmax_family_matches_pytorch_for_large_logits():
    rng = np.random.default_rng(8)
    z = rng.normal(scale=500.0, size=(4, 7))
    t = torch.tensor(z)
    np.testing.assert_allclose(reference.softmax(z), torch.softmax(t, dim=-1).numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(reference.log_softmax(z), F.log_softmax(t, dim=-1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(reference.logsumexp(z), torch.logsumexp(t, dim=-1).numpy(), rtol=1e-13)


def test_softmax_regression_gradients_match_autograd():
    rng = np.random.default_rng(9)
    W, b, X = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(6, 4))
    y = rng.integers(0, 3, size=6)
    Wt, bt = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    loss = F.cross_entropy(torch.tensor(X) @ Wt + bt, torch.tensor(y)) + 0.5 * 0.3 * (Wt**2).sum()
    loss.backward()
    ours, dW, db = reference.softmax_regression_loss_and_grad(W, b, X, y, reg=0.3)
    assert ours == pytest.approx(loss.item(), rel=1e-13)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-12, atol=1e-16)
