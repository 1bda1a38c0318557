"""What makes MSGAN itself: the mode-seeking regulariser and the same-class diversity it buys.
The short runs use real MNIST and the shipped ``lenet-mnist`` classifier."""
from __future__ import annotations

import pytest
import torch

from ganbench.errors import InputError
from ganbench.models import TrainContext, create_model

from helpers import random_batch, short_run


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_same_class_diversity_on_hand_made_features():
    from ganbench.models.msgan import same_class_diversity

    # class 0: points at distance 3 (3-4-5 triangle: distances 3, 4, 5); class 1: 2 points 10 apart;
    # class 2 has one sample and is ignored
    feats = torch.tensor([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0], [0.0, 0.0], [0.0, 10.0], [7.0, 7.0]])
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    assert same_class_diversity(feats, labels) == pytest.approx(((3 + 4 + 5) / 3 + 10) / 2)
    # identical samples within a class (mode collapse) give 0
    assert same_class_diversity(torch.ones(4, 3), torch.tensor([0, 0, 1, 1])) == 0.0
    with pytest.raises(InputError):
        same_class_diversity(torch.zeros(3, 2), torch.tensor([0, 1, 2]))


def test_mode_seeking_loss_is_inverse_distance_ratio():
    from ganbench.models.msgan import mode_seeking_loss

    a, b = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.5)
    z1, z2 = torch.zeros(2, 8), torch.full((2, 8), 2.0)
    # ratio = 0.5 / 2 = 0.25 -> loss = 1 / (0.25 + eps)
    assert mode_seeking_loss(a, b, z1, z2, eps=1e-5).item() == pytest.approx(1 / 0.25, rel=1e-4)
    # mode collapse (identical images for different z) is penalised hard
    assert mode_seeking_loss(a, a, z1, z2, eps=1e-5).item() == pytest.approx(1e5)


def test_msgan_draws_two_latents_per_label_and_weight_zero_is_plain_cgan():
    model = create_model("msgan", image_size=16, g_channels=4, d_channels=4, z_dim=8)
    seen = []
    model.generator.register_forward_hook(lambda m, inputs, out: seen.append(inputs[1].clone()))
    batch = random_batch(labels=True)
    out = model.train_step(batch, 0, TrainContext("cpu", seed=0))
    assert torch.equal(seen[0], torch.cat([batch.labels, batch.labels]))
    assert out["loss_ms"].item() > 0
    assert out["loss_g"].item() == pytest.approx(out["loss_adv"].item() + out["loss_ms"].item(), rel=1e-5)
    plain = create_model("msgan", image_size=16, g_channels=4, d_channels=4, z_dim=8, ms_weight=0.0)
    out0 = plain.train_step(batch, 0, TrainContext("cpu", seed=0))
    assert out0["loss_ms"].item() > 0 and out0["loss_g"].item() == pytest.approx(out0["loss_adv"].item())


def test_msgan_is_more_diverse_than_the_same_generator_without_the_regulariser(lenet):
    from ganbench.models.msgan import generated_class_diversity

    small = {"image_size": 16, "g_channels": 16, "d_channels": 16}
    runs = {w: short_run("msgan", 150, batch_size=32, ms_weight=w, **small) for w in (1.0, 0.0)}
    div = {w: generated_class_diversity(r.generator, lenet, per_class=50) for w, r in runs.items()}
    ratio = {w: 1 / r.losses["loss_ms"] for w, r in runs.items()}  # d_I / d_z of the last batch (eps aside)
    print(f"msgan same-class diversity (lenet pool): lambda=1 {div[1.0]:.3f}, lambda=0 {div[0.0]:.3f}; "
          f"d_I/d_z: {ratio[1.0]:.3f} vs {ratio[0.0]:.3f}")
    assert ratio[1.0] > 2 * ratio[0.0]  # the regulariser does what it optimises
    assert div[1.0] > 1.5 * div[0.0]
