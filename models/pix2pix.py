"""pix2pix: Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional
Adversarial Networks", CVPR 2017. arXiv:1611.07004.

Followed here (Sections 3-4 and 6.1 of the paper):

* G: a U-Net encoder-decoder with skip connections between mirrored layers. Encoder
  C64-C128-C256-C512-C512-... (4 x 4 convolutions, stride 2, LeakyReLU 0.2, BatchNorm
  except on the first layer and the 1 x 1 bottleneck), down to 1 x 1; decoder of
  up-convolutions (ReLU, BatchNorm) whose inputs concatenate the mirrored encoder
  features, tanh output. The noise z of the cGAN is dropout (50%) in the first three
  decoder layers, applied during training.
* D: a PatchGAN on the channel-wise concatenation (source, image): C64-C128-... 4 x 4
  convolutions, a 1-channel map of per-patch logits. At 256 px the paper's 70 x 70 D has
  three stride-2 layers; at 32 px one stride-2 layer gives 16 x 16 patches (``d_layers``).
* Objective: G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G), lambda = 100, with the
  non-saturating G loss; D's objective is halved; Adam lr 2e-4, beta1 0.5; weights from
  N(0, 0.02); batch 1 (the recipe: the authors' ``train.lua`` default, where BatchNorm
  acts as instance normalisation).

Scaled to 32 x 32 (five down-samplings instead of eight). Evaluation runs G in eval mode
(no dropout, BatchNorm running statistics), so a translation depends only on its source;
the paper instead keeps dropout and test-batch statistics at test time.
Reference code consulted for layer details: junyanz/pytorch-CycleGAN-and-pix2pix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import ConditionalImageGenerator, LatentSpec
from ganbench.models.losses import init_normal_
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)


@dataclass(frozen=True)
class Pix2PixConfig(ModelConfig):
    source_channels: int = 1  # channels of the source image (edge maps: 1)
    g_channels: int = 64  # ngf: U-Net width of the first encoder layer; doubles per layer up to 8 * ngf
    d_channels: int = 64  # ndf: PatchGAN width of the first layer; doubles per stride-2 layer
    d_layers: int = 1  # stride-2 layers of the PatchGAN (3 at 256 px = 70x70 patches; 1 at 32 px = 16x16)
    dropout: float = 0.5  # dropout in the first three decoder layers (the cGAN's noise)
    l1_weight: float = 100.0  # lambda of the L1 term
    lr: float = 2e-4  # Adam learning rate, G and D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # std of the N(0, std) weight init

    def __post_init__(self):
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise GanbenchError(f"pix2pix: image_size must be a power of two >= 8 (U-Net down to 1x1), "
                                f"got {self.image_size}; use --set image_size=32")
        if self.d_layers < 1 or 2 ** self.d_layers > self.image_size // 4:
            raise GanbenchError(f"pix2pix: d_layers must lie in 1..{int(math.log2(self.image_size // 4))}")


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's L_L1 = E ||y - G(x)||_1 (mean over pixels)."""
    return (output - target).abs().mean()


class UNetGenerator(ConditionalImageGenerator):
    def __init__(self, c: Pix2PixConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=0, channels=c.channels, image_size=c.image_size,
                                 source_channels=c.source_channels)
        depth = int(math.log2(c.image_size))  # down to 1 x 1
        widths = [c.g_channels * min(2 ** i, 8) for i in range(depth)]
        self.down = nn.ModuleList()
        cin = c.source_channels
        for i, w in enumerate(widths):
            norm = 0 < i < depth - 1  # no norm on the first layer and the 1x1 bottleneck
            self.down.append(nn.Sequential(
                *([nn.LeakyReLU(0.2)] if i else []),
                nn.Conv2d(cin, w, 4, 2, 1, bias=not norm),
                *([nn.BatchNorm2d(w)] if norm else [])))
            cin = w
        self.up = nn.ModuleList()
        for j, i in enumerate(reversed(range(depth))):
            cin = widths[i] * (1 if i == depth - 1 else 2)  # the bottleneck has no skip
            last = i == 0
            cout = c.channels if last else widths[i - 1]
            layers: list[nn.Module] = [nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=last)]
            if last:
                layers.append(nn.Tanh())
            else:
                layers.append(nn.BatchNorm2d(cout))
                if j < 3 and c.dropout > 0:
                    layers.append(nn.Dropout(c.dropout))
            self.up.append(nn.Sequential(*layers))

    def translate(self, source, z=None):
        skips = []
        x = source
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = skips.pop()
        for layer in self.up:
            x = layer(x)
            if skips:
                x = torch.cat([x, skips.pop()], 1)
        return x


