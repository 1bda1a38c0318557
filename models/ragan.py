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
re-evaluates C on the step's real batch.

Architecture and training (the paper's DCGAN setup, reference code ``arch=0``): the
DCGAN generator and discriminator of :mod:`ganbench.models.dcgan` with 128 base
feature maps (``G_h_size = D_h_size = 128``), z 128-d N(0, I), N(0, 0.02) init; Adam
lr 2e-4, betas (0.5, 0.999), n_D = 1 (the paper's standard setting), batch 32 in the paper.

Reference code followed: https://github.com/AlexiaJM/RelativisticGAN (``code/GAN_losses_iter.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganbench.errors import GanbenchError
from ganbench.models.base import Batch, GANModel, ModelConfig, TrainContext, frozen, register_model
from ganbench.models.dcgan import Discriminator, Generator
from ganbench.models.losses import init_normal_
from ganbench.models.wgan import check_dcgan_shape

VARIANTS = ("rsgan", "rasgan", "ralsgan")


@dataclass(frozen=True)
class RaGANConfig(ModelConfig):
    variant: str = "rasgan"  # "rsgan", "rasgan" (relativistic average) or "ralsgan"
    z_dim: int = 128  # length of the noise vector z
    z_dist: str = "normal"  # "normal" N(0, I) or "uniform" U(-1, 1)
    g_channels: int = 128  # G's widest-resolution feature maps, doubling towards 4 x 4
    d_channels: int = 128  # D's first-layer feature maps, doubling per layer
    n_dis: int = 1  # discriminator updates per generator update
    lr_g: float = 2e-4  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # std of the N(0, std) weight init

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise GanbenchError(f"ragan: variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        check_dcgan_shape(self, "ragan")
        if self.n_dis < 1:
            raise GanbenchError("ragan: n_dis must be >= 1")


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
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)  # C(x): logits, no sigmoid
        init_normal_(self.generator, config.init_std)
        init_normal_(self.discriminator, config.init_std)
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
_PAPER_64 = {"image_size": 64, "channels": 3}  # the paper's CAT 64 x 64 DCGAN


@register_model(
    "ragan", config=RaGANConfig,
    paper="The relativistic discriminator: a key element missing from standard GAN",
    authors="Jolicoeur-Martineau", arxiv="1807.00734", year=2018, task="unconditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": _PAPER_64, "celeba": _PAPER_64},
    description="relativistic (average) discriminator: RSGAN, RaSGAN, RaLSGAN on DCGAN networks",
    reference_code="https://github.com/AlexiaJM/RelativisticGAN (code/GAN_losses_iter.py, arch=0)",
    # tests: narrow nets (D narrower than G), a faster learning rate
    tiny={"g_channels": 16, "d_channels": 4, "z_dim": 32, "lr_g": 1e-3, "lr_d": 1e-3}, test_steps=200)
def build(config: RaGANConfig) -> RaGAN:
    return RaGAN(config)
