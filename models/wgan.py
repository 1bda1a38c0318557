"""WGAN: Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017. arXiv:1701.07875.

The critic f (a network without a final sigmoid) estimates the Wasserstein-1 distance
``E[f(x)] - E[f(G(z))]``; Lipschitz continuity is enforced by clipping every critic
parameter to ``[-c, c]`` after each critic update (Algorithm 1):

* critic: minimise ``E[f(G(z))] - E[f(x)]``, ``n_critic = 5`` updates per generator update;
* generator: minimise ``-E[f(G(z))]``;
* RMSProp, learning rate ``alpha = 5e-5``, clipping ``c = 0.01``, batch m = 64 (the
  recipe; the reference code's ``--batchSize`` default).

Architecture (the paper's experiments, Section 4): the DCGAN generator and a DCGAN
discriminator without the sigmoid, reused from :mod:`ganbench.models.dcgan` (the
reference code's ``DCGAN_G`` / ``DCGAN_D``: ngf = ndf = 64, BatchNorm in both, N(0, 0.02)
init). 64 x 64 for CIFAR-10 / CelebA, 32 x 32 for MNIST-like data.

Reference code followed: https://github.com/martinarjovsky/WassersteinGAN (``main.py``),
whose schedule also runs 100 critic updates for the first 25 generator updates and at
every 500th generator update (``n_critic_warmup``, ``warmup_steps``, ``warmup_every``;
set ``n_critic_warmup=0`` for the paper's plain Algorithm 1).

Each critic update draws a fresh real batch (``ctx.real_batches``), as the reference code's
``data_iter.next()`` per critic iteration -- also each of the 100 updates of a warm-up
step, so no real batch is reused within a generator step; the generator update uses a
full batch of fresh noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.models.base import (Batch, GANModel, IntRange, LogUniform, ModelConfig, TrainContext, TrainingRecipe,
                                  frozen, register_model)
from ganbench.models.dcgan import Discriminator, Generator, base_size
from ganbench.models.losses import init_normal_


@dataclass(frozen=True)
class WGANConfig(ModelConfig):
    z_dim: int = 100  # length of the noise vector z
    z_dist: str = "normal"  # "normal" N(0, I) (the reference code's) or "uniform" U(-1, 1)
    g_channels: int = 64  # G's widest-resolution feature maps (ngf), doubling towards 4 x 4
    d_channels: int = 64  # critic's first-layer feature maps (ndf), doubling per layer
    lr: float = 5e-5  # RMSProp learning rate alpha, G and critic
    clip: float = 0.01  # c: critic parameters are clipped to [-c, c] after each critic update
    n_critic: int = 5  # critic updates per generator update
    n_critic_warmup: int = 100  # reference code: critic updates in warm-up steps (0: never)
    warmup_steps: int = 25  # reference code: the first this many generator steps are warm-up steps
    warmup_every: int = 500  # reference code: ...and every this-many-th step (0: never)
    init_std: float = 0.02  # std of the N(0, std) weight init

    def __post_init__(self):
        check_dcgan_shape(self, "wgan")
        if self.n_critic < 1 or self.n_critic_warmup < 0 or self.warmup_steps < 0 or self.warmup_every < 0:
            raise GanbenchError("wgan: n_critic must be >= 1; n_critic_warmup, warmup_steps, warmup_every >= 0")
        if self.clip <= 0:
            raise GanbenchError(f"wgan: clip must be positive, got {self.clip}")


def check_dcgan_shape(c, name: str) -> None:
    """The checks of the DCGAN networks, reported under the model's own name."""
    try:
        base_size(c.image_size)
    except GanbenchError as exc:
        raise GanbenchError(str(exc).replace("dcgan:", f"{name}:", 1)) from None
    if c.channels not in (1, 3):
        raise GanbenchError(f"{name}: channels must be 1 or 3, got {c.channels}")


