"""RaGAN: Jolicoeur-Martineau, "The relativistic discriminator: a key element missing from
standard GAN", ICLR 2019. arXiv:1807.00734.

The discriminator estimates how much more realistic real data is than fake data. With
C(x) the critic's non-transformed output (a logit), sigma the sigmoid, x_r real and x_f
= G(z) fake samples, the variants (``variant``) are:

* ``"rsgan"`` -- relativistic standard GAN (Section 3.1; pairs (x_r, x_f) of the batch)::

      L_D = -E[log sigma(C(x_r) - C(x_f))]
      L_G = -E[log sigma(C(x_f) - C(x_r))]

* ``"rasgan"`` -- relativistic average standard GAN (Section 3.3, Eq. in Algorithm 2),
  with ``D~(x_r) = sigma(C(x_r) - E[C(x_f)])`` and ``D~(x_f) = sigma(C(x_f) - E[C(x_r)])``::

      L_D = -E[log D~(x_r)] - E[log(1 - D~(x_f))]
      L_G = -E[log D~(x_f)] - E[log(1 - D~(x_r))]

* ``"ralsgan"`` -- relativistic average LSGAN (Section 4)::

      L_D = E[(C(x_r) - E[C(x_f)] - 1)^2] + E[(C(x_f) - E[C(x_r)] + 1)^2]
      L_G = E[(C(x_f) - E[C(x_r)] - 1)^2] + E[(C(x_r) - E[C(x_f)] + 1)^2]

The expectations E[C(.)] are batch means. These are the paper's formulas (the reference
code halves the two-term losses, which changes nothing under Adam but the scale of the
logged numbers). Unlike a standard GAN, G's loss depends on real data too: the G update
evaluates C on a fresh real batch, as the reference code does (it draws a new batch for
G's step).

Networks (``arch``), as the reference code's ``--arch``:

* ``"standard_cnn"`` -- the CIFAR-10 experiments (Section 4, Table 1; the authors'
  ``stable.sh``: ``--arch 1 --spectral True --image_size 32``): the 32 x 32 "standard
  CNN" of the SNGAN paper, reused from :mod:`ganbench.models.sngan` (G: dense to 4 x 4 x
  512, transposed convolutions to 256, 128, 64 channels with BatchNorm and ReLU, 3 x 3
  convolution, tanh; D: [3 x 3, 4 x 4 stride 2] convolution pairs of 64, 128, 256
  channels and a 3 x 3 convolution to 512, LeakyReLU(0.1), spectral normalisation on
  every layer, a dense output). ``g_channels = d_channels = 64`` are the paper's widths.
  The ``cifar10`` default.
* ``"dcgan"`` -- the CAT experiments (Section 4, 64 x 64 and 128 x 128; the authors'
  ``unstable.sh``: ``--arch 0 --G_h_size 64 --D_h_size 64``): the DCGAN generator and
  discriminator of :mod:`ganbench.models.dcgan` (``g_channels`` = ``G_h_size``, the
  widest-resolution feature maps, doubling towards 4 x 4), N(0, 0.02) init. The default
  of every other dataset (CelebA at 64 px stands in for CAT; MNIST-like data at 32 px).

Training, as in the paper's standard setting (Table 1, first column; ``stable.sh`` and
``unstable.sh``): z 128-d N(0, I); Adam lr 2e-4, betas (0.5, 0.999); n_D = 1 D update per
G update; batch 32 (every relativistic run in both scripts; the author in RelativisticGAN issue #1: "I
only used 32"). No EMA of G. The ``ganbench train`` recipe declares the batch size.

Reference code followed: https://github.com/AlexiaJM/RelativisticGAN (``code/GAN_losses_iter.py``,
``code/stable.sh``, ``code/unstable.sh``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel
from ganbench.models import dcgan, sngan
from ganbench.models.base import (Batch, GANModel, IntRange, LogUniform, ModelConfig, TrainContext, TrainingRecipe,
                                  Uniform, frozen, register_model)
from ganbench.models.losses import init_normal_
from ganbench.models.wgan import check_dcgan_shape

VARIANTS = ("rsgan", "rasgan", "ralsgan")
ARCHS = ("dcgan", "standard_cnn")


@dataclass(frozen=True)
class RaGANConfig(ModelConfig):
    variant: str = "rasgan"  # "rsgan", "rasgan" (relativistic average) or "ralsgan"
    arch: str = "dcgan"  # "dcgan" (the paper's CAT networks) or "standard_cnn" (its CIFAR-10 networks)
    z_dim: int = 128  # length of the noise vector z
    z_dist: str = "normal"  # "normal" N(0, I) or "uniform" U(-1, 1)
    g_channels: int = 64  # G's widest-resolution feature maps, doubling towards the 4 x 4 map
    d_channels: int = 64  # D's first-layer feature maps, doubling per layer (per conv pair in the standard CNN)
    n_dis: int = 1  # discriminator updates per generator update
    lr_g: float = 2e-4  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # std of the N(0, std) weight init

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise GanbenchError(f"ragan: variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.arch not in ARCHS:
            raise GanbenchError(f"ragan: arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.arch == "standard_cnn":
            standard_cnn_config(self)  # validates
        else:
            check_dcgan_shape(self, "ragan")
        if self.n_dis < 1:
            raise GanbenchError("ragan: n_dis must be >= 1")


def standard_cnn_config(c: RaGANConfig) -> sngan.SNGANConfig:
    """The SNGAN standard CNN's config with RaGAN's sizes (its checks reported as ragan's)."""
    try:
        return sngan.SNGANConfig(image_size=c.image_size, channels=c.channels, z_dim=c.z_dim, z_dist=c.z_dist,
                                 g_channels=c.g_channels, d_channels=c.d_channels, init_std=c.init_std)
    except GanbenchError as exc:
        raise GanbenchError(str(exc).replace("sngan:", "ragan (standard_cnn):", 1)) from None


def networks(c: RaGANConfig) -> tuple[GenerativeModel, nn.Module]:
    """(G, C) of ``c.arch``, initialised: weights N(0, init_std), BatchNorm scales
    N(1, init_std), as the reference code's ``weights_init``."""
    if c.arch == "standard_cnn":
        generator, critic = sngan.Generator(standard_cnn_config(c)), sngan.Discriminator(standard_cnn_config(c))
        return init_normal_(generator, c.init_std), critic  # sngan's D initialises itself before its spectral norm
    return init_normal_(dcgan.Generator(c), c.init_std), init_normal_(dcgan.Discriminator(c), c.init_std)


def relativistic_losses(c_real: torch.Tensor, c_fake: torch.Tensor, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_D, L_G) of ``variant`` from critic outputs C(x_r), C(x_f) (N,) -- the formulas of
    the module docstring. Use L_D with ``c_fake`` detached from G, L_G with D frozen."""
    if variant == "rsgan":
        diff = c_real - c_fake
        return F.softplus(-diff).mean(), F.softplus(diff).mean()  # -log sigma(d), -log sigma(-d)
    rel_real = c_real - c_fake.mean()  # C(x_r) - E[C(x_f)]
    rel_fake = c_fake - c_real.mean()  # C(x_f) - E[C(x_r)]
    if variant == "rasgan":
        # -log sigma(t) = softplus(-t), -log(1 - sigma(t)) = softplus(t)
        loss_d = F.softplus(-rel_real).mean() + F.softplus(rel_fake).mean()
        loss_g = F.softplus(-rel_fake).mean() + F.softplus(rel_real).mean()
        return loss_d, loss_g
    if variant == "ralsgan":
        loss_d = ((rel_real - 1) ** 2).mean() + ((rel_fake + 1) ** 2).mean()
        loss_g = ((rel_fake - 1) ** 2).mean() + ((rel_real + 1) ** 2).mean()
        return loss_d, loss_g
    raise GanbenchError(f"ragan: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")


class RaGAN(GANModel):
    def __init__(self, config: RaGANConfig):
        super().__init__(config)
        self.generator, self.discriminator = networks(config)  # C(x): logits, no sigmoid
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        n = len(batch.images)
        for real_batch in ctx.real_batches(batch, c.n_dis):  # a fresh batch per D update
            real = real_batch.images
            z, _ = ctx.latents(self.generator.latent, n)
            with ctx.autocast():
                with torch.no_grad():
                    fake = ctx.images(self.generator(z))
                c_real = self.discriminator(real).float()
                c_fake = self.discriminator(fake).float()
                loss_d, _ = relativistic_losses(c_real, c_fake, c.variant)
            ctx.backward_step(loss_d, self.opt_d)
        with frozen(self.discriminator):
            z, _ = ctx.latents(self.generator.latent, n)
            with ctx.autocast():
                c_fake = self.discriminator(ctx.images(self.generator(z))).float()
                with torch.no_grad():  # the reference code draws a fresh real batch for G's step too
                    c_real_g = self.discriminator(ctx.next_real_batch().images).float()
                _, loss_g = relativistic_losses(c_real_g, c_fake, c.variant)
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "c_real": c_real.detach().mean(), "c_fake": c_fake.detach().mean()}


_MNIST_LIKE = {"image_size": 32}
_CAT_64 = {"image_size": 64, "channels": 3}  # the paper's CAT 64 x 64 DCGAN (unstable.sh)
_CIFAR = {"image_size": 32, "channels": 3, "arch": "standard_cnn"}  # stable.sh: --arch 1 --spectral True
_SCRIPTS = "AlexiaJM/RelativisticGAN code/"


@register_model(
    "ragan", config=RaGANConfig,
    paper="The relativistic discriminator: a key element missing from standard GAN",
    authors="Jolicoeur-Martineau", arxiv="1807.00734", year=2018, task="unconditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": _CIFAR, "celeba": _CAT_64},
    description="relativistic (average) discriminator: RSGAN, RaSGAN, RaLSGAN; SNGAN's standard CNN on "
                "CIFAR-10, DCGAN networks elsewhere; Adam 2e-4 (0.5, 0.999), n_D = 1, batch 32",
    reference_code="https://github.com/AlexiaJM/RelativisticGAN (code/GAN_losses_iter.py, arch=1 and arch=0)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space)
    search_space={"lr_g": LogUniform(1e-5, 1e-2), "lr_d": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0),
                  "n_dis": IntRange(1, 5)},
    recipes={"default": TrainingRecipe(batch_size=32, source=_SCRIPTS + "unstable.sh, CAT runs: --batch_size 32"),
             "cifar10": TrainingRecipe(batch_size=32, source=_SCRIPTS + "stable.sh, CIFAR-10 runs: --batch_size 32")},
    departures=[
        ("standard CNN: G's dense layer is followed by BatchNorm and ReLU and initialised N(0, 0.02); the "
         "reference code feeds the dense output straight to the first transposed convolution and keeps "
         "PyTorch's default init for it",
         "the standard CNN is reused from models/sngan.py (chainer-gan-lib's version), one implementation"),
        ("losses are the paper's formulas; the reference code halves the two-term losses",
         "Adam is invariant to the scale of the loss; only the logged numbers differ"),
        ("no gradient-penalty variants (RSGAN-GP, RaSGAN-GP of Tables 2-3), no PacGAN-2 D of the 256 x 256 "
         "CAT runs, and no unstable setups of Table 2 without spectral norm",
         "not implemented: ganbench's datasets are at most 64 px, and its standard CNN always has "
         "spectral norm in D"),
    ],
    # tests: narrow nets (D narrower than G), a faster learning rate. Since G's step draws its own real
    # batch (as the authors' code), 200 steps left a margin of 0.12 (lenet-FID 548 vs 625); 350 steps:
    # 0.29 / 0.30 / 0.42 over seeds 0-2
    tiny={"g_channels": 16, "d_channels": 4, "z_dim": 32, "lr_g": 1e-3, "lr_d": 1e-3}, test_steps=350)
def build(config: RaGANConfig) -> RaGAN:
    return RaGAN(config)
