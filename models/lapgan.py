"""LAPGAN: Denton, Chintala, Szlam & Fergus, "Deep Generative Image Models using a
Laplacian Pyramid of Adversarial Networks", NeurIPS 2015. arXiv:1506.05751.

A Laplacian pyramid of GANs (Section 3). With d(.) a 2x down-sampling and u(.) a 2x
up-sampling, an image I_K at the finest level has the pyramid I_{k-1} = d(I_k) and the
residuals h_k = I_k - u(I_{k-1}). The model has one GAN per level:

* level 0 (coarsest, 8 x 8 for 32 px; 7 x 7 for 28 px): an ordinary GAN,
  I~_0 = G_0(z_0), with fully connected networks (the paper's CIFAR-10 coarse model):
  G_0: z_0 (100-d, U(-1, 1)) -> 1200 ReLU -> 1200 ReLU -> image (tanh);
  D_0: image -> 600 ReLU -> 600 ReLU -> 1 logit, dropout 0.5 on its hidden layers.
* level k > 0: a conditional GAN on the residual given the up-sampled coarser image
  l_k = u(I_{k-1}): h~_k = G_k(z_k, l_k), where the noise z_k enters as an extra image
  plane; G_k is a 3-layer ReLU convnet (``g_channels`` feature maps, linear output, no
  normalisation layers: the paper describes none). D_k judges h_k or h~_k with l_k
  added back before its first layer (i.e. the level-k image), 2 convolutional layers with
  ReLU, then a linear logit.

  Why no BatchNorm in G_k: G_k's output is an unbounded residual and D_k (ReLU
  convolutions, linear logit) is piecewise linear in it, so G can raise D's logit just by
  scaling its residual up. With BatchNorm before G_k's last convolution, that layer's
  weight gradient is a sum over every pixel of unit-variance activations; at 128 maps
  and 32 x 32 the paper's SGD (lr 0.02, momentum 0.5) then takes steps larger than the
  weights themselves, the residual explodes and D_2's loss reaches 1e24 (NaN) within 10
  steps. The paper's plain ReLU convnet trains stably with the same optimiser.

Training (Section 3.2): every level trains independently on the *real* pyramid: G_k is
conditioned on the real low-pass image l_k = u(d(I_k)), D_k compares real residuals
h_k with generated ones. One ``train_step`` updates every level once (standard GAN
loss, non-saturating for G; the level losses are summed, which is the same as separate
updates because the levels share no parameters). Optimiser: SGD, lr 0.02 divided by
(1 + 4e-5) after every update, momentum 0.5 rising by 0.0008 per epoch to 0.8
(``steps_per_epoch`` gives the epoch length in steps: 60k images at batch 128, the
recipe: the authors' eyescream scripts' ``--batchSize`` default); ``optimizer="adam"``
(lr 2e-4, beta1 0.5) is a documented, non-paper alternative.

Sampling (``.generator``, Eq. 2 of the paper): coarse to fine,
I~_0 = G_0(z_0), I~_k = u(I~_{k-1}) + G_k(z_k, u(I~_{k-1})), each level clamped to [-1, 1].
The latent z is the concatenation [z_0, z_1 (flattened noise plane), ...], uniform
U(-1, 1): 100 + 16^2 + 32^2 = 1380 numbers for 32 px.

Choices the paper leaves open: d(.) is 2 x 2 average pooling and u(.) bilinear
up-sampling (the paper uses a Burt-Adelson smoothing filter for both); the level-k
networks use ``kernel_size`` x ``kernel_size`` convolutions (5) and D_k's convolutions
have stride 2 so that its linear layer stays small.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)


@dataclass(frozen=True)
class LAPGANConfig(ModelConfig):
    z0_dim: int = 100  # noise of the coarsest level's G_0
    coarse_size: int | None = None  # side of the coarsest level; None: 8 (7 when image_size is a multiple of 7)
    g0_hidden: int = 1200  # G_0: units of its two ReLU layers
    d0_hidden: int = 600  # D_0: units of its two ReLU layers
    d0_dropout: float = 0.5  # D_0: dropout on its hidden layers
    g_channels: int = 128  # G_k (k > 0): feature maps of its convolutional layers
    d_channels: int = 128  # D_k (k > 0): feature maps of its convolutional layers
    kernel_size: int = 5  # G_k / D_k convolution size (odd)
    optimizer: str = "sgd"  # "sgd" (the paper's) or "adam" (lr_adam, beta1 below)
    lr: float = 0.02  # SGD: initial learning rate, every network
    lr_decay: float = 1.00004  # SGD: lr is divided by this after every update
    momentum: float = 0.5  # SGD: initial momentum
    momentum_step: float = 0.0008  # SGD: momentum increase per epoch
    final_momentum: float = 0.8  # SGD: maximum momentum
    steps_per_epoch: int = 469  # steps per epoch for the momentum schedule (60k images / 128)
    lr_adam: float = 2e-4  # Adam learning rate (optimizer="adam")
    beta1: float = 0.5  # Adam beta1 (optimizer="adam")

    def __post_init__(self):
        pyramid_sizes(self)
        if self.channels not in (1, 3):
            raise GanbenchError(f"lapgan: channels must be 1 or 3, got {self.channels}")
        if self.optimizer not in ("sgd", "adam"):
            raise GanbenchError(f"lapgan: optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise GanbenchError(f"lapgan: kernel_size must be odd, got {self.kernel_size}")
        if not 0.0 <= self.d0_dropout < 1.0 or self.steps_per_epoch < 1:
            raise GanbenchError("lapgan: d0_dropout must lie in [0, 1) and steps_per_epoch be >= 1")


def pyramid_sizes(c: LAPGANConfig) -> list[int]:
    """Image sides from the coarsest level to image_size, e.g. [8, 16, 32]."""
    coarse = c.coarse_size or (7 if c.image_size % 7 == 0 else 8)
    k = math.log2(c.image_size / coarse) if c.image_size >= coarse > 0 else -1
    if k < 1 or k != int(k):
        raise GanbenchError(f"lapgan: image_size ({c.image_size}) must be coarse_size ({coarse}) times a power "
                            f"of 2, with at least two levels (e.g. 32 = 8 * 4, 28 = 7 * 4, 64 = 8 * 8)")
    return [coarse * 2 ** i for i in range(int(k) + 1)]


def down(x: torch.Tensor) -> torch.Tensor:
    """d(.): 2 x 2 average pooling."""
    return F.avg_pool2d(x, 2)


def up(x: torch.Tensor) -> torch.Tensor:
    """u(.): bilinear 2x up-sampling."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class CoarseGenerator(nn.Module):
    def __init__(self, c: LAPGANConfig, size: int):
        super().__init__()
        self.shape = (c.channels, size, size)
        self.net = nn.Sequential(nn.Linear(c.z0_dim, c.g0_hidden), nn.ReLU(True),
                                 nn.Linear(c.g0_hidden, c.g0_hidden), nn.ReLU(True),
                                 nn.Linear(c.g0_hidden, math.prod(self.shape)), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(len(z), *self.shape)


class CoarseDiscriminator(nn.Module):
    def __init__(self, c: LAPGANConfig, size: int):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c.channels * size * size, c.d0_hidden), nn.ReLU(True),
                                 nn.Dropout(c.d0_dropout), nn.Linear(c.d0_hidden, c.d0_hidden), nn.ReLU(True),
                                 nn.Dropout(c.d0_dropout), nn.Linear(c.d0_hidden, 1))

    def forward(self, x):
        return self.net(x).flatten()


