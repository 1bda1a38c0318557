"""SNGAN: Miyato, Kataoka, Koyama & Yoshida, "Spectral Normalization for Generative
Adversarial Networks", ICLR 2018. arXiv:1802.05957.

Every weight of the discriminator (convolutions and the final linear layer) is divided by
its spectral norm, estimated by ``power_iterations`` power iterations per training forward
pass (Algorithm 1: one), with ``torch.nn.utils.parametrizations.spectral_norm`` (a
convolution's kernel is reshaped to ``out x (in * k * k)`` as in the paper).

Two architectures (``arch``):

* ``"resnet"``, the default for CIFAR-10, where the paper's headline numbers (IS 8.22,
  FID 21.7) come from. Table 4 and the authors' ``sngan_projection`` code
  (``configs/sn_cifar10_unconditional.yml``, ``gen_models/resnet_32.py``,
  ``dis_models/snresnet_32.py``): G: z (128-d, N(0, I)) -> linear to 4 x 4 x 256, three
  residual up-blocks of 256 channels (BatchNorm, ReLU, nearest up-sampling, 3 x 3
  convolutions), BatchNorm, ReLU, 3 x 3 convolution to the image, tanh. D: an "optimized"
  down-block and a down-block of 128 channels (to 8 x 8), two residual blocks of 128
  without pooling, ReLU, global sum pooling, a linear layer to one output without a bias.
  These are the projection cGAN's networks (:mod:`ganbench.models.projection`) with
  ``num_classes`` 0, Glorot-uniform initialised as the authors'. Widths: ``g_channels`` /
  ``d_channels`` (256 / 128 in the cifar10 defaults). 4.28M / 1.05M parameters at 32 px.
* ``"cnn"``, the paper's "standard CNN" (Table 3, CIFAR-10 at 32 x 32, M_g = 4), the
  default elsewhere: G: z -> dense to ``M_g x M_g x 512``, BatchNorm, ReLU; 4 x 4 stride-2
  transposed convolutions to 256, 128, 64 channels (BatchNorm, ReLU); 3 x 3 stride-1
  convolution to the image, tanh. D: [3 x 3 stride 1, 4 x 4 stride 2] convolution pairs of
  64, 128, 256 channels, then a 3 x 3 convolution of 512 channels, LeakyReLU(0.1) after
  each; dense to one output. Weights N(0, 0.02) (chainer-gan-lib). Other resolutions
  change the number of stages (64 px: one more, M_g = 4; 28 px: M_g = 7 with one fewer
  stage in G, and three D pairs ending at 3 x 3); widths scale with ``g_channels`` /
  ``d_channels`` (64 = the paper's).

Loss: the hinge loss (``loss="hinge"``, the paper's best results and the ResNet's)::

    L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))],   L_G = -E[D(G(z))]

or the standard non-saturating loss (``loss="standard"``).

Optimisation, by dataset default:

* CIFAR-10 (ResNet, ``sn_cifar10_unconditional.yml``): Adam alpha = 2e-4, beta1 = 0,
  beta2 = 0.9, n_dis = 5 D updates per G update, each on a fresh batch of 64 real images;
  the G update on 128 fakes (``n_gen_samples``: ``g_batch_multiple=2``); alpha decayed
  linearly to 0 over 50k G updates (``lr_decay_steps``). ``--set arch=cnn`` there keeps
  these settings; the paper's setting C for the standard CNN also needs ``beta1=0.5
  beta2=0.999 n_dis=1 g_channels=64 d_channels=64 lr_decay_steps=none g_batch_multiple=1``.
* Elsewhere (standard CNN): setting C of the paper (Table 1; the authors' chainer-gan-lib
  example for SN-DCGAN): Adam alpha = 2e-4, beta1 = 0.5, beta2 = 0.999, n_dis = 1,
  batch 64, constant alpha.

The update itself (fresh real batch per D update, then G) is
:func:`ganbench.models.projection.alternating_step`, the authors' updater.

Reference code followed: https://github.com/pfnet-research/chainer-gan-lib (``common/net.py``,
``common/sn``, ``example.sh``) and https://github.com/pfnet-research/sngan_projection.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models import projection
from ganbench.models.base import (Batch, GANModel, IntRange, LogUniform, ModelConfig, TrainContext, TrainingRecipe,
                                  Uniform, register_model)
from ganbench.models.losses import gan_d_loss, gan_g_loss, hinge_d_loss, hinge_g_loss, init_normal_

ARCHS = ("cnn", "resnet")
LOSSES = {"hinge": (hinge_d_loss, hinge_g_loss), "standard": (gan_d_loss, gan_g_loss)}


@dataclass(frozen=True)
class SNGANConfig(ModelConfig):
    arch: str = "cnn"  # "cnn": the standard CNN (Table 3); "resnet": the ResNet (Table 4), CIFAR-10's default
    z_dim: int = 128  # length of the noise vector z
    z_dist: str = "normal"  # "normal" N(0, I) (the paper's) or "uniform" (standard CNN only)
    g_channels: int = 64  # cnn: G's last hidden width, doubling towards M_g x M_g; resnet: its block width
    d_channels: int = 64  # cnn: D's first width, doubling per down-sampling pair; resnet: its block width
    loss: str = "hinge"  # "hinge" or "standard" (non-saturating cross-entropy)
    n_dis: int = 1  # discriminator updates per generator update
    power_iterations: int = 1  # power iterations per D forward pass (training mode)
    lr: float = 2e-4  # Adam alpha, G and D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    lr_decay_steps: int | None = None  # alpha decays linearly to 0 over this many G steps; None: constant
    g_batch_multiple: int = 1  # fakes per G update = this x the batch size (the ResNet's n_gen_samples 128 = 2 x 64)
    init_std: float = 0.02  # std of the standard CNN's N(0, std) weight init (chainer-gan-lib); the ResNet: Glorot

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise GanbenchError(f"sngan: arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.arch == "resnet":
            projection.base_and_blocks(self.image_size, "sngan (arch=resnet)")
            if self.z_dist != "normal":
                raise GanbenchError("sngan: arch=resnet samples z from N(0, I) (z_dist=normal)")
        else:
            g_base(self.image_size)
        if self.loss not in LOSSES:
            raise GanbenchError(f"sngan: loss must be 'hinge' or 'standard', got {self.loss!r}")
        if self.channels not in (1, 3):
            raise GanbenchError(f"sngan: channels must be 1 or 3, got {self.channels}")
        if self.n_dis < 1 or self.power_iterations < 1 or self.g_batch_multiple < 1:
            raise GanbenchError("sngan: n_dis, power_iterations and g_batch_multiple must be >= 1")
        if self.lr_decay_steps is not None and self.lr_decay_steps < 1:
            raise GanbenchError(f"sngan: lr_decay_steps must be positive or None, got {self.lr_decay_steps}")


def g_base(image_size: int) -> int:
    """M_g: 4 (or 6, 7) with image_size = M_g * 2**k, k >= 2."""
    for base in (4, 6, 7):
        k = math.log2(image_size / base) if image_size >= base else -1
        if k >= 2 and k == int(k):
            return base
    raise GanbenchError(f"sngan: image_size must be 4, 6 or 7 times a power of two >= 4 "
                        f"(16, 28, 32, 48, 64...), got {image_size}")


class Generator(GenerativeModel):
    def __init__(self, c: SNGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist=c.z_dist, channels=c.channels, image_size=c.image_size)
        self.base = g_base(c.image_size)
        n_up = int(math.log2(c.image_size // self.base))
        widths = [c.g_channels * 2 ** (n_up - i) for i in range(n_up + 1)]  # e.g. 512 256 128 64
        self.width0 = widths[0]
        self.dense = nn.Sequential(nn.Linear(c.z_dim, widths[0] * self.base ** 2),
                                   nn.BatchNorm1d(widths[0] * self.base ** 2), nn.ReLU(True))
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.Conv2d(widths[-1], c.channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def generate(self, z, labels=None):
        return self.net(self.dense(z).view(len(z), self.width0, self.base, self.base))


class Discriminator(nn.Module):
    def __init__(self, c: SNGANConfig):
        super().__init__()
        n_down, size = 0, c.image_size
        while size > 7 or n_down < 3:  # 32 -> 4 (3 pairs), 64 -> 4 (4), 28 -> 3 (3)
            size, n_down = size // 2, n_down + 1  # 4 x 4 stride 2 padding 1
        layers: list[nn.Module] = []
        cin = c.channels
        for i in range(n_down):
            w = c.d_channels * 2 ** i
            layers += [nn.Conv2d(cin, w, 3, 1, 1), nn.LeakyReLU(0.1, True),
                       nn.Conv2d(w, w, 4, 2, 1), nn.LeakyReLU(0.1, True)]
            cin = w
        # widths as in Table 3: each 3 x 3 convolution doubles them (chainer-gan-lib's
        # SNDCGANDiscriminator doubles in the 4 x 4 ones instead)
        layers += [nn.Conv2d(cin, cin * 2, 3, 1, 1), nn.LeakyReLU(0.1, True)]
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(cin * 2 * size * size, 1)
        init_normal_(self, c.init_std, batchnorm=False)
        add_spectral_norm(self, c.power_iterations)

    def forward(self, x, labels=None):  # labels: unused (unconditional), for the shared update
        return self.out(self.net(x).flatten(1)).flatten()  # D(x), (N,)


def add_spectral_norm(module: nn.Module, n_power_iterations: int) -> None:
    """Spectral-normalise the weight of every convolution and linear layer of ``module``
    (after initialising it: the power iteration starts from the final weights)."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            spectral_norm(m, n_power_iterations=n_power_iterations)


