"""Models build and train at MNIST's 28 px and at their papers' sizes (one parametrised test
per architecture style)."""
from __future__ import annotations

import math

import pytest
import torch

from ganbench.models import Batch, TrainContext, create_model


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


TINY = {
    "ebgan": {"g_channels": 4, "d_channels": 4, "z_dim": 8},
    "began": {"n_channels": 4, "h_dim": 4, "z_dim": 4},
    "infogan": {"g_channels": 4, "d_channels": 4, "fc_dim": 16, "q_dim": 8},
    "sgan": {"g_channels": 4, "d_channels": 4, "z_dim": 8, "labels_per_class": 1, "labeled_batch_size": 4},
    "aae": {"hidden": 16},
    "vae": {"hidden": 16},
}


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("size, channels", [(28, 1), (32, 1), (64, 3)])
def test_builds_and_steps_at_mnist_and_paper_resolutions(name, size, channels):
    torch.manual_seed(0)
    model = create_model(name, image_size=size, channels=channels, **TINY[name])
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.rand(4, channels, size, size, generator=g) * 2 - 1, torch.arange(4) % 10)
    log = model.train_step(batch, 0, TrainContext("cpu", seed=0))
    assert log and all(math.isfinite(float(v)) for v in log.values())
    model.eval()
    with torch.no_grad():
        z = torch.rand(3, model.generator.latent.z_dim, generator=g) * 2 - 1
        out = model.generator(z)
    assert out.shape == (3, channels, size, size)
    assert out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize("size", [28, 32, 64])
def test_resnet_models_build_at_mnist_and_64px_sizes(size):
    for name in ("cgan-pd", "sagan"):
        model = create_model(name, image_size=size, g_channels=4, d_channels=4, z_dim=4)
        z, y = torch.randn(2, 4), torch.tensor([0, 1])
        x = model.generator(z, y)
        assert x.shape == (2, 1, size, size)
        assert model.discriminator(x, y).shape == (2,)
