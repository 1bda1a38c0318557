"""What makes LAPGAN itself: the coarse-to-fine Laplacian pyramid."""
from __future__ import annotations

import pytest
import torch

from ganbench.errors import GanbenchError
from ganbench.models import TrainContext, create_model

from helpers import random_batch


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_lapgan_pyramid_sizes_and_coarse_to_fine_dependence():
    model = create_model("lapgan", image_size=32, g_channels=4, d_channels=4, g0_hidden=16, d0_hidden=16)
    G = model.generator.eval()
    assert G.sizes == [8, 16, 32]
    assert G.latent.z_dim == 100 + 16 * 16 + 32 * 32
    z = torch.rand(3, G.latent.z_dim, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        levels = G.generate_pyramid(z)
        assert [x.shape[-1] for x in levels] == [8, 16, 32]
        torch.testing.assert_close(G(z), levels[-1])
        assert levels[-1].min() >= -1 and levels[-1].max() <= 1
        # new noise for the finest level only changes the finest image
        z2 = z.clone()
        z2[:, 100 + 256:] = torch.rand(3, 1024) * 2 - 1
        levels2 = G.generate_pyramid(z2)
        torch.testing.assert_close(levels2[0], levels[0])
        torch.testing.assert_close(levels2[1], levels[1])
        assert not torch.allclose(levels2[2], levels[2])
        # each finer level adds a residual to the up-sampled coarser image
        from ganbench.models.lapgan import up

        low = up(levels[0])
        residual = G.levels[0](G.split_latent(z)[1], low)
        torch.testing.assert_close(levels[1], (low + residual).clamp(-1, 1))
    assert create_model("lapgan", image_size=28).generator.sizes == [7, 14, 28]
    assert create_model("lapgan", image_size=64, g_channels=4, d_channels=4).generator.sizes == [8, 16, 32, 64]
    with pytest.raises(GanbenchError, match="coarse_size"):
        create_model("lapgan", image_size=24)


def test_lapgan_levels_train_on_the_real_pyramid():
    """Each G_k is conditioned on the real low-pass image u(d(I_k)) during training."""
    from ganbench.models.lapgan import down, up

    model = create_model("lapgan", image_size=16, coarse_size=4, g_channels=4, d_channels=4,
                         g0_hidden=8, d0_hidden=8)
    batch = random_batch(size=16, labels=False)
    seen = []
    for level in model.generator.levels:
        level.register_forward_hook(lambda m, inputs, out: seen.append(inputs[1].clone()))
    model.train_step(batch, 0, TrainContext("cpu", seed=0))
    x16 = batch.images
    x8 = down(x16)
    torch.testing.assert_close(seen[0], up(down(x8)))  # level 1 (8 px) conditioned on u(I_0)
    torch.testing.assert_close(seen[1], up(x8))  # level 2 (16 px) conditioned on u(I_1)
