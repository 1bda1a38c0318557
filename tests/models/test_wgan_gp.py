"""What makes WGAN-GP itself: a gradient penalty on a critic without batch norm. (The penalty
on critics of known gradient is tested in test_losses.py.)"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ganbench.errors import GanbenchError

from helpers import random_batch, tiny_16px


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_wgan_gp_penalty_is_positive_for_a_network_critic_and_critic_has_no_batch_norm():
    from ganbench.models.losses import gradient_penalty

    for norm in ("none", "layer"):
        model = tiny_16px("wgan-gp", critic_norm=norm)
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.critic.modules())
    real = random_batch().images
    eps = torch.rand(len(real))
    assert gradient_penalty(model.critic, real, -real, eps).item() > 1e-3
    with pytest.raises(GanbenchError, match="critic_norm"):
        tiny_16px("wgan-gp", critic_norm="batch")


def test_wgan_gp_resnet_critic_has_no_spectral_norm_and_mean_pools():
    """gan_cifar_resnet.py's critic: NORMALIZATION_D = False, no spectral norm,
    ``tf.reduce_mean(output, axis=[2, 3])``, then Linear(DIM_D, 1) with a bias."""
    model = tiny_16px("wgan-gp", arch="resnet", image_size=32)
    d = model.critic
    assert not any(hasattr(m, "parametrizations") for m in d.modules())
    assert not any(isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)) for m in d.modules())
    assert d.psi.bias is not None
    x = random_batch(size=32).images
    with torch.no_grad():
        h = x
        for block in d.blocks:
            h = block(h)
        assert h.shape[-1] == 8  # optimized block and one down block: 32 -> 8
        torch.testing.assert_close(d(x), d.psi(torch.relu(h).mean(dim=(2, 3))).flatten())


def test_wgan_gp_cifar10_default_is_gan_cifar_resnet_py_elsewhere_dcgan():
    from ganbench.models import create_model

    c = create_model("wgan-gp", dataset="cifar10").config
    # DIM_G = DIM_D = 128, LR 2e-4 decayed over ITERS = 100k, betas (0, 0.9), N_CRITIC 5, GEN_BS_MULTIPLE 2
    assert (c.arch, c.g_channels, c.d_channels, c.lr, c.lr_decay_steps) == ("resnet", 128, 128, 2e-4, 100_000)
    assert (c.beta1, c.beta2, c.n_critic, c.g_batch_multiple, c.critic_norm) == (0.0, 0.9, 5, 2, "none")
    assert create_model("wgan-gp", dataset="mnist").config.arch == "dcgan"
    with pytest.raises(GanbenchError, match="arch=resnet"):
        tiny_16px("wgan-gp", arch="resnet", critic_norm="layer")


def test_wgan_gp_step_decays_lr_and_feeds_g_twice_the_batch():
    from helpers import repeating_context

    model = tiny_16px("wgan-gp", arch="resnet", n_critic=2, lr_decay_steps=100, g_batch_multiple=2)
    sizes = []
    model.generator.register_forward_hook(lambda m, args, out: sizes.append(len(out)))
    model.train_step(random_batch(8), 25, repeating_context(random_batch(8)))
    assert sizes == [8, 8, 16]  # n_critic updates on 8 fakes each, then G on 2 x 8
    for opt in (model.opt_g, model.opt_d):
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 * (1 - 25 / 100))
