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


def test_sngan_cifar10_default_is_the_resnet_with_hinge_adam_0_09_and_n_dis_5():
    """Table 4 / sngan_projection configs/sn_cifar10_unconditional.yml: G 256, D 128 wide,
    hinge loss, Adam 2e-4 (0, 0.9), n_dis 5, batch 64 per D update, 128 fakes per G update,
    alpha decayed linearly over 50k G updates. Elsewhere the standard CNN with setting C."""
    from ganbench.models import create_model, projection
    from ganbench.models.base import model_info

    model = create_model("sngan", dataset="cifar10")
    c = model.config
    assert (c.arch, c.loss, c.n_dis, c.lr, c.lr_decay_steps, c.g_batch_multiple) == ("resnet", "hinge", 5, 2e-4,
                                                                                      50_000, 2)
    assert (c.g_channels, c.d_channels) == (256, 128)
    for opt in (model.opt_g, model.opt_d):
        assert opt.param_groups[0]["betas"] == (0.0, 0.9)
    assert isinstance(model.generator, projection.Generator)
    assert isinstance(model.discriminator, projection.Discriminator) and model.discriminator.psi.bias is None
    assert model.generator.latent.num_classes == 0  # unconditional although CIFAR-10 has labels
    assert model_info("sngan").recipe_for("cifar10").batch_size == 64
    cnn = create_model("sngan", dataset="mnist")
    assert (cnn.config.arch, cnn.config.n_dis, cnn.config.lr_decay_steps) == ("cnn", 1, None)
    assert cnn.opt_g.param_groups[0]["betas"] == (0.5, 0.999)


def test_sngan_resnet_discriminator_is_spectrally_normalised_and_sum_pooled():
    model = tiny_16px("sngan", arch="resnet", image_size=32)
    d = model.discriminator
    layers = _layers(d)
    assert len(layers) == 3 + 3 + 2 + 2 + 1  # optimized block, down block (with shortcuts), 2 plain blocks, psi
    assert all("weight" in m.parametrizations for m in layers)
    x = random_batch(size=32).images
    d.eval()
    with torch.no_grad():
        h = x
        for block in d.blocks:
            h = block(h)
        torch.testing.assert_close(d(x), d.psi(torch.relu(h).sum(dim=(2, 3))).flatten())


def test_sngan_resnet_step_decays_lr_and_feeds_g_twice_the_batch():
    from helpers import repeating_context

    model = tiny_16px("sngan", arch="resnet", n_dis=3, lr_decay_steps=10, g_batch_multiple=2)
    sizes = []
    model.generator.register_forward_hook(lambda m, args, out: sizes.append(len(out)))
    model.train_step(random_batch(8), 4, repeating_context(random_batch(8)))
    assert sizes == [8, 8, 8, 16]  # n_dis D updates on 8 fakes each, then G on 2 x 8
    for opt in (model.opt_g, model.opt_d):
        assert opt.param_groups[0]["lr"] == pytest.approx(2e-4 * (1 - 4 / 10))
