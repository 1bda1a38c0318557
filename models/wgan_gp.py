"""WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, "Improved Training of
Wasserstein GANs", NeurIPS 2017. arXiv:1704.00028.

Algorithm 1 of the paper: the WGAN critic loss plus a gradient penalty on random
interpolates ``x_hat = eps * x + (1 - eps) * G(z)``, ``eps ~ U[0, 1]`` per sample::

    L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad_x_hat D(x_hat)||_2 - 1)^2]
    L_G = -E[D(G(z))]

with ``lambda = 10``, ``n_critic = 5`` critic updates per G update, each on a fresh real
batch of 64, Adam ``alpha = 1e-4, beta1 = 0, beta2 = 0.9`` (the defaults of Algorithm 1).
The critic has no batch normalisation (the penalty is per sample); the paper recommends
layer normalisation as the drop-in replacement (``critic_norm="layer"``: normalisation
over C, H, W with a per-channel scale and shift, as the reference ``Normalize`` op), used
here by default at 64 px; at 28/32 px the reference critics have no normalisation.

Two architectures (``arch``), from the reference code
(https://github.com/igul222/improved_wgan_training):

* ``"dcgan"`` (the default; ``gan_mnist.py``, ``gan_cifar.py``, ``gan_64x64.py``), scaled
  by resolution. G: z (128-d, N(0, I)) -> linear to a 4 x 4 map of ``8 * dim`` (64 px) /
  ``4 * dim`` (28, 32 px) channels, BatchNorm, ReLU; 5 x 5 stride-2 transposed convolutions
  halving the channels with BatchNorm and ReLU; the last one to the image, tanh. For 28 px
  the 8 x 8 map is cropped to 7 x 7 and G has no BatchNorm (``g_batchnorm=False``), as in
  ``gan_mnist.py`` (which ends in a sigmoid; tanh here, for images in [-1, 1]). D: 5 x 5
  stride-2 convolutions doubling the channels from ``dim``, LeakyReLU(0.2) (optional layer
  norm after all but the first), a linear layer to one output. ``dim = 64``.
* ``"resnet"`` (``gan_cifar_resnet.py``, unconditional: the paper's CIFAR-10 Inception score
  7.86), the default for CIFAR-10. G: z -> linear to 4 x 4 x 128, three residual up-blocks
  of 128 channels (BatchNorm, ReLU, nearest up-sampling, 3 x 3 convolutions, an up-sampled
  1 x 1 shortcut), BatchNorm, ReLU, 3 x 3 convolution to the image, tanh. Critic: an
  "optimized" down-block, a down-block (to 8 x 8), two residual blocks without pooling,
  all 128 wide and without normalisation, ReLU, global *mean* pooling, a linear layer.
  These are the projection cGAN's blocks (:mod:`ganbench.models.projection`) without
  spectral norm or classes; Glorot-uniform weights (gain sqrt(2) in the residual 3 x 3
  convolutions), tflib's ``he_init``. 1.20M / 1.05M parameters. Training: Adam
  ``alpha = 2e-4, beta1 = 0, beta2 = 0.9``, alpha decayed linearly to 0 over 100k G
  updates (``lr_decay_steps``), the G update on 2 x 64 fakes (``GEN_BS_MULTIPLE``:
  ``g_batch_multiple=2``). ``--set arch=dcgan`` on CIFAR-10 keeps these optimiser settings
  (``gan_cifar.py``'s are alpha 1e-4, betas (0.5, 0.9), no decay, one G batch).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models import projection
from ganbench.models.base import (Batch, GANModel, IntRange, LogUniform, ModelConfig, TrainContext, TrainingRecipe,
                                  Uniform, frozen, register_model)
from ganbench.models.losses import gradient_penalty

ARCHS = ("dcgan", "resnet")


@dataclass(frozen=True)
class WGANGPConfig(ModelConfig):
    arch: str = "dcgan"  # "dcgan": gan_mnist/gan_cifar/gan_64x64.py's nets; "resnet": gan_cifar_resnet.py's
    z_dim: int = 128  # length of the noise vector z
    z_dist: str = "normal"  # "normal" N(0, I) (the reference code's) or "uniform" (dcgan only)
    g_channels: int = 64  # dim: dcgan: G's last hidden feature maps, doubling towards 4 x 4; resnet: DIM_G
    d_channels: int = 64  # dim: dcgan: the critic's first-layer feature maps, doubling per layer; resnet: DIM_D
    g_batchnorm: bool = True  # BatchNorm in G (gan_cifar.py, gan_64x64.py, the ResNet; not gan_mnist.py)
    critic_norm: str = "none"  # "none" or "layer" (layer norm, dcgan only; never batch norm with a GP)
    gp_lambda: float = 10.0  # lambda: weight of the gradient penalty
    n_critic: int = 5  # critic updates per generator update
    lr: float = 1e-4  # Adam alpha, G and critic
    beta1: float = 0.0  # Adam beta1
    beta2: float = 0.9  # Adam beta2
    lr_decay_steps: int | None = None  # alpha decays linearly to 0 over this many G steps (ResNet 100k); None: fixed
    g_batch_multiple: int = 1  # fakes per G update = this x the batch size (ResNet: GEN_BS_MULTIPLE 2)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise GanbenchError(f"wgan-gp: arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.arch == "resnet":
            check_resnet(self)
        if self.critic_norm not in ("none", "layer"):
            raise GanbenchError(f"wgan-gp: critic_norm must be 'none' or 'layer' (batch norm would "
                                f"invalidate the per-sample penalty), got {self.critic_norm!r}")
        if self.channels not in (1, 3):
            raise GanbenchError(f"wgan-gp: channels must be 1 or 3, got {self.channels}")
        if self.image_size < 8:
            raise GanbenchError(f"wgan-gp: image_size must be at least 8, got {self.image_size}")
        if self.n_critic < 1 or self.gp_lambda < 0 or self.g_batch_multiple < 1:
            raise GanbenchError("wgan-gp: n_critic and g_batch_multiple must be >= 1 and gp_lambda >= 0")
        if self.lr_decay_steps is not None and self.lr_decay_steps < 1:
            raise GanbenchError(f"wgan-gp: lr_decay_steps must be positive or None, got {self.lr_decay_steps}")


def check_resnet(c: WGANGPConfig) -> None:
    """gan_cifar_resnet.py's nets: BatchNorm in G, no normalisation in the critic, z ~ N(0, I)."""
    projection.base_and_blocks(c.image_size, "wgan-gp (arch=resnet)")
    if not c.g_batchnorm or c.critic_norm != "none" or c.z_dist != "normal":
        raise GanbenchError("wgan-gp: arch=resnet has BatchNorm in G, no critic normalisation and z ~ N(0, I) "
                            "(set g_batchnorm=true critic_norm=none z_dist=normal, or arch=dcgan)")


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