def resnet_networks(c: SNGANConfig) -> tuple[GenerativeModel, nn.Module]:
    """Table 4's ResNet: the projection cGAN's G and D without classes; D's head has no bias
    (``snresnet_32.py``: ``l5 = SNLinear(ch, 1, nobias=True)``)."""
    unconditional = dataclasses.replace(c, num_classes=0)
    return (projection.Generator(unconditional),
            projection.Discriminator(unconditional, power_iterations=c.power_iterations, psi_bias=False))


class SNGAN(GANModel):
    def __init__(self, config: SNGANConfig):
        super().__init__(config)
        if config.arch == "resnet":
            self.generator, self.discriminator = resnet_networks(config)
        else:
            self.generator = Generator(config)
            self.discriminator = Discriminator(config)
            init_normal_(self.generator, config.init_std, batchnorm=False)  # D: initialised before its spectral norm
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)
        self.base_lrs = (config.lr, config.lr)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        d_loss, g_loss = LOSSES[c.loss]
        return projection.alternating_step(self, batch, step, ctx, c.n_dis, c.lr_decay_steps,
                                           g_batch_multiple=c.g_batch_multiple, d_loss=d_loss, g_loss=g_loss)


_MNIST_LIKE = {"image_size": 32}
_PAPER_64 = {"image_size": 64, "channels": 3}
# Table 4 / sn_cifar10_unconditional.yml: G 256 wide, D 128 wide, hinge, Adam 2e-4 (0, 0.9),
# n_dis 5, n_gen_samples 128 (2 x the D batch of 64), alpha decayed linearly over 50k G updates
_CIFAR_RESNET = {"image_size": 32, "channels": 3, "arch": "resnet", "g_channels": 256, "d_channels": 128,
                 "loss": "hinge", "beta1": 0.0, "beta2": 0.9, "n_dis": 5, "lr_decay_steps": 50_000,
                 "g_batch_multiple": 2}
