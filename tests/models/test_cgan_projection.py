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


def test_psi_has_no_bias_as_snresnet_32():
    """dis_models/snresnet_32.py: ``l5 = SNLinear(ch, 1, ..., nobias=True)``; ``l_y`` is an
    SNEmbedID (no bias either). So D(x, y) is 0 where phi(x) is 0. (BigGAN and SAGAN, which
    share this D, keep a bias in their heads.)"""
    model = create_model("cgan-pd", image_size=16, g_channels=8, d_channels=8, z_dim=8)
    d = model.discriminator
    assert d.psi.bias is None
    assert [n for n, _ in d.embed.named_parameters()] == ["parametrizations.weight.original"]
    d.eval()
    with torch.no_grad():
        phi = torch.zeros(3, 8)
        out = d.psi(phi).flatten() + (d.embed(torch.tensor([0, 1, 2])) * phi).sum(1)
    assert torch.equal(out, torch.zeros(3))
    assert create_model("sagan", image_size=16, g_channels=8, d_channels=8, z_dim=8).discriminator.psi.bias is not None


def test_cifar10_defaults_and_recipe_follow_sn_cifar10_yml():
    """configs/sn_cifar10.yml: G ch 256, D ch 128, batchsize 64, n_dis 5, n_gen_samples 128,
    Adam 2e-4 (0, 0.9), 50k iterations with linear decay from 0."""
    from ganbench.models.base import model_info

    c = create_model("cgan-pd", dataset="cifar10").config
    assert (c.g_channels, c.d_channels, c.g_batch_multiple, c.n_dis) == (256, 128, 2, 5)
    assert (c.lr, c.beta1, c.beta2, c.lr_decay_steps) == (2e-4, 0.0, 0.9, 50_000)
    info = model_info("cgan-pd")
    assert info.recipe_for("cifar10").batch_size == 64 and info.recipe_for("cifar10").ema is None
    assert info.departures and all(what and why for what, why in info.departures)


def test_g_update_draws_g_batch_multiple_times_the_batch():
    """The authors' updater: n_dis D updates on a real batch and as many fakes each, then the
    G update on n_gen_samples fakes (2 x the batch on CIFAR-10)."""
    from helpers import repeating_context

    model = create_model("cgan-pd", image_size=16, g_channels=8, d_channels=8, z_dim=8, n_dis=2,
                         g_batch_multiple=2)
    sizes = []
    model.generator.register_forward_hook(lambda m, args, out: sizes.append(len(out)))
    batch = random_batch(8, labels=True)
    model.train_step(batch, 0, repeating_context(batch))
    assert sizes == [8, 8, 16]