class ResidualGenerator(nn.Module):
    """G_k: [l_k, noise plane] -> residual h~_k (linear output)."""

    def __init__(self, c: LAPGANConfig):
        super().__init__()
        k, p, w = c.kernel_size, c.kernel_size // 2, c.g_channels
        self.net = nn.Sequential(nn.Conv2d(c.channels + 1, w, k, 1, p), nn.ReLU(True),
                                 nn.Conv2d(w, w, k, 1, p), nn.ReLU(True),
                                 nn.Conv2d(w, c.channels, k, 1, p))

    def forward(self, noise, low):
        return self.net(torch.cat([low, noise], 1))


class ResidualDiscriminator(nn.Module):
    """D_k: residual + l_k (added before the first layer) -> logit."""

    def __init__(self, c: LAPGANConfig, size: int):
        super().__init__()
        k, p, w = c.kernel_size, c.kernel_size // 2, c.d_channels
        self.net = nn.Sequential(nn.Conv2d(c.channels, w, k, 2, p), nn.ReLU(True),
                                 nn.Conv2d(w, w, k, 2, p), nn.ReLU(True),
                                 nn.Flatten(), nn.Linear(w * math.ceil(size / 4) ** 2, 1))

    def forward(self, residual, low):
        return self.net(residual + low).flatten()


