"""BEGAN: Berthelot, Schumm & Metz, "BEGAN: Boundary Equilibrium Generative Adversarial
Networks", 2017. arXiv:1703.10717.

The discriminator is an auto-encoder; G is trained so that the auto-encoder's
*reconstruction-loss distribution* on generated images matches the one on real images
(Section 3). With L(v) = |v - D(v)|^eta (pixel-wise, eta = 1: mean absolute error)::

    L_D = L(x) - k_t L(G(z_D))
    L_G = L(G(z_G))
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1)

The diversity ratio gamma = E[L(G(z))] / E[L(x)] sets the equilibrium (0.5 by default;
the paper shows 0.3..0.7), lambda_k = 0.001 and k_0 = 0. ``k_t`` is model state: a
registered buffer, so it is checkpointed and a resumed run continues with it. The
convergence measure M_global = L(x) + |gamma L(x) - L(G(z_G))| (Section 3.4.1) is
returned in every step's log as ``m_global`` (with ``k`` itself).

Architecture (Section 3.5, Figure 1): 3 x 3 convolutions with ELUs, two per scale.
Encoder: a first convolution to n channels, then per scale two convolutions and a
stride-2 convolution (sub-sampling) whose width grows linearly (n, 2n, 3n, ...); at
8 x 8 a fully connected layer maps to the embedding h (N_h = 64, not followed by a
non-linearity). Decoder: h -> 8 x 8 x n by a fully connected layer, then per scale two
convolutions and a nearest-neighbour up-sampling, a last convolution to the image. The
generator has the decoder's architecture with its own weights and z ~ U(-1, 1)^64
(N_z = N_h = 64). The paper leaves G's output linear (``g_output="linear"``: D trains on
the raw output, sampled images are clamped to ganbench's [-1, 1]); the default
``"tanh"`` squashes it instead (no measurable difference in our short MNIST runs); the
discriminator's decoder stays linear.
Optional skip connections of the paper are not used. n = 128 (the paper's; for faster
runs set ``n_channels``: at 32 px and n = 128 one step at batch 64 is ~1.5 TFLOP, tens of
seconds on one CPU thread, as every scale runs two full-width convolutions in G and in
D's encoder and decoder, and D runs three times per step). MNIST-like data use 32 x 32 (8 -> 16 -> 32); 28 x 28 starts
from 7 x 7; 64 x 64 is the paper's CelebA resolution.

Optimiser: Adam, learning rate 1e-4 for both networks (beta1 0.5 as in the reference
implementation), batch 16 (the recipe: the reference implementation's; we did not find it
in the paper). The paper
halves the learning rate "when the measure of convergence stalls"; here, so that a
resumed run matches an uninterrupted one, the rate is halved every ``lr_halve_every``
steps (100,000, down to 2e-5, as in the reference implementation; None: constant).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)


@dataclass(frozen=True)
class BEGANConfig(ModelConfig):
    image_size: int = 32  # output height = width: 8 * 2**k (16, 32, 64, 128) or 28
    z_dim: int = 64  # N_z, length of z ~ U(-1, 1)
    h_dim: int = 64  # N_h, the auto-encoder's embedding size
    n_channels: int = 128  # n: conv width (the encoder grows it linearly per scale)
    gamma: float = 0.5  # diversity ratio E[L(G(z))] / E[L(x)] at equilibrium
    lambda_k: float = 0.001  # learning rate of the equilibrium variable k_t
    k_init: float = 0.0  # k_0
    lr: float = 1e-4  # Adam learning rate of G and D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    lr_halve_every: int | None = 100_000  # halve lr every this many steps (the paper: when M stalls)
    lr_min: float = 2e-5  # floor of the halved learning rate
    g_output: str = "tanh"  # G's last layer: "linear" (the paper; clamped to [-1, 1] when sampled) or "tanh"

    def __post_init__(self):
        scales(self.image_size)  # validates
        if self.channels not in (1, 3):
            raise GanbenchError(f"began: channels must be 1 or 3, got {self.channels}")
        if not 0.0 < self.gamma <= 1.0:
            raise GanbenchError(f"began: gamma must lie in (0, 1], got {self.gamma}")
        if not 0.0 <= self.k_init <= 1.0 or self.lambda_k < 0:
            raise GanbenchError("began: k_init must lie in [0, 1] and lambda_k be >= 0")
        if self.g_output not in ("linear", "tanh"):
            raise GanbenchError(f"began: g_output must be 'linear' or 'tanh', got {self.g_output!r}")
        if self.lr_halve_every is not None and self.lr_halve_every < 1:
            raise GanbenchError("began: lr_halve_every must be a positive number of steps or None")


def scales(image_size: int) -> tuple[int, int]:
    """(base, s): the networks work at s scales, base * 2**i for i < s (base 8, or 7 at 28 px)."""
    for base in (8, 7):
        k = math.log2(image_size / base) if image_size > base else 0
        if k >= 1 and k == int(k):
            return base, int(k) + 1
    raise GanbenchError(f"began: image_size must be 8 * 2**k (16, 32, 64, 128...) or 28, got {image_size}")


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ELU(inplace=True))


class Decoder(nn.Module):
    """h (N, h_dim) -> (N, C, H, W), linear output."""

    def __init__(self, c: BEGANConfig, in_dim: int):
        super().__init__()
        self.base, n_scales = scales(c.image_size)
        self.n = c.n_channels
        self.fc = nn.Linear(in_dim, self.base * self.base * self.n)
        layers: list[nn.Module] = []
        for i in range(n_scales):
            layers += [conv(self.n, self.n), conv(self.n, self.n)]
            if i < n_scales - 1:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers.append(nn.Conv2d(self.n, c.channels, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, h):
        return self.net(self.fc(h).view(len(h), self.n, self.base, self.base))


class Encoder(nn.Module):
    """(N, C, H, W) -> h (N, h_dim)."""

    def __init__(self, c: BEGANConfig):
        super().__init__()
        base, n_scales = scales(c.image_size)
        n = c.n_channels
        layers: list[nn.Module] = [conv(c.channels, n)]
        for i in range(n_scales):
            width = n * (i + 1)
            layers += [conv(width, width), conv(width, width)]
            if i < n_scales - 1:
                layers.append(conv(width, n * (i + 2), stride=2))  # sub-sampling
        self.net = nn.Sequential(*layers)
        self.fc = nn.Linear(base * base * n * n_scales, c.h_dim)

    def forward(self, x):
        return self.fc(self.net(x).flatten(1))


class Generator(GenerativeModel):
    def __init__(self, c: BEGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist="uniform", channels=c.channels, image_size=c.image_size)
        self.decoder = Decoder(c, c.z_dim)
        self.output = c.g_output

    def forward_train(self, z):
        """G's output as D sees it in training: linear (the paper) or tanh."""
        out = self.decoder(z)
        return torch.tanh(out) if self.output == "tanh" else out

    def generate(self, z, labels=None):
        return self.forward_train(z).clamp(-1.0, 1.0)


