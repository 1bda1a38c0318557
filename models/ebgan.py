"""EBGAN: Zhao, Mathieu & LeCun, "Energy-based Generative Adversarial Network", ICLR 2017.
arXiv:1609.03126.

The discriminator is an energy function: an auto-encoder whose reconstruction error is
the energy (the paper's D(x) = ||Dec(Enc(x)) - x||; here the per-pixel mean of the
squared error, per image). With a margin m (Section 2.1, equations 1-2)::

    L_D = D(x) + [m - D(G(z))]^+          L_G = D(G(z)) + lambda_PT * f_PT(S)

The *pulling-away term* (Section 2.4, "EBGAN-PT") keeps the generator from collapsing
onto a few modes: over a batch of encoder outputs S = Enc(G(z)), s_i flattened,

    f_PT(S) = 1 / (N (N - 1)) * sum_{i != j} (s_i . s_j / (|s_i| |s_j|))^2,

applied to the generator loss with weight 0.1 (the paper's).

Architecture (Appendix, the 64 x 64 LSUN/CelebA models; scaled down here for MNIST-like
data by dropping stride-2 layers):

* G: the DCGAN generator (fractionally-strided 4 x 4 convolutions, BatchNorm, ReLU,
  tanh output); :class:`ganbench.models.dcgan.Generator` is reused.
* D: encoder (64)4c2s - (128)4c2s - (256)4c2s (LeakyReLU 0.2, BatchNorm on all but the
  first layer) down to 8 x 8 (7 x 7 at 28 px); decoder (128)4c2s - (64)4c2s - (C)4c2s
  back to the image (BatchNorm, ReLU; linear output). At 28 and 32 px the encoder has
  two layers, at 64 px three.
* Adam with learning rate 0.001 and beta1 = 0.5 (the paper's best EBGAN-PT settings
  use Adam at 1e-3), one D step per G step. Batch 64 (the recipe; not verified against
  the paper, see ``departures``).

The margin is on ganbench's energy scale: the per-pixel mean squared error of images in
[-1, 1] (at most 4; about 0.8 for reconstructing an MNIST digit by a blank image). The
paper tunes m per dataset on its own, differently normalised energy, so those numbers do
not transfer; ``margin = 1.0`` puts the hinge just above a useless reconstruction.

The paper's MNIST grid search uses fully connected networks; the convolutional models
are used here at every resolution (one architecture family across datasets).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)
from ganbench.models.dcgan import DCGANConfig, Generator as DCGANGenerator
from ganbench.models.losses import init_normal_


@dataclass(frozen=True)
class EBGANConfig(ModelConfig):
    image_size: int = 28  # output height = width: 28, or 8 * 2**k (16, 32, 64, 128)
    z_dim: int = 100  # length of the noise vector z
    z_dist: str = "normal"  # "normal" N(0, I) or "uniform" U(-1, 1)
    g_channels: int = 64  # G's widest-resolution feature maps (DCGAN ngf)
    d_channels: int = 64  # D encoder's first-layer feature maps; doubles per layer
    margin: float = 1.0  # m of the hinge [m - D(G(z))]^+, on the per-pixel MSE scale
    pt_weight: float = 0.1  # lambda_PT, weight of the pulling-away term in G's loss; 0 = plain EBGAN
    lr_g: float = 1e-3  # Adam learning rate of G
    lr_d: float = 1e-3  # Adam learning rate of D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # std of the N(0, std) weight init

    def __post_init__(self):
        encoder_layers(self.image_size)  # validates
        if self.channels not in (1, 3):
            raise GanbenchError(f"ebgan: channels must be 1 or 3, got {self.channels}")
        if self.margin <= 0 or self.pt_weight < 0:
            raise GanbenchError("ebgan: margin must be > 0 and pt_weight >= 0")


def encoder_layers(image_size: int) -> tuple[int, int]:
    """(base, n): the encoder halves ``image_size`` n >= 1 times down to base 8 (7 at 28 px)."""
    for base in (8, 7):
        k = math.log2(image_size / base) if image_size > base else 0
        if k >= 1 and k == int(k):
            return base, int(k)
    raise GanbenchError(f"ebgan: image_size must be 8 * 2**k (16, 32, 64, 128...) or 28, got {image_size}")


class AutoEncoderD(nn.Module):
    """The energy function: ``forward(x)`` -> (energy (N,), code (N, ...), reconstruction)."""

    def __init__(self, c: EBGANConfig):
        super().__init__()
        _, n = encoder_layers(c.image_size)
        widths = [c.d_channels * 2 ** i for i in range(n)]  # 64 128 (256)
        enc: list[nn.Module] = [nn.Conv2d(c.channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for cin, cout in zip(widths, widths[1:]):
            enc += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
        dec: list[nn.Module] = []
        rev = widths[::-1]
        for cin, cout in zip(rev, rev[1:]):
            dec += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        dec += [nn.ConvTranspose2d(widths[0], c.channels, 4, 2, 1)]
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

    def forward(self, x):
        code = self.encoder(x)
        recon = self.decoder(code)
        energy = (recon.float() - x.float()).pow(2).flatten(1).mean(1)
        return energy, code, recon


def pulling_away_term(code: torch.Tensor) -> torch.Tensor:
    """f_PT of a batch of codes (N, ...): mean squared cosine similarity over pairs i != j."""
    s = F.normalize(code.flatten(1).float(), dim=1)
    n = len(s)
    if n < 2:
        return s.new_zeros(())
    cos2 = (s @ s.T).pow(2)
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


class EBGAN(GANModel):
    def __init__(self, config: EBGANConfig):
        super().__init__(config)
        self.generator = DCGANGenerator(DCGANConfig(
            image_size=config.image_size, channels=config.channels, z_dim=config.z_dim,
            z_dist=config.z_dist, g_channels=config.g_channels))
        self.discriminator = AutoEncoderD(config)
        init_normal_(self.generator, config.init_std)
        init_normal_(self.discriminator, config.init_std)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        z, _ = ctx.latents(self.generator.latent, len(batch.images))
        with ctx.autocast():
            fake = ctx.images(self.generator(z))
            e_real, _, _ = self.discriminator(batch.images)
            e_fake, _, _ = self.discriminator(fake.detach())
            loss_d = e_real.mean() + F.relu(c.margin - e_fake).mean()
        ctx.backward_step(loss_d, self.opt_d)
        with frozen(self.discriminator):
            with ctx.autocast():
                e_gen, code, _ = self.discriminator(fake)
                pt = pulling_away_term(code)
                loss_g = e_gen.mean() + c.pt_weight * pt
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "energy_real": e_real.detach().mean(),
                "energy_fake": e_fake.detach().mean(), "pt": pt.detach()}


_MNIST = {"image_size": 28}
_PAPER_64 = {"image_size": 64, "channels": 3}


@register_model(
    "ebgan", config=EBGANConfig, paper="Energy-based Generative Adversarial Network",
    authors="Zhao, Mathieu, LeCun", arxiv="1609.03126", year=2016, task="unconditional",
    defaults={"mnist": _MNIST, "fashion-mnist": _MNIST, "digits": _MNIST,
              "cifar10": _PAPER_64, "celeba": _PAPER_64},
    description="auto-encoder D (energy = reconstruction MSE), margin loss, pulling-away term 0.1",
    # Lucic et al. 2018's wide ranges; margin and pt_weight a decade either side of their defaults (the paper's
    # margins are on its own energy scale; lambda_PT = 0.1 comes without a range)
    search_space={"lr_g": LogUniform(1e-5, 1e-2), "lr_d": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0),
                  "margin": LogUniform(0.1, 10.0), "pt_weight": LogUniform(0.01, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=64, source="unverified: ganbench's default 64 (we found no "
                                                             "batch size in the paper)")},
    departures=[
        ("batch 64 is not taken from the paper", "we could not verify the paper's batch size"),
        ("the energy is the per-pixel mean squared reconstruction error; the paper's is the reconstruction "
         "norm ||Dec(Enc(x)) - x||",
         "a per-image scale that does not grow with resolution; the margin is set on it"),
        ("margin m = 1 on that scale", "the paper tunes m per dataset on its own energy scale, which does not "
                                       "transfer"),
        ("the convolutional 64 px models, with stride-2 layers dropped, at every resolution including MNIST",
         "the paper's MNIST grid search uses fully connected networks; one architecture family across datasets"),
    ],
    tiny={"g_channels": 16, "d_channels": 8, "z_dim": 32}, test_steps=200)
def build(config: EBGANConfig) -> EBGAN:
    return EBGAN(config)