class PatchDiscriminator(nn.Module):
    """PatchGAN on (source, image): per-patch logits (N, 1, h, w)."""

    def __init__(self, in_channels: int, width: int, n_layers: int, norm: type[nn.Module] = nn.BatchNorm2d):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        w = width
        for i in range(1, n_layers + 1):  # stride 2 ... then one stride-1 layer
            w_next = width * min(2 ** i, 8)
            layers += [nn.Conv2d(w, w_next, 4, 2 if i < n_layers else 1, 1, bias=False), norm(w_next),
                       nn.LeakyReLU(0.2)]
            w = w_next
        layers.append(nn.Conv2d(w, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Pix2Pix(GANModel):
    def __init__(self, config: Pix2PixConfig):
        super().__init__(config)
        self.generator = UNetGenerator(config)
        self.discriminator = PatchDiscriminator(config.source_channels + config.channels, config.d_channels,
                                                config.d_layers)
        init_normal_(self.generator, config.init_std)
        init_normal_(self.discriminator, config.init_std)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        if "source" not in batch.extra:
            raise GanbenchError("pix2pix trains on a paired dataset (e.g. --dataset mnist-edges)")
        source, target = batch.extra["source"], batch.images
        with ctx.autocast():
            fake = self.generator(source)
            logits_real = self.discriminator(torch.cat([source, target], 1))
            logits_fake = self.discriminator(torch.cat([source, fake.detach()], 1))
            loss_d = 0.5 * (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
                            + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
        ctx.backward_step(loss_d, self.opt_d)
        with frozen(self.discriminator):
            with ctx.autocast():
                logits_gen = self.discriminator(torch.cat([source, fake], 1))
                loss_gan = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
                loss_l1 = l1_loss(fake, target)
                loss_g = loss_gan + self.config.l1_weight * loss_l1
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g_gan": loss_gan.detach(), "loss_l1": loss_l1.detach()}


_MNIST_32 = {"image_size": 32}


@register_model(
    "pix2pix", config=Pix2PixConfig,
    paper="Image-to-Image Translation with Conditional Adversarial Networks",
    authors="Isola, Zhu, Zhou, Efros", arxiv="1611.07004", year=2017, task="paired translation",
    defaults={"mnist-edges": _MNIST_32, "mnist-degraded": _MNIST_32},
    description="U-Net G with skips and dropout noise, PatchGAN D on (source, output), cGAN + 100 L1",
    reference_code="https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix (layer details)",
    # Lucic et al. 2018's wide ranges; l1_weight a decade either side of the paper's lambda = 100 (no range given)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "l1_weight": LogUniform(10.0, 1000.0)},
    recipes={"default": TrainingRecipe(batch_size=1, source="phillipi/pix2pix train.lua: batchSize = 1, "
                                                            "the authors' default")},
    departures=[
        ("32 x 32 images: a five-level U-Net and a PatchGAN with one stride-2 layer (16 x 16 patches)",
         "the paper works at 256 px (eight levels, 70 x 70 patches); MNIST-sized data has room for five"),
        ("evaluation runs G in eval mode: no dropout, BatchNorm running statistics",
         "so a translation depends only on its source; the paper keeps dropout and test-batch statistics "
         "at test time"),
        ("no random jitter (resize to 286, random 256 crop) or mirroring",
         "the MNIST-derived pairs are small and aligned"),
    ],
    # narrow nets learn faster with a larger step; same losses and layer structure
    tiny={"g_channels": 8, "d_channels": 8, "image_size": 32, "lr": 1e-3}, test_steps=150)
def build(config: Pix2PixConfig) -> Pix2Pix:
    return Pix2Pix(config)
