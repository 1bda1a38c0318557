"""What makes RaGAN itself: the relativistic losses (RSGAN, RaSGAN, RaLSGAN), checked against
the paper's formulas, and the paper's networks and batch size per dataset."""
from __future__ import annotations

import math

import pytest
import torch

from ganbench.errors import GanbenchError

from helpers import random_batch, repeating_context, tiny_16px


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def _sig(t: float) -> float:
    return 1 / (1 + math.exp(-t))


def _mean(xs) -> float:
    return sum(xs) / len(xs)


C_REAL, C_FAKE = [2.0, 0.5, -1.0], [1.0, -0.5, 0.25]


def _expected(variant: str) -> tuple[float, float]:
    """The paper's formulas, computed by hand in Python floats."""
    log = math.log
    if variant == "rsgan":
        ld = _mean([-log(_sig(r - f)) for r, f in zip(C_REAL, C_FAKE)])
        lg = _mean([-log(_sig(f - r)) for r, f in zip(C_REAL, C_FAKE)])
        return ld, lg
    mr, mf = _mean(C_REAL), _mean(C_FAKE)
    if variant == "rasgan":
        ld = _mean([-log(_sig(r - mf)) for r in C_REAL]) + _mean([-log(1 - _sig(f - mr)) for f in C_FAKE])
        lg = _mean([-log(_sig(f - mr)) for f in C_FAKE]) + _mean([-log(1 - _sig(r - mf)) for r in C_REAL])
        return ld, lg
    ld = _mean([(r - mf - 1) ** 2 for r in C_REAL]) + _mean([(f - mr + 1) ** 2 for f in C_FAKE])
    lg = _mean([(f - mr - 1) ** 2 for f in C_FAKE]) + _mean([(r - mf + 1) ** 2 for r in C_REAL])
    return ld, lg


@pytest.mark.parametrize("variant", ["rsgan", "rasgan", "ralsgan"])
def test_ragan_losses_on_hand_made_logits(variant):
    from ganbench.models.ragan import relativistic_losses

    loss_d, loss_g = relativistic_losses(torch.tensor(C_REAL, dtype=torch.float64),
                                         torch.tensor(C_FAKE, dtype=torch.float64), variant)
    exp_d, exp_g = _expected(variant)
    assert loss_d.item() == pytest.approx(exp_d, rel=1e-12)
    assert loss_g.item() == pytest.approx(exp_g, rel=1e-12)
    model = tiny_16px("ragan", variant=variant)
    losses = model.train_step(random_batch(), 0, repeating_context(random_batch()))
    assert all(math.isfinite(float(v)) for v in losses.values())


def test_ragan_rejects_unknown_variant():
    with pytest.raises(GanbenchError, match="rsgan, rasgan, ralsgan"):
        tiny_16px("ragan", variant="wgan")


def test_ragan_cifar10_default_is_the_32px_standard_cnn_at_batch_32():
    """The paper's CIFAR-10 runs (AlexiaJM/RelativisticGAN code/stable.sh: --arch 1 --spectral True
    --image_size 32 --batch_size 32 --lr_D .0002 --lr_G .0002 --beta1 .50 --beta2 .999 --Diters 1)
    use the SNGAN paper's standard CNN; the 64 px DCGAN is the CAT setup and stays selectable."""
    from torch.nn.utils.parametrize import is_parametrized

    from ganbench.models import create_model
    from ganbench.models import dcgan, sngan
    from ganbench.models.base import model_info

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("ragan", dataset="cifar10")
    c = model.config
    assert (c.image_size, c.channels, c.arch) == (32, 3, "standard_cnn")
    assert (c.lr_g, c.lr_d, c.beta1, c.beta2, c.n_dis, c.z_dim) == (2e-4, 2e-4, 0.5, 0.999, 1, 128)
    G, D = model.generator, model.discriminator
    assert isinstance(G, sngan.Generator) and isinstance(D, sngan.Discriminator)
    # GAN_losses_iter.py arch=1: Linear(z_size, 512 * 4 * 4) in G, Conv2d(256, 512, 3) then Linear(512 * 4 * 4, 1) in D
    assert G.dense[0].out_features == 512 * 4 * 4
    assert D.out.in_features == 512 * 4 * 4
    layers = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 8 and all(is_parametrized(m, "weight") for m in layers)  # 7 convs + dense, all SN
    with torch.no_grad():
        G.eval()
        x = G(torch.randn(2, 128))
    assert x.shape == (2, 3, 32, 32) and D(x).shape == (2,)
    assert model_info("ragan").recipe_for("cifar10").batch_size == 32  # stable.sh: --batch_size 32
    assert model_info("ragan").recipe_for("cifar10").ema is None  # no EMA of G in the paper or its code
    assert model_info("ragan").recipe_for("celeba").batch_size == 32  # unstable.sh CAT runs: --batch_size 32
    cat = create_model("ragan", dataset="celeba", image_size=32)  # the DCGAN is still there, on every other dataset
    assert cat.config.arch == "dcgan" and isinstance(cat.generator, dcgan.Generator)
    assert isinstance(create_model("ragan", dataset="cifar10", arch="dcgan").generator, dcgan.Generator)


def test_ragan_standard_cnn_trains_and_rejects_unknown_arch():
    model = tiny_16px("ragan", arch="standard_cnn")
    losses = model.train_step(random_batch(), 0, repeating_context(random_batch()))
    assert all(math.isfinite(float(v)) for v in losses.values())
    with pytest.raises(GanbenchError, match="dcgan, standard_cnn"):
        tiny_16px("ragan", arch="resnet")
    with pytest.raises(GanbenchError, match="ragan \\(standard_cnn\\)"):
        tiny_16px("ragan", arch="standard_cnn", image_size=20)