class LaplacianGenerator(GenerativeModel):
    """Coarse-to-fine sampling through every level (see the module docstring)."""

    def __init__(self, c: LAPGANConfig):
        super().__init__()
        self.sizes = pyramid_sizes(c)
        self.z0_dim = c.z0_dim
        z_dim = c.z0_dim + sum(s * s for s in self.sizes[1:])
        self.latent = LatentSpec(z_dim=z_dim, z_dist="uniform", channels=c.channels, image_size=c.image_size)
        self.coarse = CoarseGenerator(c, self.sizes[0])
        self.levels = nn.ModuleList(ResidualGenerator(c) for _ in self.sizes[1:])

    def split_latent(self, z: torch.Tensor) -> list[torch.Tensor]:
        """[z_0 (N, z0_dim), noise planes (N, 1, s, s) of each finer level]."""
        parts = torch.split(z, [self.z0_dim] + [s * s for s in self.sizes[1:]], dim=1)
        return [parts[0]] + [p.reshape(len(z), 1, s, s) for p, s in zip(parts[1:], self.sizes[1:])]

    def generate_pyramid(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The sampled image at every level, coarsest first (the last is :meth:`generate`'s)."""
        z0, *planes = self.split_latent(z)
        images = [self.coarse(z0)]
        for level, noise in zip(self.levels, planes):
            low = up(images[-1])
            images.append((low + level(noise, low)).clamp(-1.0, 1.0))
        return images

    def generate(self, z, labels=None):
        return self.generate_pyramid(z)[-1]


def _gan_d(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))


def _gan_g(d_gen: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))