RECIPES = {
    "default": TrainingRecipe(batch_size=64, source="standard CNN: chainer-gan-lib train.py --batchsize 64"),
    "cifar10": TrainingRecipe(batch_size=64, source="ResNet: sngan_projection configs/sn_cifar10_unconditional.yml "
                                                    "batchsize 64 per D update; its n_gen_samples 128 for G "
                                                    "is g_batch_multiple=2"),
}
DEPARTURES = [
    ("MNIST-like data: the standard CNN at 32 px with 1 channel, setting C",
     "the paper has no MNIST experiment; its CIFAR-10 standard CNN is the network sized for small images"),
    ("CelebA at 64 px: the standard CNN with one more stage (M_g = 4)",
     "the paper's standard CNNs are for 32 px (CIFAR-10, M_g = 4) and 48 px (STL-10, M_g = 6); no CelebA"),
    ("standard CNN D: each 3 x 3 convolution doubles the width, as Table 3",
     "chainer-gan-lib's SNDCGANDiscriminator doubles in the 4 x 4 ones instead; the paper's table is followed"),
    ("ResNet G's linear and output-convolution biases start at PyTorch's default uniform values; BatchNorm eps 1e-5",
     "Chainer starts them at 0 with eps 2e-5; the Generator is the projection cGAN's, shared with SAGAN, "
     "whose tested initialisation would change"),
]


@register_model(
    "sngan", config=SNGANConfig, paper="Spectral Normalization for Generative Adversarial Networks",
    authors="Miyato, Kataoka, Koyama, Yoshida", arxiv="1802.05957", year=2018, task="unconditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": _CIFAR_RESNET, "celeba": _PAPER_64},
    description="spectral norm on every D layer, hinge loss; CIFAR-10: the ResNet (Adam 2e-4 (0, 0.9), "
                "n_dis=5, linear decay); elsewhere the standard CNN (Adam 2e-4 (0.5, 0.999), n_dis=1)",
    reference_code="https://github.com/pfnet-research/chainer-gan-lib (common/net.py, common/sn), "
                   "https://github.com/pfnet-research/sngan_projection (ResNet, sn_cifar10_unconditional.yml)",
    # Lucic et al. 2018's wide ranges; beta2 between the values of the paper's settings A-F (Table 1: 0.9, 0.999)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "beta2": Uniform(0.9, 0.999),
                  "n_dis": IntRange(1, 5)},
    recipes=RECIPES, departures=DEPARTURES,
    # tests: narrow nets at 28 px (D narrower than G, else D wins outright), a faster learning rate
    tiny={"image_size": 28, "g_channels": 8, "d_channels": 4, "z_dim": 32, "lr": 1e-3}, test_steps=200)
def build(config: SNGANConfig) -> SNGAN:
    return SNGAN(config)
