"""What makes SNGAN itself: spectral normalisation of every discriminator layer."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ganbench.models import TrainContext

from helpers import random_batch, tiny_16px


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def _layers(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_sngan_discriminator_layers_have_unit_spectral_norm():
    model = tiny_16px("sngan")
    layers = _layers(model.discriminator)
    assert len(layers) == 3 * 2 + 2  # three (3x3, 4x4) pairs, the last 3x3 conv, the linear layer
    assert all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in layers)
    ctx = TrainContext("cpu", seed=0)
    for step in range(3):  # weights change; the power iteration keeps up
        model.train_step(random_batch(), step, ctx)
    model.discriminator.train()
    with torch.no_grad():
        for _ in range(40):  # one power iteration per training-mode forward pass
            model.discriminator(random_batch().images)
    model.discriminator.eval()
    for m in layers:
        w = m.weight.detach().flatten(1)  # conv kernels as out x (in * k * k), as in the paper
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.02)
    # plain (unnormalised) weights are far from norm 1: the normalisation is doing the work
    raw = [torch.linalg.matrix_norm(m.parametrizations.weight.original.detach().flatten(1), ord=2).item()
           for m in layers]
    assert max(abs(r - 1) for r in raw) > 0.3