def resnet_networks(c: WGANGPConfig) -> tuple[GenerativeModel, nn.Module]:
    """gan_cifar_resnet.py's G and critic: the projection cGAN's ResNets without classes, the
    critic without spectral norm, mean-pooled, its linear head with a bias."""
    unconditional = dataclasses.replace(c, num_classes=0)
    return (projection.Generator(unconditional),
            projection.Discriminator(unconditional, power_iterations=0, psi_bias=True, mean_pool=True))


class WGANGP(GANModel):
    def __init__(self, config: WGANGPConfig):
        super().__init__(config)
        if config.arch == "resnet":
            self.generator, self.critic = resnet_networks(config)
        else:
            self.generator, self.critic = Generator(config), Critic(config)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.critic.parameters(), lr=config.lr, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        projection.linear_decay((self.opt_g, self.opt_d), (c.lr, c.lr), step, c.lr_decay_steps)
        n = len(batch.images)
        for real_batch in ctx.real_batches(batch, c.n_critic):  # a fresh batch per critic update
            real = real_batch.images
            z, _ = ctx.latents(self.generator.latent, n)
            eps = ctx.rand(n)
            with ctx.autocast():
                with torch.no_grad():
                    fake = ctx.images(self.generator(z))
                d_real = self.critic(real).float().mean()
                d_fake = self.critic(fake).float().mean()
                gp = gradient_penalty(self.critic, real, fake, eps, ctx)
                loss_d = d_fake - d_real + c.gp_lambda * gp
            ctx.backward_step(loss_d, self.opt_d)
        with frozen(self.critic):
            z, _ = ctx.latents(self.generator.latent, n * c.g_batch_multiple)
            with ctx.autocast():
                loss_g = -self.critic(ctx.images(self.generator(z))).float().mean()
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "gp": gp.detach(),
                "wasserstein": (d_real - d_fake).detach()}


