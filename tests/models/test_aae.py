"""What makes the adversarial auto-encoder itself: reconstruction and codes matched to the prior."""
from __future__ import annotations

import pytest
import torch

from ganbench.models import Batch, TrainContext, create_model

from helpers import mnist_batches, mnist_test


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_aae_reconstructs_and_moves_codes_towards_the_prior(data_dir):
    """Reconstruction error falls; the codes spread out towards N(0, I) (at init they sit
    near 0). Without the adversarial phase a plain auto-encoder's codes drift far off
    (|mean| + |std - 1| ~ 13 per dimension after the same run), so the bound on the
    distance to the prior is what the regularisation phase buys."""
    from ganbench.models.aae import aae_report

    x, _ = mnist_test(500)
    torch.manual_seed(0)
    model = create_model("aae", dataset="mnist", hidden=256)
    before = aae_report(model, x)
    ctx, batches = TrainContext("cpu", seed=1), mnist_batches(64)
    for step in range(150):
        images, labels = next(batches)
        model.train_step(Batch(images, labels), step, ctx)
    after = aae_report(model, x)
    assert after["recon_mse"] < 0.5 * before["recon_mse"], (before, after)
    assert abs(after["code_std"] - 1) < abs(before["code_std"] - 1) - 0.25, (before, after)
    assert after["prior_distance"] < 3.0, (before, after)
    with torch.no_grad():
        samples = model.generator(torch.randn(16, model.config.z_dim))
    assert samples.shape == (16, 1, 28, 28) and samples.abs().max() <= 1
