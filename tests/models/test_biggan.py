"""What makes BigGAN itself: the orthogonal regulariser, the shared embedding with skip-z and
truncated sampling."""
from __future__ import annotations

import math

import pytest
import torch

from ganbench.models import Batch

from helpers import latents, repeating_context, tiny_mnist


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_orthogonal_regularization_on_hand_made_matrices():
    from ganbench.models.biggan import orthogonal_regularization

    w = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # W W^T = [[1, 1], [1, 2]]: off-diagonal 1, 1
    assert orthogonal_regularization(w).item() == pytest.approx(2.0)
    w = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 1.0]])  # overlaps 2, 1, 3
    assert orthogonal_regularization(w).item() == pytest.approx(2 * (4 + 1 + 9))
    assert orthogonal_regularization(torch.diag(torch.tensor([2.0, 3.0, 0.5]))).item() == 0.0  # norms are free
    kernel = torch.zeros(2, 1, 2, 2)
    kernel[0, 0, 0, 0], kernel[1, 0, 0, 0], kernel[1, 0, 1, 1] = 1.0, 2.0, 1.0  # filters overlap by 2
    assert orthogonal_regularization(kernel).item() == pytest.approx(8.0)
    # the G step adds beta * R to the loss, over G's weights (not the shared embedding)
    model = tiny_mnist("biggan")
    weights = model.generator.regularized_weights()
    assert all(p.dim() >= 2 for p in weights)
    assert not any(p is model.generator.shared.weight for p in weights)
    batch = Batch(torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 10)
    out = model.train_step(batch, 0, repeating_context(batch))
    assert out["ortho"].item() > 0


def test_biggan_shared_embedding_and_skip_z():
    model = tiny_mnist("biggan")  # 32 px: 3 up-blocks, z split in 4 chunks of 24 / 4 = 6
    G = model.generator.eval()
    z, y = latents(5, 24), torch.tensor([0, 1, 2, 3, 4])
    z0, conds = G.conditions(z, y)
    assert z0.shape == (5, 6) and [c.shape for c in conds] == [(5, 16 + 6)] * 3
    e = G.shared(y)
    for i, c in enumerate(conds):
        assert torch.equal(c[:, :16], e)  # one shared class embedding for every block
        assert torch.equal(c[:, 16:], z[:, 6 * (i + 1):6 * (i + 2)])  # each block its own chunk of z
    assert torch.equal(torch.cat([z0] + [c[:, 16:] for c in conds], 1), z)
    for block, c in zip(G.blocks, conds):
        assert block.bn1.gain.in_features == c.shape[1]
    # the last z chunk reaches only the last block: changing it changes the image
    z2 = z.clone()
    z2[:, 18:] = latents(5, 6, 9)
    with torch.no_grad():
        assert (G.generate(z, y) - G.generate(z2, y)).abs().mean() > 1e-4
        assert (G.generate(z, y) - G.generate(z, (y + 1) % 10)).abs().mean() > 1e-4
    assert sum(isinstance(m, torch.nn.Embedding) for m in G.modules()) == 1


def test_biggan_truncation_trick():
    from ganbench.models.biggan import truncated_normal

    z = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = 0.5
    zt = truncated_normal(z, t)
    assert zt.abs().max() <= t
    order = torch.argsort(z)
    assert (zt[order].diff() >= 0).all()  # monotone: the same latent ordering
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    var = 1 - 2 * t * phi / (math.erf(t / math.sqrt(2)))  # variance of N(0, 1) truncated to [-t, t]
    assert zt.mean().item() == pytest.approx(0.0, abs=3e-3)
    assert zt.var().item() == pytest.approx(var, rel=0.01)
    torch.testing.assert_close(truncated_normal(z[:100], 40.0), z[:100])  # a wide threshold changes nothing
    model = tiny_mnist("biggan", truncation=0.5)
    G = model.generator.eval()
    zz, y = latents(4, 24) * 3, torch.arange(4)
    with torch.no_grad():
        torch.testing.assert_close(G.generate(zz, y), G.synthesize(truncated_normal(zz, 0.5), y))
        assert not torch.allclose(G.generate(zz, y), G.synthesize(zz, y))


def test_biggan_recipes_average_g_from_the_authors_ema_start():
    """The paper: batch 2048 and an EMA of G with decay 0.9999; BigGAN-PyTorch
    launch_BigGAN_bs256x8.sh (--batch_size 256, 8 accumulations, --ema_start 20000) and
    scripts/launch_cifar_ema.sh (--batch_size 50 --ema --ema_start 1000; --ema_decay 0.9999)."""
    from ganbench.models.base import model_info

    info = model_info("biggan")
    imagenet, cifar = info.recipe_for("imagenet"), info.recipe_for("cifar10")
    assert (imagenet.batch_size, imagenet.ema, imagenet.ema_start) == (256 * 8, 0.9999, 20_000)
    assert (cifar.batch_size, cifar.ema, cifar.ema_start) == (50, 0.9999, 1000)
    assert info.recipe_for("mnist") == cifar  # small images take the small-image recipe, not batch 2048
    assert info.defaults_for("cifar10")["n_dis"] == 4  # launch_cifar_ema.sh: --num_D_steps 4
