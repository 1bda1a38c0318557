"""WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, "Improved Training of
Wasserstein GANs", NeurIPS 2017. arXiv:1704.00028.

Algorithm 1 of the paper: the WGAN critic loss plus a gradient penalty on random
interpolates ``x_hat = eps * x + (1 - eps) * G(z)``, ``eps ~ U[0, 1]`` per sample::

    L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad_x_hat D(x_hat)||_2 - 1)^2]
    L_G = -E[D(G(z))]

with ``lambda = 10``, ``n_critic = 5``, Adam ``alpha = 1e-4, beta1 = 0, beta2 = 0.9``,
batch 64 (the defaults of Algorithm 1; the reference MNIST/CIFAR scripts use beta1 = 0.5).
The critic has no batch normalisation (the penalty is per sample); the paper recommends
layer normalisation as the drop-in replacement (``critic_norm="layer"``: normalisation
over C, H, W with a per-channel scale and shift, as the reference ``Normalize`` op), used
here by default at 64 px; at 28/32 px the reference critics have no normalisation
(``critic_norm="none"``).

Architecture: the reference code's DCGAN-like networks (``gan_mnist.py``,
``gan_cifar.py``, ``gan_64x64.py``), scaled by resolution:

* G: z (128-d, N(0, I)) -> linear to a 4 x 4 map of ``8 * dim`` (64 px) / ``4 * dim``
  (28, 32 px) channels, BatchNorm, ReLU; 5 x 5 stride-2 transposed convolutions halving
  the channels with BatchNorm and ReLU; the last one to the image, tanh. For 28 px the
  8 x 8 map is cropped to 7 x 7 and G has no BatchNorm (``g_batchnorm=False``), as in
  ``gan_mnist.py`` (which also ends in a sigmoid; tanh here, for images in [-1, 1]).
* D: 5 x 5 stride-2 convolutions doubling the channels from ``dim``, LeakyReLU(0.2)
  (optional layer norm after all but the first), a linear layer to one output.

``dim = 64`` (``g_channels`` / ``d_channels``). Reference code followed:
https://github.com/igul222/improved_wgan_training.

ganbench hands ``train_step`` one real batch per generator step, so the ``n_critic``
critic updates of a step share that real batch (each with fresh noise and fresh eps).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import Batch, GANModel, ModelConfig, TrainContext, frozen, register_model
from ganbench.models.losses import gradient_penalty


@dataclass(frozen=True)
class WGANGPConfig(ModelConfig):
    z_dim: int = 128  # length of the noise vector z
    z_dist: str = "normal"  # "normal" N(0, I) (the reference code's) or "uniform"
    g_channels: int = 64  # dim: G's last hidden feature maps; doubling towards 4 x 4
    d_channels: int = 64  # dim: the critic's first-layer feature maps; doubling per layer
    g_batchnorm: bool = True  # BatchNorm in G (gan_cifar.py, gan_64x64.py; not gan_mnist.py)
    critic_norm: str = "none"  # "none" or "layer" (layer norm; never batch norm with a GP)
    gp_lambda: float = 10.0  # lambda: weight of the gradient penalty
    n_critic: int = 5  # critic updates per generator update
    lr: float = 1e-4  # Adam alpha, G and critic
    beta1: float = 0.0  # Adam beta1
    beta2: float = 0.9  # Adam beta2

    def __post_init__(self):
        if self.critic_norm not in ("none", "layer"):
            raise GanbenchError(f"wgan-gp: critic_norm must be 'none' or 'layer' (batch norm would "
                                f"invalidate the per-sample penalty), got {self.critic_norm!r}")
        if self.channels not in (1, 3):
            raise GanbenchError(f"wgan-gp: channels must be 1 or 3, got {self.channels}")
        if self.image_size < 8:
            raise GanbenchError(f"wgan-gp: image_size must be at least 8, got {self.image_size}")
        if self.n_critic < 1 or self.gp_lambda < 0:
            raise GanbenchError("wgan-gp: n_critic must be >= 1 and gp_lambda >= 0")


def stage_sizes(image_size: int) -> list[int]:
    """Feature-map sizes from 4 x 4 up to ``image_size``: 28 -> [4, 7, 14, 28]."""
    sizes = [image_size]
    while sizes[-1] > 4:
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes[::-1]


class Generator(GenerativeModel):
    def __init__(self, c: WGANGPConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist=c.z_dist, channels=c.channels, image_size=c.image_size)
        self.sizes = stage_sizes(c.image_size)
        n_up = len(self.sizes) - 1
        widths = [c.g_channels * 2 ** (n_up - 1 - i) for i in range(n_up)]  # e.g. 256 128 64
        self.width0 = widths[0]
        bn = c.g_batchnorm
        self.project = nn.Sequential(nn.Linear(c.z_dim, 16 * widths[0]),
                                     nn.BatchNorm1d(16 * widths[0]) if bn else nn.Identity(), nn.ReLU(True))
        self.ups = nn.ModuleList()
        for cin, cout in zip(widths, widths[1:]):
            self.ups.append(nn.Sequential(nn.ConvTranspose2d(cin, cout, 5, 2, 2, output_padding=1),
                                          nn.BatchNorm2d(cout) if bn else nn.Identity(), nn.ReLU(True)))
        self.ups.append(nn.ConvTranspose2d(widths[-1], c.channels, 5, 2, 2, output_padding=1))

    def generate(self, z, labels=None):
        h = self.project(z).view(len(z), self.width0, 4, 4)
        for size, up in zip(self.sizes[1:], self.ups):
            h = up(h)[:, :, :size, :size]  # 8 -> 7 for 28 px (gan_mnist.py)
        return torch.tanh(h)


class Critic(nn.Module):
    def __init__(self, c: WGANGPConfig):
        super().__init__()
        n_down = len(stage_sizes(c.image_size)) - 1
        widths = [c.d_channels * 2 ** i for i in range(n_down)]  # e.g. 64 128 256
        layers: list[nn.Module] = []
        cin = c.channels
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 5, 2, 2))
            if i > 0 and c.critic_norm == "layer":
                layers.append(nn.GroupNorm(1, cout))  # layer norm over (C, H, W), per-channel affine
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(widths[-1] * 16, 1)

    def forward(self, x):
        return self.out(self.net(x).flatten(1)).flatten()  # D(x), (N,)


class WGANGP(GANModel):
    def __init__(self, config: WGANGPConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.critic = Critic(config)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.critic.parameters(), lr=config.lr, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        n = len(batch.images)
        for real_batch in ctx.real_batches(batch, c.n_critic):  # a fresh batch per critic update
            real = real_batch.images
            z, _ = ctx.latents(self.generator.latent, n)
            eps = torch.rand(n, device=ctx.device, generator=ctx.generator)
            with ctx.autocast():
                with torch.no_grad():
                    fake = ctx.images(self.generator(z))
                d_real = self.critic(real).float().mean()
                d_fake = self.critic(fake).float().mean()
                gp = gradient_penalty(self.critic, real, fake, eps, ctx)
                loss_d = d_fake - d_real + c.gp_lambda * gp
            ctx.backward_step(loss_d, self.opt_d)
        with frozen(self.critic):
            z, _ = ctx.latents(self.generator.latent, n)
            with ctx.autocast():
                loss_g = -self.critic(ctx.images(self.generator(z))).float().mean()
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "gp": gp.detach(),
                "wasserstein": (d_real - d_fake).detach()}


_MNIST_28 = {"image_size": 28, "g_batchnorm": False}  # gan_mnist.py
_CIFAR_32 = {"image_size": 32, "channels": 3}  # gan_cifar.py
_PAPER_64 = {"image_size": 64, "channels": 3, "critic_norm": "layer"}  # gan_64x64.py (DCGAN, layer norm)


@register_model(
    "wgan-gp", config=WGANGPConfig, paper="Improved Training of Wasserstein GANs",
    authors="Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville", arxiv="1704.00028", year=2017,
    task="unconditional",
    defaults={"mnist": _MNIST_28, "fashion-mnist": _MNIST_28, "digits": _MNIST_28,
              "cifar10": _CIFAR_32, "celeba": _PAPER_64},
    description="WGAN critic loss + gradient penalty (lambda=10), no batch norm in the critic, "
                "Adam 1e-4 (0, 0.9), n_critic=5",
    reference_code="https://github.com/igul222/improved_wgan_training (gan_mnist/gan_cifar/gan_64x64)",
    # tests: narrow nets, gan_cifar.py's BatchNorm in G and a faster learning rate
    tiny={"g_channels": 8, "d_channels": 8, "z_dim": 32, "g_batchnorm": True, "lr": 1e-3},
    test_steps=250)
def build(config: WGANGPConfig) -> WGANGP:
    return WGANGP(config)