class LAPGAN(GANModel):
    def __init__(self, config: LAPGANConfig):
        super().__init__(config)
        self.generator = LaplacianGenerator(config)
        sizes = self.generator.sizes
        self.discriminators = nn.ModuleList([CoarseDiscriminator(config, sizes[0])]
                                            + [ResidualDiscriminator(config, s) for s in sizes[1:]])
        if config.optimizer == "adam":
            make = lambda p: torch.optim.Adam(p, lr=config.lr_adam, betas=(config.beta1, 0.999))  # noqa: E731
        else:
            make = lambda p: torch.optim.SGD(p, lr=config.lr, momentum=config.momentum)  # noqa: E731
        self.opt_g = make(self.generator.parameters())
        self.opt_d = make(self.discriminators.parameters())

    def _schedule(self, step: int) -> None:
        c = self.config
        if c.optimizer != "sgd":
            return
        lr = c.lr / c.lr_decay ** step
        momentum = min(c.final_momentum, c.momentum + c.momentum_step * (step // c.steps_per_epoch))
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"], group["momentum"] = lr, momentum

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        self._schedule(step)
        G, Ds = self.generator, self.discriminators
        real = batch.images
        n = len(real)
        # the real pyramid, finest first -> coarsest first
        pyramid = [real]
        for _ in G.sizes[1:]:
            pyramid.append(down(pyramid[-1]))
        pyramid.reverse()
        z, _ = ctx.latents(G.latent, n)
        z0, *planes = G.split_latent(z)
        lows = [up(img) for img in pyramid[:-1]]  # l_k for k = 1..K
        residuals = [img - low for img, low in zip(pyramid[1:], lows)]  # h_k
        with ctx.autocast():
            fakes = [G.coarse(z0)] + [g(noise, low) for g, noise, low in zip(G.levels, planes, lows)]
        # discriminators
        with ctx.autocast():
            losses_d = [_gan_d(Ds[0](pyramid[0]), Ds[0](fakes[0].detach()))]
            for k in range(1, len(G.sizes)):
                d = Ds[k]
                losses_d.append(_gan_d(d(residuals[k - 1], lows[k - 1]), d(fakes[k].detach(), lows[k - 1])))
            loss_d = sum(losses_d)
        ctx.backward_step(loss_d, self.opt_d)
        # generators
        with frozen(Ds):
            with ctx.autocast():
                losses_g = [_gan_g(Ds[0](fakes[0]))]
                losses_g += [_gan_g(Ds[k](fakes[k], lows[k - 1])) for k in range(1, len(G.sizes))]
                loss_g = sum(losses_g)
            ctx.backward_step(loss_g, self.opt_g)
        out = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
        for k, (ld, lg) in enumerate(zip(losses_d, losses_g)):
            out[f"loss_d{k}"], out[f"loss_g{k}"] = ld.detach(), lg.detach()
        return out


_MNIST_LIKE = {"image_size": 32}


@register_model(
    "lapgan", config=LAPGANConfig,
    paper="Deep Generative Image Models using a Laplacian Pyramid of Adversarial Networks",
    authors="Denton, Chintala, Szlam, Fergus", arxiv="1506.05751", year=2015, task="unconditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": {"image_size": 32, "channels": 3}, "celeba": {"image_size": 64, "channels": 3}},
    description="Laplacian pyramid of GANs (8 -> 16 -> 32 px): an MLP GAN at the coarsest level, "
                "conditional convolutional GANs generating each finer level's residual",
    reference_code="https://github.com/facebook/eyescream (read; networks as described in the paper)",
    # searched draws train with Adam (lr_adam), as every model of Lucic et al. 2018; their wide ranges
    search_space={"optimizer": "adam", "lr_adam": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=128, source="facebookarchive/eyescream "
                                                              "cifar/scripts/train_cifar_coarse_to_fine.lua: "
                                                              "--batchSize default 128")},
    departures=[
        ("d(.) is 2 x 2 average pooling and u(.) bilinear up-sampling",
         "the paper uses a Burt-Adelson smoothing filter; a simpler pair with the same role"),
        ("D_k's convolutions have stride 2",
         "so its linear layer stays small; the paper gives no strides"),
        ("all pyramid levels train in lockstep, one update each per step",
         "the levels share no parameters and each sees the real pyramid, so this equals training them "
         "separately for the same number of steps"),
        ("the learning rate is divided by (1 + 4e-5) after every update; the authors' eyescream scripts "
         "divide it once per epoch",
         "the implementation's reading of Sec. 3.2, kept as is; at 469 steps per epoch the rate halves "
         "after ~37 epochs instead of ~17,000"),
        ("the CIFAR-10 coarse MLPs (1200 / 600 units) are used for MNIST-like data too",
         "one architecture per level across datasets"),
    ],
    tiny={"image_size": 28, "g_channels": 16, "d_channels": 16, "g0_hidden": 256, "d0_hidden": 128},
    # 300 steps stopped inside the paper's SGD recipe's erratic start (lenet-FID 524..727 over
    # seeds and float paths against a threshold of ~623; 1157 on an AVX-512 machine); at 800
    # the pyramid has settled (395 / 405 for seeds 0 / 1): bench/results/learning_margins.md
    test_steps=800)
def build(config: LAPGANConfig) -> LAPGAN:
    return LAPGAN(config)
