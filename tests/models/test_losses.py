"""The shared losses of ganbench.models.losses: WGAN-GP's gradient penalty on critics whose
gradient is known."""
from __future__ import annotations

import pytest
import torch
from torch import nn


from helpers import random_batch


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


class LinearCritic(nn.Module):
    def __init__(self, dim: int, norm: float):
        super().__init__()
        self.linear = nn.Linear(dim, 1)
        with torch.no_grad():
            w = torch.randn(1, dim, generator=torch.Generator().manual_seed(0))
            self.linear.weight.copy_(w / w.norm() * norm)

    def forward(self, x):
        return self.linear(x.flatten(1)).flatten()


@pytest.mark.parametrize("norm, expected", [(1.0, 0.0), (3.0, 4.0), (0.5, 0.25)])
def test_gradient_penalty_of_linear_critics(norm, expected):
    from ganbench.models.losses import gradient_penalty

    critic = LinearCritic(1 * 16 * 16, norm)
    real, fake = random_batch().images, -random_batch().images
    eps = torch.rand(len(real), generator=torch.Generator().manual_seed(2))
    gp = gradient_penalty(critic, real, fake, eps)
    # the gradient of a linear critic is its weight everywhere: penalty (|w| - 1)^2
    assert gp.item() == pytest.approx(expected, abs=1e-5)
    if expected:  # differentiable w.r.t. the critic, so its update reduces the penalty
        gp.backward()
        assert critic.linear.weight.grad.norm() > 0