def critic_steps(c: WGANConfig, step: int) -> int:
    """Critic updates at generator step ``step`` (the reference code's schedule)."""
    if c.n_critic_warmup and (step < c.warmup_steps or (c.warmup_every and step % c.warmup_every == 0)):
        return c.n_critic_warmup
    return c.n_critic


@torch.no_grad()
def clip_weights(module: nn.Module, c: float) -> None:
    """Clip every parameter of ``module`` to [-c, c] (BatchNorm scales and shifts too, as
    in the reference code)."""
    for p in module.parameters():
        p.clamp_(-c, c)


class WGAN(GANModel):
    def __init__(self, config: WGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.critic = Discriminator(config)  # outputs f(x), no sigmoid
        init_normal_(self.generator, config.init_std)
        init_normal_(self.critic, config.init_std)
        clip_weights(self.critic, config.clip)
        self.opt_g = torch.optim.RMSprop(self.generator.parameters(), lr=config.lr)
        self.opt_d = torch.optim.RMSprop(self.critic.parameters(), lr=config.lr)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        n = len(batch.images)
        for real_batch in ctx.real_batches(batch, critic_steps(c, step)):  # a fresh batch per update
            real = real_batch.images
            z, _ = ctx.latents(self.generator.latent, n)
            with ctx.autocast():
                with torch.no_grad():
                    fake = ctx.images(self.generator(z))
                f_real = self.critic(real).float().mean()
                f_fake = self.critic(fake).float().mean()
                loss_d = f_fake - f_real
            ctx.backward_step(loss_d, self.opt_d)
            clip_weights(self.critic, c.clip)
        with frozen(self.critic):
            z, _ = ctx.latents(self.generator.latent, n)
            with ctx.autocast():
                loss_g = -self.critic(ctx.images(self.generator(z))).float().mean()
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "wasserstein": (f_real - f_fake).detach()}


_MNIST_LIKE = {"image_size": 32}
_PAPER_64 = {"image_size": 64, "channels": 3}


@register_model(
    "wgan", config=WGANConfig, paper="Wasserstein GAN", authors="Arjovsky, Chintala, Bottou",
    arxiv="1701.07875", year=2017, task="unconditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": _PAPER_64, "celeba": _PAPER_64},
    description="DCGAN G and critic (no sigmoid), weight clipping c=0.01, RMSProp 5e-5, n_critic=5",
    reference_code="https://github.com/martinarjovsky/WassersteinGAN (main.py: schedule, DCGAN_D/G)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space); RMSProp has no beta1
    search_space={"lr": LogUniform(1e-5, 1e-2), "clip": LogUniform(1e-3, 1.0), "n_critic": IntRange(1, 5)},
    recipes={"default": TrainingRecipe(batch_size=64, source="Arjovsky et al. Algorithm 1 (m = 64); "
                                                             "martinarjovsky/WassersteinGAN main.py --batchSize 64")},
    departures=[
        ("100 critic updates for the first 25 generator steps and at every 500th",
         "the reference code's schedule, not Algorithm 1's constant n_critic; n_critic_warmup=0 gives the paper's"),
        ("MNIST-like data at 32 x 32 (one up-sampling fewer than the paper's 64 x 64)",
         "MNIST is 28 px; 32 keeps the DCGAN layer structure"),
        ("the critic is clipped after each update (and at initialisation); the reference code clips before "
         "each critic update, so its generator step sees an unclipped critic",
         "Algorithm 1's order"),
    ],
    # tests: narrow nets at 28 px, Algorithm 1 without the warm-up, a faster learning rate
    tiny={"image_size": 28, "g_channels": 8, "d_channels": 8, "z_dim": 32, "n_critic_warmup": 0, "lr": 5e-4},
    # 200 steps left no room (lenet-FID 621 against a threshold of 625; 648 on an AVX-512
    # machine); 400: 364 / 393 for seeds 0 / 1 (bench/results/learning_margins.md)
    test_steps=400)
def build(config: WGANConfig) -> WGAN:
    return WGAN(config)
