"""SNGAN: Miyato, Kataoka, Koyama & Yoshida, "Spectral Normalization for Generative
Adversarial Networks", ICLR 2018. arXiv:1802.05957.

Every weight of the discriminator (convolutions and the final linear layer) is divided by
its spectral norm, estimated by one power iteration per forward pass (Algorithm 1), with
``torch.nn.utils.parametrizations.spectral_norm`` (a convolution's kernel is reshaped to
``out x (in * k * k)`` as in the paper).

The paper's "standard CNN" (Table 3, CIFAR-10 at 32 x 32, M_g = 4):

* G: z (128-d, N(0, I)) -> dense to ``M_g x M_g x 512``, BatchNorm, ReLU; 4 x 4 stride-2
  transposed convolutions to 256, 128, 64 channels (BatchNorm, ReLU); 3 x 3 stride-1
  convolution to the image, tanh.
* D: [3 x 3 stride 1, 4 x 4 stride 2] convolution pairs of 64, 128, 256 channels, then a
  3 x 3 convolution of 512 channels, LeakyReLU(0.1) after each; dense to one output.

Other resolutions change the number of up-/down-sampling stages (64 px: one more, M_g =
4; 28 px: M_g = 7 with one fewer stage in G, and three D pairs ending at 3 x 3);
widths scale with ``g_channels`` / ``d_channels`` (64 = the paper's).

Loss: the hinge loss (``loss="hinge"``, the paper's best results)::

    L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))],   L_G = -E[D(G(z))]

or the standard non-saturating loss (``loss="standard"``).

Optimisation: setting C of the paper (Table 1; the authors' chainer-gan-lib example for
SN-DCGAN): Adam alpha = 2e-4, beta1 = 0.5, beta2 = 0.999, n_dis = 1, batch 64. The
paper's ResNet experiments use alpha = 2e-4, beta1 = 0, beta2 = 0.9, n_dis = 5
(``--set beta1=0 --set beta2=0.9 --set n_dis=5``).

Reference code followed: https://github.com/pfnet-research/chainer-gan-lib (``common/net.py``,
``common/sn``, ``example.sh``).

ganbench hands ``train_step`` one real batch per generator step; with ``n_dis > 1`` the
discriminator updates of a step share it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.losses import gan_d_loss, gan_g_loss, hinge_d_loss, hinge_g_loss, init_normal_
from ganbench.models.base import Batch, GANModel, ModelConfig, TrainContext, frozen, register_model


@dataclass(frozen=True)
class SNGANConfig(ModelConfig):
    z_dim: int = 128  # length of the noise vector z
    z_dist: str = "normal"  # "normal" N(0, I) (the paper's) or "uniform"
    g_channels: int = 64  # G's last hidden width; doubling towards the M_g x M_g map
    d_channels: int = 64  # D's first width; doubling per down-sampling pair
    loss: str = "hinge"  # "hinge" or "standard" (non-saturating cross-entropy)
    n_dis: int = 1  # discriminator updates per generator update
    power_iterations: int = 1  # power iterations per D forward pass (training mode)
    lr: float = 2e-4  # Adam alpha, G and D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # std of the N(0, std) weight init (chainer-gan-lib)

    def __post_init__(self):
        g_base(self.image_size)
        if self.loss not in ("hinge", "standard"):
            raise GanbenchError(f"sngan: loss must be 'hinge' or 'standard', got {self.loss!r}")
        if self.channels not in (1, 3):
            raise GanbenchError(f"sngan: channels must be 1 or 3, got {self.channels}")
        if self.n_dis < 1 or self.power_iterations < 1:
            raise GanbenchError("sngan: n_dis and power_iterations must be >= 1")


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

    def forward(self, x):
        return self.out(self.net(x).flatten(1)).flatten()  # D(x), (N,)


def add_spectral_norm(module: nn.Module, n_power_iterations: int) -> None:
    """Spectral-normalise the weight of every convolution and linear layer of ``module``
    (after initialising it: the power iteration starts from the final weights)."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            spectral_norm(m, n_power_iterations=n_power_iterations)


def d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "hinge":
        return hinge_d_loss(d_real, d_fake)
    return gan_d_loss(d_real, d_fake)


def g_loss(d_fake: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "hinge":
        return hinge_g_loss(d_fake)
    return gan_g_loss(d_fake)


class SNGAN(GANModel):
    def __init__(self, config: SNGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        init_normal_(self.generator, config.init_std, batchnorm=False)  # D: initialised before its spectral norm
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        n = len(batch.images)
        for real_batch in ctx.real_batches(batch, c.n_dis):  # a fresh batch per D update
            real = real_batch.images
            z, _ = ctx.latents(self.generator.latent, n)
            with ctx.autocast():
                with torch.no_grad():
                    fake = ctx.images(self.generator(z))
                d_real = self.discriminator(real).float()
                d_fake = self.discriminator(fake).float()
                loss_d = d_loss(d_real, d_fake, c.loss)
            ctx.backward_step(loss_d, self.opt_d)
        with frozen(self.discriminator):
            z, _ = ctx.latents(self.generator.latent, n)
            with ctx.autocast():
                loss_g = g_loss(self.discriminator(ctx.images(self.generator(z))).float(), c.loss)
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}


_MNIST_LIKE = {"image_size": 32}
_CIFAR = {"image_size": 32, "channels": 3}  # the paper's CIFAR-10 resolution
_PAPER_64 = {"image_size": 64, "channels": 3}


@register_model(
    "sngan", config=SNGANConfig, paper="Spectral Normalization for Generative Adversarial Networks",
    authors="Miyato, Kataoka, Koyama, Yoshida", arxiv="1802.05957", year=2018, task="unconditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": _CIFAR, "celeba": _PAPER_64},
    description="standard CNN with spectral norm on every D layer, hinge loss, Adam 2e-4 (0.5, 0.999), n_dis=1",
    reference_code="https://github.com/pfnet-research/chainer-gan-lib (common/net.py, common/sn)",
    # tests: narrow nets at 28 px (D narrower than G, else D wins outright), a faster learning rate
    tiny={"image_size": 28, "g_channels": 8, "d_channels": 4, "z_dim": 32, "lr": 1e-3}, test_steps=200)
def build(config: SNGANConfig) -> SNGAN:
    return SNGAN(config)
