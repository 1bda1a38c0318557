"""CycleGAN: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017. arXiv:1703.10593.

Followed here (Sections 3-4 and the appendix of the paper):

* Two generators G: X -> Y and F: Y -> X, each the ResNet of Johnson et al.:
  c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3 (reflection padding, instance
  normalisation, ReLU; tanh output); 9 residual blocks at 256 px, 6 at 128 px.
* Two 70 x 70 PatchGAN discriminators D_Y, D_X (C64-C128-C256-C512, instance norm,
  LeakyReLU 0.2); at 32 px a single stride-2 layer: 16 x 16 patches (``d_layers``).
* Least-squares GAN loss: D minimises E[(D(y) - 1)^2] + E[D(G(x))^2] (halved), G
  minimises E[(D(G(x)) - 1)^2]; cycle consistency ||F(G(x)) - x||_1 + ||G(F(y)) - y||_1
  with lambda = 10; identity loss ||G(y) - y||_1 + ||F(x) - x||_1 weighted 0.5 * lambda.
* D is updated from a history of the 50 most recent generated images (Shrivastava et
  al.): each new image replaces a random stored one with probability 1/2, returning the
  stored one instead.
* Adam lr 2e-4, beta1 0.5; the lr is constant for the first 100 epochs and decays
  linearly to zero over the next 100, here a function of the step
  (``lr_constant_steps``, ``lr_decay_steps``); weights from N(0, 0.02); batch 1 (the
  recipe, "for all experiments in the paper").

X is the source domain (``Batch.extra["source"]``), Y the target domain (``Batch.images``);
train on ``mnist-edges-unpaired`` (the two domains shuffled independently). The
evaluated generator is G (X -> Y).
Reference code consulted for layer details: junyanz/pytorch-CycleGAN-and-pix2pix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import ConditionalImageGenerator, LatentSpec
from ganbench.models.losses import init_normal_
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)


@dataclass(frozen=True)
class CycleGANConfig(ModelConfig):
    source_channels: int = 1  # channels of domain X (the source images)
    g_channels: int = 64  # ngf: width of the first generator layer (c7s1-64)
    g_blocks: int = 6  # residual blocks of each generator (the paper: 6 at 128 px, 9 at 256 px)
    d_channels: int = 64  # ndf: width of the first PatchGAN layer
    d_layers: int = 1  # stride-2 layers of the PatchGAN (3 at 256 px = 70x70 patches; 1 at 32 px = 16x16)
    lambda_cycle: float = 10.0  # weight of each cycle-consistency L1 term
    lambda_identity: float = 0.5  # identity loss weight, as a fraction of lambda_cycle
    pool_size: int = 50  # generated images kept in each history buffer (0: no buffer)
    lr: float = 2e-4  # Adam learning rate of all four networks
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    lr_constant_steps: int = 100_000  # steps at the initial lr (the paper: 100 epochs)
    lr_decay_steps: int = 100_000  # steps of linear decay to zero afterwards (the paper: 100 epochs)
    init_std: float = 0.02  # std of the N(0, std) weight init
    allow_zero = frozenset({"pool_size"})  # may be 0 (see ModelConfig.allow_zero)

    def __post_init__(self):
        if self.image_size % 4 or self.image_size < 16:
            raise GanbenchError(f"cyclegan: image_size must be a multiple of 4, >= 16, got {self.image_size}")
        if self.d_layers < 1 or 2 ** self.d_layers > self.image_size // 4:
            raise GanbenchError(f"cyclegan: d_layers must lie in 1..{int(math.log2(self.image_size // 4))}")


# ---------------------------------------------------------------------------------------
# Losses and schedule (pure functions)
# ---------------------------------------------------------------------------------------
def lsgan_d_loss(pred_real: torch.Tensor, pred_fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (E[(D(y) - 1)^2] + E[D(G(x))^2])."""
    return 0.5 * ((pred_real - 1).pow(2).mean() + pred_fake.pow(2).mean())


def lsgan_g_loss(pred_fake: torch.Tensor) -> torch.Tensor:
    """E[(D(G(x)) - 1)^2]."""
    return (pred_fake - 1).pow(2).mean()


