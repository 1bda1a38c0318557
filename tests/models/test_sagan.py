"""What makes SAGAN itself: self-attention in G and D, starting as the identity, and spectral
normalisation everywhere."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ganbench.models import TrainContext, create_model

from helpers import random_batch


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_self_attention_starts_as_identity_and_attention_rows_sum_to_one():
    from ganbench.models.sagan import SelfAttention

    torch.manual_seed(0)
    attn = SelfAttention(16, ratio=8)
    x = torch.randn(3, 16, 5, 6)
    y, beta = attn(x, return_attention=True)
    assert attn.gamma.item() == 0.0
    assert torch.equal(y, x)  # gamma = 0: the block passes x through
    assert beta.shape == (3, 30, 30)
    assert (beta >= 0).all()
    torch.testing.assert_close(beta.sum(-1), torch.ones(3, 30))  # softmax over attended positions i
    assert beta.sum(1).sub(1).abs().max() > 0.05  # ... not over the queries j (columns)
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    assert not torch.allclose(attn(x), x)


def test_sagan_has_attention_in_g_and_d_with_gamma_zero_and_spectral_norm_everywhere():
    from torch.nn.utils.parametrize import is_parametrized

    from ganbench.models.sagan import SelfAttention

    model = create_model("sagan", image_size=32, g_channels=16, d_channels=16, z_dim=8)
    for net in (model.generator, model.discriminator):
        blocks = [m for m in net.modules() if isinstance(m, SelfAttention)]
        assert len(blocks) == 1 and blocks[0].gamma.item() == 0.0
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert layers and all(is_parametrized(m, "weight") for m in layers)
    # attention sits at the intermediate 16 x 16 resolution in both networks
    seen = []
    hook = lambda m, inputs, out: seen.append(inputs[0].shape[-1])  # noqa: E731
    for net in (model.generator, model.discriminator):
        net.attention.register_forward_hook(hook)
    z, y = torch.randn(2, 8), torch.tensor([1, 2])
    model.discriminator(model.generator(z, y), y)
    assert seen == [16, 16]
    assert (model.config.lr_g, model.config.lr_d, model.config.beta1, model.config.beta2) == (1e-4, 4e-4, 0.0, 0.9)


def test_sagan_gamma_moves_during_training():
    model = create_model("sagan", image_size=16, g_channels=8, d_channels=8, z_dim=8)
    ctx = TrainContext("cpu", seed=0)
    for step in range(3):
        out = model.train_step(random_batch(labels=True), step, ctx)
    assert out["gamma_g"].item() != 0.0 and out["gamma_d"].item() != 0.0


def test_self_attention_matches_the_papers_equations_position_by_position():
    """SAGAN Section 3: f, g, h are 1 x 1 convolutions to C/8 channels, s_ij = f(x_i)^T g(x_j),
    beta_{j,i} = exp(s_ij) / sum_i exp(s_ij), o_j = W_v sum_i beta_{j,i} h(x_i), y = gamma o + x;
    computed here with explicit sums over positions."""
    import math

    from ganbench.models.sagan import SelfAttention

    torch.manual_seed(0)
    attn = SelfAttention(16, ratio=8).double().eval()  # eval: spectral norm without a power-iteration update
    assert [m.out_channels for m in (attn.f, attn.g, attn.h)] == [2, 2, 2] and attn.v.in_channels == 2
    assert attn.v.out_channels == 16 and attn.gamma.shape == ()
    with torch.no_grad():
        attn.gamma.fill_(0.7)
        x = torch.randn(1, 16, 3, 2, dtype=torch.float64)
        y = attn(x)
        W = {k: getattr(attn, k).weight[:, :, 0, 0] for k in "fghv"}  # the spectrally normalised matrices
    cols = x[0].flatten(1)  # (C, N): x_i = cols[:, i]
    n = cols.shape[1]
    for j in range(n):
        s = [float((W["f"] @ cols[:, i]) @ (W["g"] @ cols[:, j])) for i in range(n)]
        beta = [math.exp(v) / sum(math.exp(u) for u in s) for v in s]
        o_j = W["v"] @ sum(beta[i] * (W["h"] @ cols[:, i]) for i in range(n))
        torch.testing.assert_close(y[0].flatten(1)[:, j], 0.7 * o_j + cols[:, j])


def test_sagan_recipe_is_the_papers_batch_256_without_ema():
    from ganbench.models.base import model_info

    recipe = model_info("sagan").recipe_for("cifar10")
    # SAGAN Section 5 (ImageNet): batch 256; brain-research/self-attention-gan train_imagenet.py
    # batch_size 64 x num_towers 4; no moving average of G's weights in the paper or the code
    assert (recipe.batch_size, recipe.ema, recipe.ema_halflife_kimg) == (256, None, None)