class AutoEncoderD(nn.Module):
    def __init__(self, c: BEGANConfig):
        super().__init__()
        self.encoder, self.decoder = Encoder(c), Decoder(c, c.h_dim)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def l1_loss(d: nn.Module, v: torch.Tensor) -> torch.Tensor:
    """L(v) = mean |v - D(v)| over the batch and pixels (eta = 1)."""
    return (v.float() - d(v).float()).abs().mean()


class BEGAN(GANModel):
    def __init__(self, config: BEGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = AutoEncoderD(config)
        self.register_buffer("k", torch.tensor(float(config.k_init)))  # k_t, checkpointed
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)

    def learning_rate(self, step: int) -> float:
        c = self.config
        if c.lr_halve_every is None:
            return c.lr
        return max(c.lr * 0.5 ** (step // c.lr_halve_every), min(c.lr_min, c.lr))

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        lr = self.learning_rate(step)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        n = len(batch.images)
        z_d, _ = ctx.latents(self.generator.latent, n)
        z_g, _ = ctx.latents(self.generator.latent, n)
        # D: L(x) - k_t L(G(z_D))
        with ctx.autocast():
            with torch.no_grad():
                fake_d = ctx.images(self.generator.forward_train(z_d))
            loss_real = l1_loss(self.discriminator, batch.images)
            loss_fake_d = l1_loss(self.discriminator, fake_d)
            loss_d = loss_real - self.k * loss_fake_d
        ctx.backward_step(loss_d, self.opt_d)
        # G: L(G(z_G))
        with frozen(self.discriminator):
            with ctx.autocast():
                loss_g = l1_loss(self.discriminator, ctx.images(self.generator.forward_train(z_g)))
            ctx.backward_step(loss_g, self.opt_g)
        # equilibrium: proportional control of k_t
        real, gen = loss_real.detach().float(), loss_g.detach().float()
        balance = c.gamma * real - gen
        with torch.no_grad():
            self.k.copy_((self.k + c.lambda_k * balance).clamp(0.0, 1.0))
        m_global = real + balance.abs()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "loss_real": real,
                "k": self.k.detach().clone(), "m_global": m_global, "lr": lr}


_MNIST_LIKE = {"image_size": 32}
_PAPER_64 = {"image_size": 64, "channels": 3}


@register_model(
    "began", config=BEGANConfig, paper="BEGAN: Boundary Equilibrium Generative Adversarial Networks",
    authors="Berthelot, Schumm, Metz", arxiv="1703.10717", year=2017, task="unconditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": {"image_size": 32, "channels": 3}, "celeba": _PAPER_64},
    description="auto-encoder D with L1 loss, equilibrium k_t (gamma 0.5, lambda_k 0.001), M_global",
    reference_code="https://github.com/carpedm20/BEGAN-tensorflow (n, N_z, beta1, lr schedule, batch)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space); gamma from 0.01, not 0 (gamma = 0
    # asks G for a zero auto-encoder loss; the config refuses it)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "lambda_k": LogUniform(1e-4, 1e-2),
                  "gamma": Uniform(0.01, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=16, source="carpedm20/BEGAN-tensorflow config.py: batch_size "
                                                             "16 (a reference implementation, not the authors')")},
    departures=[
        ("batch 16 comes from the reference implementation (carpedm20), not from the paper",
         "we did not find the paper's batch size"),
        ("G's output is tanh by default", "the paper leaves it linear; no measurable difference in our short "
                                          "MNIST runs (g_output='linear' gives the paper's)"),
        ("the learning rate halves every 100,000 steps down to 2e-5",
         "the paper halves it when M_global stalls; a step schedule keeps resumed runs identical to "
         "uninterrupted ones (the reference implementation's)"),
        ("no skip connections", "optional in the paper"),
        ("MNIST-like data at 32 x 32 (8 -> 16 -> 32)", "MNIST is 28 px; 32 keeps the 8 x 8 base of the "
                                                         "paper's networks"),
    ],
    # gamma 1 (the most diversity the equilibrium allows; the paper shows 0.3..0.7): with 0.5..0.7
    # short runs collapse to thin 1/7/9 strokes (lenet FID 886 -> 660..820 after 500 steps);
    # with gamma 1 and lambda_k 0.5: 563 / 580 (seeds 0 / 1) after 400 steps, 513 after 500
    tiny={"image_size": 16, "n_channels": 16, "lr": 5e-4, "lambda_k": 0.5, "gamma": 1.0}, test_steps=500)
def build(config: BEGANConfig) -> BEGAN:
    return BEGAN(config)