def linear_decay_lr(step: int, lr: float, constant_steps: int, decay_steps: int) -> float:
    """lr for ``step``: constant, then linearly to 0 over ``decay_steps``."""
    if step < constant_steps:
        return lr
    return lr * max(0.0, 1.0 - (step - constant_steps) / max(1, decay_steps))


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------
def _conv_norm_relu(cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, reflect: int = 0) -> list[nn.Module]:
    return [*([nn.ReflectionPad2d(reflect)] if reflect else []), nn.Conv2d(cin, cout, k, stride, pad),
            nn.InstanceNorm2d(cout), nn.ReLU(True)]


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_norm_relu(width, width, 3, reflect=1), nn.ReflectionPad2d(1),
                                  nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width))

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(ConditionalImageGenerator):
    """c7s1-k, d2k, d4k, R4k x blocks, u2k, uk, c7s1-out (Johnson et al. 2016)."""

    def __init__(self, cin: int, cout: int, width: int, blocks: int, image_size: int):
        super().__init__()
        self.latent = LatentSpec(z_dim=0, channels=cout, image_size=image_size, source_channels=cin)
        k = width
        layers = [*_conv_norm_relu(cin, k, 7, reflect=3), *_conv_norm_relu(k, 2 * k, 3, 2, 1),
                  *_conv_norm_relu(2 * k, 4 * k, 3, 2, 1)]
        layers += [ResidualBlock(4 * k) for _ in range(blocks)]
        for w in (2 * k, k):
            layers += [nn.ConvTranspose2d(2 * w, w, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(w), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(k, cout, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def translate(self, source, z=None):
        return self.net(source)


class PatchDiscriminator(nn.Module):
    """C64 (no norm) - C128 - ... - C(stride 1) - 1-channel patch map; instance norm, LeakyReLU 0.2."""

    def __init__(self, cin: int, width: int, n_layers: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        w = width
        for i in range(1, n_layers + 1):
            w_next = width * min(2 ** i, 8)
            layers += [nn.Conv2d(w, w_next, 4, 2 if i < n_layers else 1, 1), nn.InstanceNorm2d(w_next),
                       nn.LeakyReLU(0.2, True)]
            w = w_next
        layers.append(nn.Conv2d(w, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class ImageHistory(nn.Module):
    """The buffer of ``size`` past generated images (a module: its contents are checkpointed)."""

    def __init__(self, size: int, channels: int, image_size: int):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, channels, image_size, image_size))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Images for D: each new image is stored while the buffer fills; afterwards with
        probability 1/2 it swaps with a random stored one, which is returned instead."""
        if self.size == 0:
            return images
        out = images.detach().clone()
        n = len(images)
        coins = torch.rand(n, generator=generator, device=generator.device)
        slots = torch.randint(0, self.size, (n,), generator=generator, device=generator.device)
        for i in range(n):
            filled = int(self.count)
            if filled < self.size:
                self.images[filled] = out[i].to(self.images.dtype)
                self.count += 1
            elif coins[i] < 0.5:
                j = int(slots[i])
                stored = self.images[j].clone()
                self.images[j] = out[i].to(self.images.dtype)
                out[i] = stored.to(out.dtype)
        return out


class CycleGAN(GANModel):
    def __init__(self, config: CycleGANConfig):
        super().__init__(config)
        c = config
        if c.source_channels != c.channels and c.lambda_identity > 0:
            raise GanbenchError("cyclegan: the identity loss needs domains with the same channels; "
                                "--set lambda_identity=0")
        self.generator = ResnetGenerator(c.source_channels, c.channels, c.g_channels, c.g_blocks, c.image_size)  # G
        self.generator_back = ResnetGenerator(c.channels, c.source_channels, c.g_channels, c.g_blocks,
                                              c.image_size)  # F: Y -> X
        self.discriminator_y = PatchDiscriminator(c.channels, c.d_channels, c.d_layers)
        self.discriminator_x = PatchDiscriminator(c.source_channels, c.d_channels, c.d_layers)
        self.history_y = ImageHistory(c.pool_size, c.channels, c.image_size)
        self.history_x = ImageHistory(c.pool_size, c.source_channels, c.image_size)
        for net in (self.generator, self.generator_back, self.discriminator_y, self.discriminator_x):
            init_normal_(net, c.init_std)
        betas = (c.beta1, c.beta2)
        self.opt_g = torch.optim.Adam([*self.generator.parameters(), *self.generator_back.parameters()],
                                      lr=c.lr, betas=betas)
        self.opt_d = torch.optim.Adam([*self.discriminator_y.parameters(), *self.discriminator_x.parameters()],
                                      lr=c.lr, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        if "source" not in batch.extra:
            raise GanbenchError("cyclegan trains on two image domains (e.g. --dataset mnist-edges-unpaired)")
        c = self.config
        lr = linear_decay_lr(step, c.lr, c.lr_constant_steps, c.lr_decay_steps)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        x, y = batch.extra["source"], batch.images
        G, F_, D_y, D_x = self.generator, self.generator_back, self.discriminator_y, self.discriminator_x
        # generators: adversarial + cycle + identity, D frozen
        with frozen(D_y, D_x):
            with ctx.autocast():
                fake_y, fake_x = G(x), F_(y)
                rec_x, rec_y = F_(fake_y), G(fake_x)
                loss_gan = lsgan_g_loss(D_y(fake_y)) + lsgan_g_loss(D_x(fake_x))
                loss_cycle = (rec_x - x).abs().mean() + (rec_y - y).abs().mean()
                loss_idt = torch.zeros((), device=x.device)
                if c.lambda_identity > 0:
                    loss_idt = (G(y) - y).abs().mean() + (F_(x) - x).abs().mean()
                loss_g = loss_gan + c.lambda_cycle * loss_cycle + c.lambda_cycle * c.lambda_identity * loss_idt
            ctx.backward_step(loss_g, self.opt_g)
        # discriminators on real images and on the history of generated ones
        old_y = self.history_y.query(fake_y.detach(), ctx.generator)
        old_x = self.history_x.query(fake_x.detach(), ctx.generator)
        with ctx.autocast():
            loss_d = lsgan_d_loss(D_y(y), D_y(old_y)) + lsgan_d_loss(D_x(x), D_x(old_x))
        ctx.backward_step(loss_d, self.opt_d)
        return {"loss_d": loss_d.detach(), "loss_g_gan": loss_gan.detach(), "loss_cycle": loss_cycle.detach(),
                "loss_identity": loss_idt.detach(), "lr": lr}


_MNIST_32 = {"image_size": 32}


@register_model(
    "cyclegan", config=CycleGANConfig,
    paper="Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
    authors="Zhu, Park, Isola, Efros", arxiv="1703.10593", year=2017, task="unpaired translation",
    defaults={"mnist-edges-unpaired": _MNIST_32, "mnist-edges": _MNIST_32, "mnist-degraded": _MNIST_32},
    description="Two ResNet generators, two PatchGAN D, LSGAN + 10 * cycle + 5 * identity, history of 50",
    reference_code="https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix (layer details)",
    # Lucic et al. 2018's wide ranges; lambda_cycle a decade either side of the paper's 10 (no range given);
    # lambda_identity from 0 (most of the paper's tasks) past its 0.5 (paintings -> photos)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "lambda_cycle": LogUniform(1.0, 100.0),
                  "lambda_identity": Uniform(0.0, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=1, source="Zhu et al. Sec. 7.1; junyanz/pytorch-CycleGAN-"
                                                            "and-pix2pix docs/tips.md: batch size 1 for all "
                                                            "experiments in the paper")},
    departures=[
        ("32 x 32 images, 6 residual blocks, a PatchGAN with one stride-2 layer (16 x 16 patches)",
         "the paper's 128 / 256 px networks scaled to MNIST-sized data"),
        ("the learning-rate schedule counts steps (100,000 constant, 100,000 linear decay), not epochs",
         "the paper's 100 + 100 epochs; ganbench schedules are functions of the step so resumed runs match"),
        ("the identity loss (0.5 * lambda) is on by default",
         "the authors' code default; the paper uses it only for painting <-> photo"),
        ("no random jitter or mirroring", "the MNIST-derived domains are small and aligned"),
    ],
    # narrow nets learn faster with a larger step; same losses and layer structure
    tiny={"g_channels": 8, "g_blocks": 2, "d_channels": 8, "image_size": 32, "lr": 1e-3}, test_steps=100)
def build(config: CycleGANConfig) -> CycleGAN:
    return CycleGAN(config)
