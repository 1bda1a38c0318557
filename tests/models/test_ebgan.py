"""What makes EBGAN itself: the energy margin and the pulling-away term."""
from __future__ import annotations

import pytest
import torch

from ganbench.models import Batch, TrainContext, create_model

from helpers import mnist_batches, run_steps


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_pulling_away_term_matches_its_definition():
    from ganbench.models.ebgan import pulling_away_term

    s = torch.randn(6, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    flat = s.flatten(1)
    brute = sum((flat[i] @ flat[j] / (flat[i].norm() * flat[j].norm())) ** 2
                for i in range(6) for j in range(6) if i != j) / (6 * 5)
    assert pulling_away_term(s).item() == pytest.approx(brute.item(), rel=1e-5)
    assert pulling_away_term(torch.eye(4)).item() == pytest.approx(0.0, abs=1e-7)  # orthogonal: 0
    assert pulling_away_term(torch.ones(5, 8) * 3).item() == pytest.approx(1.0, rel=1e-6)  # collapsed: 1


def test_ebgan_energy_separates_real_from_generated(data_dir):
    """D learns low energy on data and pushes generated energy up towards the margin; the
    PT term reaches G (a different G update with and without it)."""
    torch.manual_seed(0)
    model = create_model("ebgan", dataset="mnist", g_channels=8, d_channels=8, z_dim=16)
    ctx, batches, logs = TrainContext("cpu", seed=1), mnist_batches(), []
    for step in range(40):
        images, labels = next(batches)
        logs.append({k: float(v) for k, v in model.train_step(Batch(images, labels), step, ctx).items()})
    assert logs[-1]["energy_real"] < 0.5 * logs[0]["energy_real"]
    assert logs[-1]["energy_fake"] > 2 * logs[-1]["energy_real"]
    assert logs[-1]["energy_fake"] > 10 * logs[0]["energy_fake"]
    assert 0.0 <= logs[-1]["pt"] <= 1.0

    def g_after_one_step(pt_weight):
        torch.manual_seed(0)
        m = create_model("ebgan", image_size=16, g_channels=8, d_channels=8, z_dim=16, pt_weight=pt_weight)
        run_steps(m, 1, 16)
        return torch.cat([p.flatten() for p in m.generator.parameters()])

    assert not torch.allclose(g_after_one_step(0.0), g_after_one_step(0.1))
