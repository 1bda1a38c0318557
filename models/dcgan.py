"""DCGAN: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", ICLR 2016. arXiv:1511.06434.

Architecture guidelines of the paper (Section 3), followed here:

* G: a projection of z (100-d, uniform in the paper; N(0, I) in the authors' later code
  and here by default) to a 4 x 4 map, then fractionally-strided convolutions (4 x 4,
  stride 2) that halve the channels and double the resolution; BatchNorm and ReLU in
  every layer except the output, which is tanh.
* D: strided 4 x 4 convolutions (no pooling), BatchNorm in every layer except the
  input layer, LeakyReLU with slope 0.2, a final convolution to one logit.
* Training (Section 4): Adam, learning rate 0.0002, beta1 = 0.5, batch 128 (the recipe),
  weights initialised from N(0, 0.02); the standard (non-saturating) GAN loss. As in the
  reference code, G's update reuses the D step's noise.

Resolutions: 64 x 64 as in the paper (LSUN, ImageNet, faces; used here for CIFAR-10 and
CelebA), 32 x 32 for MNIST-like data (one up-sampling fewer); 28 x 28 is also accepted
(a 7 x 7 projection). Channel widths follow the reference PyTorch example
(pytorch/examples dcgan: ngf = ndf = 64, doubling per layer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.losses import gan_d_loss, gan_g_loss, init_normal_
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)


@dataclass(frozen=True)
class DCGANConfig(ModelConfig):
    z_dim: int = 100  # length of the noise vector z
    z_dist: str = "normal"  # "normal" N(0, I) or "uniform" U(-1, 1) (the paper's)
    g_channels: int = 64  # G's widest-resolution feature maps (ngf); doubles per layer towards 4x4
    d_channels: int = 64  # D's first-layer feature maps (ndf); doubles per layer
    lr_g: float = 2e-4  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D
    beta1: float = 0.5  # Adam beta1 (the paper lowered it from 0.9 for stability)
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # std of the N(0, std) weight init (BatchNorm scale: N(1, std))

    def __post_init__(self):
        base_size(self.image_size)  # validates
        if self.channels not in (1, 3):
            raise GanbenchError(f"dcgan: channels must be 1 or 3, got {self.channels}")


def base_size(image_size: int) -> int:
    """The projection size (4, or 7 for 28 px) with image_size = base * 2**k, k >= 2."""
    for base in (4, 7):
        k = math.log2(image_size / base) if image_size >= base else -1
        if k >= 2 and k == int(k):
            return base
    raise GanbenchError(f"dcgan: image_size must be 4 * 2**k (16, 32, 64, 128...) or 28, got {image_size}")


class Generator(GenerativeModel):
    def __init__(self, c: DCGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist=c.z_dist, channels=c.channels, image_size=c.image_size)
        base = base_size(c.image_size)
        n_up = int(math.log2(c.image_size // base))
        widths = [c.g_channels * 2 ** (n_up - 1 - i) for i in range(n_up)]  # e.g. 512 256 128 64
        layers: list[nn.Module] = [nn.ConvTranspose2d(c.z_dim, widths[0], base, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], c.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def generate(self, z, labels=None):
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, c: DCGANConfig):
        super().__init__()
        base = base_size(c.image_size)
        n_down = int(math.log2(c.image_size // base))
        widths = [c.d_channels * 2 ** i for i in range(n_down)]  # e.g. 64 128 256 512
        layers: list[nn.Module] = [nn.Conv2d(c.channels, widths[0], 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, True)]  # no BatchNorm on the input layer
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, base, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).flatten()  # logits (N,)


class DCGAN(GANModel):
    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        init_normal_(self.generator, config.init_std)  # the paper's N(0, 0.02) init
        init_normal_(self.discriminator, config.init_std)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        real = batch.images
        n = len(real)
        z, _ = ctx.latents(self.generator.latent, n)
        # D: maximise log D(x) + log(1 - D(G(z)))
        with ctx.autocast():
            fake = ctx.images(self.generator(z))
            logits_real = self.discriminator(real)
            logits_fake = self.discriminator(fake.detach())
            loss_d = gan_d_loss(logits_real, logits_fake)
        ctx.backward_step(loss_d, self.opt_d)
        # G: maximise log D(G(z)) (non-saturating), same z as in the D step
        with frozen(self.discriminator):
            with ctx.autocast():
                logits_gen = self.discriminator(fake)
                loss_g = gan_g_loss(logits_gen)
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "d_real": torch.sigmoid(logits_real.detach().float()).mean(),
                "d_fake": torch.sigmoid(logits_fake.detach().float()).mean()}


_MNIST_LIKE = {"image_size": 32}
_PAPER_64 = {"image_size": 64}


@register_model(
    "dcgan", config=DCGANConfig,
    paper="Unsupervised Representation Learning with Deep Convolutional Generative Adversarial Networks",
    authors="Radford, Metz, Chintala", arxiv="1511.06434", year=2015, task="unconditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": {**_PAPER_64, "channels": 3}, "celeba": {**_PAPER_64, "channels": 3}},
    description="Conv-transpose G with BatchNorm/ReLU/tanh, strided-conv D with LeakyReLU 0.2",
    reference_code="https://github.com/pytorch/examples/tree/main/dcgan (widths, init)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space)
    search_space={"lr_g": LogUniform(1e-5, 1e-2), "lr_d": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=128, source="Radford et al. Sec. 4: mini-batch SGD with a "
                                                              "mini-batch size of 128")},
    departures=[
        ("MNIST-like data at 32 x 32 (one up-sampling fewer); the paper's models are 64 x 64",
         "MNIST is 28 px; 32 keeps the 4 x 4 stride-2 layer structure"),
        ("CIFAR-10 is up-sampled to 64 x 64 and trained on",
         "the paper's resolution; the paper trained on LSUN, ImageNet-1k and faces, using CIFAR-10 only "
         "for feature extraction"),
        ("z ~ N(0, I) by default; the paper draws z uniformly",
         "the authors' later code (dcgan.torch, pytorch/examples) uses Gaussian noise; z_dist='uniform' "
         "gives the paper's"),
        ("widths of pytorch/examples (ngf = ndf = 64: G 512-256-128-64 at 64 px); the paper's Figure 1 G "
         "starts at 1024",
         "the reference code's widths, which the paper's text does not fix"),
        ("G's update reuses the D step's noise and fake batch",
         "as the reference code does; the paper does not say"),
    ],
    # narrow nets learn faster with a larger step; same losses and layer structure
    tiny={"g_channels": 16, "d_channels": 16, "image_size": 28, "lr_g": 1e-3, "lr_d": 1e-3}, test_steps=250)
def build(config: DCGANConfig) -> DCGAN:
    return DCGAN(config)