_MNIST_28 = {"image_size": 28, "g_batchnorm": False}  # gan_mnist.py
_PAPER_64 = {"image_size": 64, "channels": 3, "critic_norm": "layer"}  # gan_64x64.py (DCGAN, layer norm)
# gan_cifar_resnet.py, unconditional: DIM_G = DIM_D = 128, LR 2e-4 decayed over ITERS 100k,
# betas (0, 0.9), N_CRITIC 5, BATCH_SIZE 64, GEN_BS_MULTIPLE 2
_CIFAR_RESNET = {"image_size": 32, "channels": 3, "arch": "resnet", "g_channels": 128, "d_channels": 128,
                 "lr": 2e-4, "lr_decay_steps": 100_000, "g_batch_multiple": 2}
RECIPES = {
    "default": TrainingRecipe(batch_size=64, source="Algorithm 1 (m = 64); gan_cifar.py, gan_64x64.py BATCH_SIZE 64"),
    "cifar10": TrainingRecipe(batch_size=64, source="gan_cifar_resnet.py BATCH_SIZE 64 per critic update; "
                                                    "its GEN_BS_MULTIPLE 2 for G is g_batch_multiple=2"),
}
DEPARTURES = [
    ("MNIST: Algorithm 1's Adam (beta1 0) and batch 64, tanh output",
     "gan_mnist.py uses beta1 0.5, batch 50 and a sigmoid; the paper states Algorithm 1's defaults, "
     "and ganbench's images lie in [-1, 1]"),
    ("the DCGAN-like nets at dim 64 with Algorithm 1's Adam (beta1 0) at 32 px (--set arch=dcgan on CIFAR-10)",
     "gan_cifar.py uses DIM 128 (its comment: it overfits, 64 is probably better) and beta1 0.5"),
    ("ResNet: samples use G's BatchNorm running statistics",
     "gan_cifar_resnet.py's BatchNorm always normalises with the batch's own statistics (is_training=None), "
     "also when sampling for its Inception score; ganbench evaluates generators in eval mode, where a "
     "sample does not depend on its batch"),
    ("ResNet: real images in [-1, 1] without gan_cifar_resnet.py's dequantisation noise U(0, 1/128)",
     "ganbench's one image contract; the noise is below one grey level"),
    ("ResNet G's linear and output-convolution biases start at PyTorch's default uniform values",
     "tflib starts them at 0; the Generator is the projection cGAN's, shared with SAGAN, whose tested "
     "initialisation would change"),
]


@register_model(
    "wgan-gp", config=WGANGPConfig, paper="Improved Training of Wasserstein GANs",
    authors="Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville", arxiv="1704.00028", year=2017,
    task="unconditional",
    defaults={"mnist": _MNIST_28, "fashion-mnist": _MNIST_28, "digits": _MNIST_28,
              "cifar10": _CIFAR_RESNET, "celeba": _PAPER_64},
    description="WGAN critic loss + gradient penalty (lambda=10), no batch norm in the critic, n_critic=5; "
                "DCGAN-like nets with Adam 1e-4 (0, 0.9), CIFAR-10: the ResNet with Adam 2e-4 (0, 0.9), decay",
    reference_code="https://github.com/igul222/improved_wgan_training "
                   "(gan_mnist/gan_cifar/gan_64x64/gan_cifar_resnet.py)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "gp_lambda": LogUniform(0.1, 100.0),
                  "n_critic": IntRange(1, 5)},
    recipes=RECIPES, departures=DEPARTURES,
    # tests: narrow nets, gan_cifar.py's BatchNorm in G and a faster learning rate
    tiny={"g_channels": 8, "d_channels": 8, "z_dim": 32, "g_batchnorm": True, "lr": 1e-3},
    test_steps=250)
def build(config: WGANGPConfig) -> WGANGP:
    return WGANGP(config)
