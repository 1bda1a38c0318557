"""LSGAN: Mao, Li, Xie, Lau, Wang & Smolley, "Least Squares Generative Adversarial
Networks", ICCV 2017. arXiv:1611.04076.

Least-squares losses with the a-b-c coding of the paper (Eq. 2)::

    min_D  1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]
    min_G  1/2 E[(D(G(z)) - c)^2]

``a`` is the label of fake data, ``b`` of real data, ``c`` the value G wants D to believe
for fakes. The default is the 0-1 binary coding ``a = 0, b = c = 1`` (Eq. 9), which the
paper uses for its experiments and its reference code implements; ``a = -1, b = 1,
c = 0`` (Eq. 8, Pearson chi^2) is ``--set a=-1 --set b=1 --set c=0``. D's output is
linear (no sigmoid).

Architecture (Figure 3 / Section 4.1, the reference code's ``vgg.py`` for 112 x 112 LSUN):

* G: z (1024-d, U(-1, 1)) -> linear to a ``s/16`` map of 256 channels, BatchNorm, ReLU;
  3 x 3 transposed convolutions: [stride 2, 256; stride 1, 256] twice, stride 2 128,
  stride 2 64 (each BatchNorm + ReLU), then stride 1 to the image, tanh.
* D: 5 x 5 stride-2 convolutions of 64, 128, 256, 512 channels, LeakyReLU(0.2), BatchNorm
  in all but the first; a linear layer to one output.
* Adam, learning rate 0.001, beta1 = 0.5, batch 64 (the recipe; all ``train_lsun.py``);
  G's update reuses the D step's noise, as there.

Scaling to other resolutions keeps the last ``k`` stride-2 stages of G (k = number of
doublings from the 4 x 4 / 7 x 7 projection: 4 at 64 px, 3 at 32 px, 2 at 28 px; the
widest stages, with their stride-1 partners, are the ones dropped) and D's four
convolutions. Widths scale with ``g_channels`` / ``d_channels`` (64 = the paper's).

Reference code followed: https://github.com/xudonmao/LSGAN (``vgg.py``, ``train_lsun.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.losses import init_normal_
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)


@dataclass(frozen=True)
class LSGANConfig(ModelConfig):
    z_dim: int = 1024  # length of the noise vector z
    z_dist: str = "uniform"  # "uniform" U(-1, 1) (the reference code's) or "normal"
    g_channels: int = 64  # G's last hidden width; the stages are 4x, 4x (+ stride-1 4x), 2x, 1x this
    d_channels: int = 64  # D's first-layer width; doubling per layer (64 128 256 512)
    a: float = 0.0  # target of D for fake data
    b: float = 1.0  # target of D for real data
    c: float = 1.0  # target G wants D to output for fake data
    lr: float = 1e-3  # Adam learning rate, G and D (reference code)
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # std of the N(0, std) weight init (the DCGAN-TensorFlow ops)

    def __post_init__(self):
        projection_size(self.image_size)
        if self.channels not in (1, 3):
            raise GanbenchError(f"lsgan: channels must be 1 or 3, got {self.channels}")
        if self.a == self.b:
            raise GanbenchError("lsgan: the fake and real labels a and b must differ")


def projection_size(image_size: int) -> int:
    """4 or 7, with image_size = base * 2**k, k in 2..4."""
    for base in (4, 7):
        k = math.log2(image_size / base)
        if k == int(k) and 2 <= k <= 4:
            return base
    raise GanbenchError(f"lsgan: image_size must be 16, 32, 64, 28, 56 or 112, got {image_size}")


# (width multiple of g_channels, has a stride-1 partner) of the paper's four stride-2 stages
_G_STAGES = ((4, True), (4, True), (2, False), (1, False))


def _up(cin: int, cout: int, stride: int) -> list[nn.Module]:
    conv = nn.ConvTranspose2d(cin, cout, 3, stride, 1, output_padding=stride - 1)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU(True)]


class Generator(GenerativeModel):
    def __init__(self, c: LSGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist=c.z_dist, channels=c.channels, image_size=c.image_size)
        self.base = projection_size(c.image_size)
        n_up = int(math.log2(c.image_size // self.base))
        stages = _G_STAGES[len(_G_STAGES) - n_up:]
        self.width0 = c.g_channels * 4
        self.project = nn.Sequential(nn.Linear(c.z_dim, self.width0 * self.base ** 2),
                                     nn.BatchNorm1d(self.width0 * self.base ** 2), nn.ReLU(True))
        layers: list[nn.Module] = []
        cin = self.width0
        for mult, partner in stages:
            cout = c.g_channels * mult
            layers += _up(cin, cout, 2)
            if partner:
                layers += _up(cout, cout, 1)
            cin = cout
        layers += [nn.ConvTranspose2d(cin, c.channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def generate(self, z, labels=None):
        return self.net(self.project(z).view(len(z), self.width0, self.base, self.base))


class Discriminator(nn.Module):
    def __init__(self, c: LSGANConfig):
        super().__init__()
        widths = [c.d_channels * 2 ** i for i in range(4)]
        layers: list[nn.Module] = []
        cin, size = c.channels, c.image_size
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 5, 2, 2))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, True))
            cin, size = cout, (size + 1) // 2
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(cin * size * size, 1)

    def forward(self, x):
        return self.out(self.net(x).flatten(1)).flatten()  # linear output (N,)


def lsgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]."""
    return 0.5 * ((d_real - b) ** 2).mean() + 0.5 * ((d_fake - a) ** 2).mean()


