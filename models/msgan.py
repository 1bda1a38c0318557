"""MSGAN: Mao, Lee, Tseng, Ma & Yang, "Mode Seeking Generative Adversarial Networks for
Diverse Image Synthesis", CVPR 2019. arXiv:1903.05628.

The mode-seeking regulariser (Section 3.2) asks a conditional generator to map two
latents z1, z2 for the same condition c to images that differ in proportion to how the
latents differ::

    L_ms = max_G  d_I(G(c, z1), G(c, z2)) / d_z(z1, z2)

minimised in its inverse form, ``L_ms^-1 = 1 / (ratio + eps)``, and added to the
generator's loss: L_G = L_ori + lambda_ms * L_ms^-1. As in the authors' code, d_I and
d_z are mean absolute differences and eps = 1e-5; each step draws two latents for every
label of the batch (the real batch's labels), and D sees both halves as fakes.

Base model: the paper's conditioned-generation experiment on CIFAR-10 builds on a
class-conditional DCGAN (the authors' ``DCGAN-Mode-Seeking``): G embeds z and the
one-hot label with two 4 x 4 transposed-convolution branches (BatchNorm, ReLU) whose
maps are concatenated and up-sampled by 4 x 4 stride-2 transposed convolutions
(BatchNorm, ReLU; tanh output); D reads the image and the label broadcast to
``num_classes`` constant planes with two 4 x 4 stride-2 convolution branches
(LeakyReLU 0.2), concatenated, then strided convolutions (BatchNorm, LeakyReLU) to one
logit. Standard GAN loss (non-saturating for G), Adam lr 2e-4, betas (0.5, 0.999),
lambda_ms = 1, batch 32 (the recipe: the code's ``--batch_size`` default; each step
generates 2 x 32 images). Widths: ``d`` = 128 in the code; 28/32 px for MNIST-like data
(one up-sampling fewer than 64 px).

``ms_weight=0`` trains the same conditional DCGAN without the regulariser, the baseline
the paper compares against. Diversity: :func:`same_class_diversity` (mean pairwise
distance between features of same-class samples drawn with different z, e.g. the
``lenet-mnist`` extractor's ``pool`` features) and, where LPIPS backbone weights are
available, the ``lpips-diversity`` metric (:mod:`ganbench.metrics.diversity`), which
pairs same-class samples exactly as the paper's LPIPS evaluation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.losses import init_normal_
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  eval_mode, frozen, register_model)


@dataclass(frozen=True)
class MSGANConfig(ModelConfig):
    num_classes: int = 10  # label classes (from the dataset)
    z_dim: int = 100  # length of the noise vector z
    g_channels: int = 128  # d: G's finest width (doubling towards the base map)
    d_channels: int = 128  # d: D's width after the first (concatenated) layer
    ms_weight: float = 1.0  # lambda_ms of the mode-seeking term; 0 = plain conditional DCGAN
    ms_eps: float = 1e-5  # eps in 1 / (ratio + eps)
    lr: float = 2e-4  # Adam learning rate, G and D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # N(0, std) weight init

    def __post_init__(self):
        base_stages(self.image_size)
        if self.channels not in (1, 3):
            raise GanbenchError(f"msgan: channels must be 1 or 3, got {self.channels}")
        if self.num_classes < 2:
            raise GanbenchError("msgan is class-conditional: train it on a labelled dataset "
                                "(num_classes >= 2), e.g. --dataset mnist")
        if self.ms_weight < 0 or self.ms_eps <= 0:
            raise GanbenchError("msgan: ms_weight must be >= 0 and ms_eps > 0")


def base_stages(image_size: int) -> tuple[int, int]:
    """(base, n) with image_size = base * 2**n, base 4 (or 7 for 28 px), n >= 2."""
    for base in (4, 7):
        n = math.log2(image_size / base) if image_size >= base else -1
        if n >= 2 and n == int(n):
            return base, int(n)
    raise GanbenchError(f"msgan: image_size must be 4 * 2**n (16, 32, 64...) or 28, got {image_size}")


class Generator(GenerativeModel):
    def __init__(self, c: MSGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist="normal", num_classes=c.num_classes,
                                 channels=c.channels, image_size=c.image_size)
        base, n = base_stages(c.image_size)
        widths = [c.g_channels * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 4d, 2d, d
        half = widths[0] // 2
        self.z_branch = nn.Sequential(nn.ConvTranspose2d(c.z_dim, half, base, 1, 0),
                                      nn.BatchNorm2d(half), nn.ReLU(True))
        self.y_branch = nn.Sequential(nn.ConvTranspose2d(c.num_classes, half, base, 1, 0),
                                      nn.BatchNorm2d(half), nn.ReLU(True))
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], c.channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def generate(self, z, labels=None):
        if labels is None:
            raise GanbenchError("msgan's generator is class-conditional and needs labels")
        y = F.one_hot(labels.long(), self.latent.num_classes).to(z.dtype)
        h = torch.cat([self.z_branch(z[:, :, None, None]), self.y_branch(y[:, :, None, None])], 1)
        return self.net(h)


class Discriminator(nn.Module):
    def __init__(self, c: MSGANConfig):
        super().__init__()
        self.num_classes = c.num_classes
        base, n = base_stages(c.image_size)
        widths = [c.d_channels * 2 ** i for i in range(n)]  # e.g. d, 2d, 4d
        half = widths[0] // 2
        self.x_branch = nn.Sequential(nn.Conv2d(c.channels, half, 4, 2, 1), nn.LeakyReLU(0.2, True))
        self.y_branch = nn.Sequential(nn.Conv2d(c.num_classes, half, 4, 2, 1), nn.LeakyReLU(0.2, True))
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, base, 1, 0)]
        self.net = nn.Sequential(*layers)

    def forward(self, x, labels):
        y = F.one_hot(labels.long(), self.num_classes).to(x.dtype)[:, :, None, None]
        y = y.expand(-1, -1, x.shape[2], x.shape[3])
        return self.net(torch.cat([self.x_branch(x), self.y_branch(y)], 1)).flatten()  # logits (N,)


def mode_seeking_loss(fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                      eps: float = 1e-5) -> torch.Tensor:
    """L_ms^-1 = 1 / (mean|G(c, z1) - G(c, z2)| / mean|z1 - z2| + eps) (the authors' form)."""
    ratio = (fake1 - fake2).abs().mean() / (z1 - z2).abs().mean()
    return 1.0 / (ratio + eps)


class MSGAN(GANModel):
    def __init__(self, config: MSGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        init_normal_(self.generator, config.init_std)
        init_normal_(self.discriminator, config.init_std)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        if batch.labels is None:
            raise GanbenchError("msgan needs labelled training data")
        real, labels = batch.images, batch.labels
        n = len(real)
        z, _ = ctx.latents(self.generator.latent, 2 * n)  # z1 = z[:n], z2 = z[n:]
        labels2 = torch.cat([labels, labels])
        with ctx.autocast():
            fake = ctx.images(self.generator(z, labels2))
        with ctx.autocast():
            d_real = self.discriminator(real, labels)
            d_fake = self.discriminator(fake.detach(), labels2)
            loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                      + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        ctx.backward_step(loss_d, self.opt_d)
        with frozen(self.discriminator):
            with ctx.autocast():
                d_gen = self.discriminator(fake, labels2)
                loss_adv = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
                loss_ms = mode_seeking_loss(fake[:n].float(), fake[n:].float(), z[:n], z[n:], self.config.ms_eps)
                loss_g = loss_adv + self.config.ms_weight * loss_ms
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "loss_adv": loss_adv.detach(),
                "loss_ms": loss_ms.detach(),
                "d_real": torch.sigmoid(d_real.detach().float()).mean(),
                "d_fake": torch.sigmoid(d_fake.detach().float()).mean()}


# ---------------------------------------------------------------------------------------
# Diversity
# ---------------------------------------------------------------------------------------
def same_class_diversity(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean Euclidean distance between the features (N, D) of distinct samples of the same
    class, averaged over classes with at least two samples (each class weighs equally)."""
    if features.dim() != 2 or len(features) != len(labels):
        raise InputError(f"expected features (N, D) and labels (N,), got {tuple(features.shape)} "
                         f"and {tuple(labels.shape)}")
    feats = features.double()
    means = []
    for cls in labels.unique():
        x = feats[labels == cls]
        m = len(x)
        if m < 2:
            continue
        d = torch.cdist(x, x)
        means.append(d.sum() / (m * (m - 1)))  # the diagonal is zero
    if not means:
        raise InputError("no class has two samples")
    return float(torch.stack(means).mean())


@torch.no_grad()
def generated_class_diversity(generator: GenerativeModel, extractor, *, per_class: int = 100, seed: int = 0,
                              feature: str = "pool", batch_size: int = 250) -> float:
    """:func:`same_class_diversity` of ``per_class`` samples of every class (different z,
    seeded), in ``extractor``'s ``feature`` space (e.g. ``lenet-mnist`` "pool")."""
    from ganbench.generative import sample_latents
    from ganbench.images import float_to_uint8

    k = generator.latent.num_classes
    if not k:
        raise InputError("generated_class_diversity needs a class-conditional generator")
    with eval_mode(generator):
        device = next(generator.parameters()).device
        z, _ = sample_latents(generator.latent, k * per_class, torch.Generator().manual_seed(seed), device)
        labels = torch.arange(k, device=device).repeat_interleave(per_class)
        feats = []
        for i in range(0, len(z), batch_size):
            images = float_to_uint8(generator(z[i:i + batch_size], labels[i:i + batch_size]).float().cpu(),
                                    generator.latent.output_range)
            feats.append(extractor(images, (feature,))[feature].cpu())
    return same_class_diversity(torch.cat(feats), labels.cpu())


_MNIST_LIKE = {"image_size": 32}


@register_model(
    "msgan", config=MSGANConfig, paper="Mode Seeking Generative Adversarial Networks for Diverse Image Synthesis",
    authors="Mao, Lee, Tseng, Ma, Yang", arxiv="1903.05628", year=2019, task="class-conditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": {"image_size": 32, "channels": 3}},
    description="class-conditional DCGAN with the mode-seeking regulariser 1 / (d_I / d_z + eps), lambda 1",
    reference_code="https://github.com/HelenMao/MSGAN (DCGAN-Mode-Seeking: regulariser form, eps)",
    # Lucic et al. 2018's wide ranges; ms_weight a decade either side of the paper's lambda_ms = 1 (no range given)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "ms_weight": LogUniform(0.1, 10.0)},
    recipes={"default": TrainingRecipe(batch_size=32, source="HelenMao/MSGAN DCGAN-Mode-Seeking/options.py: "
                                                             "--batch_size default 32")},
    departures=[
        ("the adversarial losses are means over all 2n generated images; the authors' code sums the losses of "
         "the two halves",
         "so lambda_ms = 1 weighs the mode-seeking term twice as heavily against the adversarial loss as the "
         "authors' code does; the paper's L_ori leaves the scale open"),
        ("no weight decay; the authors' Adam uses weight_decay 1e-4",
         "the paper does not mention it"),
    ],
    tiny={"image_size": 16, "g_channels": 16, "d_channels": 16, "z_dim": 32, "lr": 2e-3}, test_steps=700)
def build(config: MSGANConfig) -> MSGAN:
    return MSGAN(config)
