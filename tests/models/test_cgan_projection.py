"""What makes the projection discriminator (cgan-pd, models/projection.py) itself: the class
enters D only through an inner product; G uses conditional batch norm. The short run uses real
MNIST (skipped without it, failed under GANBENCH_REQUIRE_DATA=1)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.models import create_model

from helpers import random_batch


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_projection_discriminator_output_is_psi_plus_inner_product():
    model = create_model("cgan-pd", image_size=16, g_channels=8, d_channels=8, z_dim=8)
    d = model.discriminator.eval()
    x = random_batch().images
    y = torch.arange(8) % 10
    with torch.no_grad():
        phi = d.features(x)
        expected = d.psi(phi).flatten() + (d.embed.weight[y] * phi).sum(1)
        torch.testing.assert_close(d(x, y), expected)
        # the class enters only through the projection term
        assert not torch.allclose(d(x, y), d(x, (y + 1) % 10))
    assert all(hasattr(m, "parametrizations") for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert hasattr(d.embed, "parametrizations")


def test_conditional_batch_norm_is_class_specific():
    from ganbench.models.projection import ConditionalBatchNorm2d

    cbn = ConditionalBatchNorm2d(4, 3)
    with torch.no_grad():
        cbn.gamma.weight[1] = 2.0
        cbn.beta.weight[1] = 5.0
    x = torch.randn(6, 4, 3, 3)
    h = nn.BatchNorm2d(4, affine=False)(x)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    out = cbn(x, labels)
    torch.testing.assert_close(out[labels != 1], h[labels != 1])  # gamma 1, beta 0 at init
    torch.testing.assert_close(out[labels == 1], 2 * h[labels == 1] + 5)


def test_projection_needs_labels():
    with pytest.raises(GanbenchError, match="class-conditional"):
        create_model("cgan-pd", num_classes=0)


def test_projection_head_learns_which_class_an_image_shows(mnist):
    """Trained with its hinge loss on real images paired with their own label ("real") or
    another label ("fake"), D separates the two; psi(phi(x)) is the same for both
    pairings, so only the projection term <embed(y), phi(x)> can tell them apart.
    (That the whole cGAN draws the conditioned class is tested in test_models.py.)"""
    from ganbench.images import uint8_to_float
    from ganbench.models.losses import hinge_d_loss

    x_train, y_train, x_test, y_test = mnist
    torch.manual_seed(0)
    model = create_model("cgan-pd", image_size=28, g_channels=4, d_channels=16, z_dim=4, lr=2e-3)
    d, opt = model.discriminator, model.opt_d
    g = torch.Generator().manual_seed(0)

    def wrong(y):
        return (y + torch.randint(1, 10, y.shape, generator=g)) % 10

    for _ in range(150):
        pick = torch.randint(0, len(x_train), (64,), generator=g)
        x, y = uint8_to_float(x_train[pick]), y_train[pick]
        loss = hinge_d_loss(d(x, y), d(x, wrong(y)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    d.eval()
    with torch.no_grad():
        x = uint8_to_float(x_test[:500])
        margin = d(x, y_test[:500]) - d(x, wrong(y_test[:500]))
    print(f"projection D prefers the true label on {(margin > 0).float().mean():.3f} of test images")
    assert (margin > 0).float().mean() > 0.6  # chance: 0.5 (0.73 after these 150 steps)
