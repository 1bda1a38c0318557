"""A toy MLP GAN in the spirit of Goodfellow et al., "Generative Adversarial Nets",
NeurIPS 2014 (arXiv:1406.2661), with the non-saturating generator loss of that paper.

It is registered exactly like a built-in model: a frozen config dataclass, a GANModel
with its ``train_step``, and ``@register_model`` on the factory the entry point names.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import Batch, GANModel, ModelConfig, TrainContext, register_model


@dataclass(frozen=True)
class ToyGANConfig(ModelConfig):
    z_dim: int = 16  # length of z ~ N(0, I)
    hidden: int = 128  # width of the hidden layers of G and D
    lr: float = 2e-4  # Adam learning rate, G and D
    beta1: float = 0.5  # Adam beta1


class ToyGenerator(GenerativeModel):
    """z (N, z_dim) -> images (N, C, S, S) in [-1, 1]."""

    def __init__(self, config: ToyGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=config.z_dim, channels=config.channels, image_size=config.image_size)
        self.shape = (config.channels, config.image_size, config.image_size)
        out = config.channels * config.image_size ** 2
        self.net = nn.Sequential(nn.Linear(config.z_dim, config.hidden), nn.ReLU(),
                                 nn.Linear(config.hidden, config.hidden), nn.ReLU(),
                                 nn.Linear(config.hidden, out), nn.Tanh())

    def generate(self, z, labels=None):
        return self.net(z).view(-1, *self.shape)


class ToyGAN(GANModel):
    def __init__(self, config: ToyGANConfig):
        super().__init__(config)
        self.generator = ToyGenerator(config)
        size = config.channels * config.image_size ** 2
        self.discriminator = nn.Sequential(nn.Flatten(), nn.Linear(size, config.hidden), nn.LeakyReLU(0.2),
                                           nn.Linear(config.hidden, 1))
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), config.lr, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict:
        real = batch.images
        z, _ = ctx.latents(self.generator.latent, len(real))
        with ctx.autocast():
            fake = self.generator(z)
            loss_d = (F.softplus(-self.discriminator(real)) + F.softplus(self.discriminator(fake.detach()))).mean()
        ctx.backward_step(loss_d, self.opt_d)
        with ctx.autocast():
            loss_g = F.softplus(-self.discriminator(fake)).mean()  # non-saturating loss
        ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}


@register_model("example-toy-gan", config=ToyGANConfig, paper="Generative Adversarial Nets", year=2014,
                arxiv="1406.2661", authors="Goodfellow et al.", task="unconditional",
                defaults={"example-shapes": {"image_size": 16, "channels": 3}},
                description="Example plug-in: a two-layer MLP GAN")
def build(config: ToyGANConfig) -> ToyGAN:
    return ToyGAN(config)
