"""What makes the VAE itself: its ELBO improves with either decoder."""
from __future__ import annotations

import math

import pytest
import torch

from ganbench.models import create_model

from helpers import run_steps


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_vae_elbo_improves(decoder):
    torch.manual_seed(0)
    model = create_model("vae", image_size=16, hidden=64, z_dim=8, decoder=decoder, optimizer="adam", lr=2e-3,
                         init_std=0.05)
    logs = run_steps(model, 60, 16)
    assert all(math.isfinite(log["elbo"]) for log in logs)
    assert logs[-1]["elbo"] > logs[0]["elbo"] + 0.1 * abs(logs[0]["elbo"])
    assert logs[-1]["kl"] > 0
    with torch.no_grad():
        out = model.generator(torch.randn(5, 8))
    assert out.shape == (5, 1, 16, 16) and out.min() >= -1 and out.max() <= 1