def lsgan_g_loss(d_fake: torch.Tensor, c: float) -> torch.Tensor:
    """1/2 E[(D(G(z)) - c)^2]."""
    return 0.5 * ((d_fake - c) ** 2).mean()


class LSGAN(GANModel):
    def __init__(self, config: LSGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        init_normal_(self.generator, config.init_std, batchnorm=False)
        init_normal_(self.discriminator, config.init_std, batchnorm=False)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        z, _ = ctx.latents(self.generator.latent, len(batch.images))
        with ctx.autocast():
            fake = ctx.images(self.generator(z))
            d_real = self.discriminator(batch.images).float()
            d_fake = self.discriminator(fake.detach()).float()
            loss_d = lsgan_d_loss(d_real, d_fake, c.a, c.b)
        ctx.backward_step(loss_d, self.opt_d)
        # G on the same z, as the reference code (one D and one G update per batch)
        with frozen(self.discriminator):
            with ctx.autocast():
                loss_g = lsgan_g_loss(self.discriminator(fake).float(), c.c)
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}


_MNIST_LIKE = {"image_size": 28}
_PAPER_64 = {"image_size": 64, "channels": 3}


@register_model(
    "lsgan", config=LSGANConfig, paper="Least Squares Generative Adversarial Networks",
    authors="Mao, Li, Xie, Lau, Wang, Smolley", arxiv="1611.04076", year=2017, task="unconditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": _PAPER_64, "celeba": _PAPER_64},
    description="least-squares losses (0-1-1 coding), 3x3 transposed-conv G, 5x5 conv D, Adam 1e-3",
    reference_code="https://github.com/xudonmao/LSGAN (vgg.py, train_lsun.py)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=64, source="xudonmao/LSGAN train_lsun.py: batch_size 64")},
    departures=[
        ("the 112 x 112 LSUN networks with their widest stride-2 stages dropped: MNIST-like data at 28 px, "
         "CIFAR-10 and CelebA at 64 px",
         "fewer doublings for smaller images; the kept stages are the paper's"),
    ],
    tiny={"g_channels": 8, "d_channels": 8, "z_dim": 128}, test_steps=200)
def build(config: LSGANConfig) -> LSGAN:
    return LSGAN(config)
