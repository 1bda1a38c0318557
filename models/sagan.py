"""SAGAN: Zhang, Goodfellow, Metaxas & Odena, "Self-Attention Generative Adversarial
Networks", ICML 2019. arXiv:1805.08318.

Following the paper (Sections 3-5):

* Self-attention (Section 3, Eqs. 1-3): for a feature map x with C channels and N = H*W
  positions, f(x) = W_f x, g(x) = W_g x, h(x) = W_h x (1 x 1 convolutions to C/8
  channels, k = 8), s_ij = f(x_i)^T g(x_j), beta_{j,i} = softmax_i(s_ij) (row j of the
  attention map sums to 1 over the positions i it attends to), o_j = W_v (sum_i beta_{j,i}
  h(x_i)) with W_v a 1 x 1 convolution back to C channels, and y = gamma * o + x with the
  learnable scalar gamma initialised to 0, so the network first relies on local cues.
  Every position attends to all N positions.
* Where (Section 5, Table 1): the paper adds the block to the k x k feature maps
  ("feat_k") of both the 128 px G and D and finds feat32 and feat64 better than feat8 and
  feat16. The authors' final code (brain-research/self-attention-gan, ``generator_test``
  and ``discriminator_test``, ``model.py``'s default ``generator_type = discriminator_type
  = 'test'``) has one block in each at 32 x 32 = image_size / 4: in G after the up-block
  that reaches 32 x 32 (two up-blocks follow), in D after the second down-block (128 -> 64
  -> 32). Here the block sits at ``attention_resolution``, by default image_size / 2 in
  both (G: after the last-but-one up-block; D: after the first down-block): 16 x 16 for
  32 px data, 32 x 32 at 64 px. At 32 px, image_size / 4 would be the 8 x 8 maps the
  paper found worst.
* The authors' TensorFlow block (``non_local.py``, ``sn_non_local_block_sim``) differs
  from the equations: the keys (``phi``, the paper's f) and values (``g``, the paper's h)
  are 2 x 2 max-pooled, so each query attends to N/4 positions, and the values have C/2
  channels (W_v maps C/2 back to C); the queries (``theta``, the paper's g) are not
  pooled. The paper's equations are followed here (no pooling, values at C/8).
* Networks: the class-conditional ResNet G (conditional BatchNorm) and projection D of
  Miyato & Koyama (:mod:`ganbench.models.projection`: constant widths, sized for 32 / 64
  px), not the paper's 128 px ImageNet networks. Unconditional data (num_classes 0) give
  plain BatchNorm in G and no projection term in D.
* Spectral normalisation in *both* G and D (every convolution and linear layer,
  attention included, and D's class embedding; not the conditional-BatchNorm gains), as
  the paper (Section 4) and the authors' code.
* Hinge loss; two-timescale update rule (TTUR, Section 4): one D step per G step, Adam
  with lr_d = 4e-4, lr_g = 1e-4, beta1 = 0, beta2 = 0.9 (the paper; the authors' code
  leaves beta2 at TensorFlow's 0.999); no learning-rate decay.
* Recipe (what ``ganbench train`` uses): batch 256 (the paper's ImageNet runs; the authors'
  ``train_imagenet.py``: 64 per GPU on 4 GPUs), the raw G: neither the paper nor the
  authors' code averages G's weights.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganbench.errors import GanbenchError
from ganbench.models.base import (Batch, GANModel, IntRange, LogUniform, ModelConfig, TrainContext, TrainingRecipe,
                                  Uniform, register_model)
from ganbench.models.projection import Discriminator, Generator, check_resnet_config, hinge_step


@dataclass(frozen=True)
class SAGANConfig(ModelConfig):
    num_classes: int = 10  # label classes (from the dataset); 0 trains an unconditional SAGAN
    z_dim: int = 128  # length of the noise vector z
    g_channels: int = 128  # G's residual-block width
    d_channels: int = 128  # D's residual-block width
    attention_resolution: int | None = None  # feature-map size of the G and D attention blocks; None: image_size // 2
    attention_ratio: int = 8  # k: f, g, h project to C / k channels
    lr_g: float = 1e-4  # Adam learning rate of G (TTUR)
    lr_d: float = 4e-4  # Adam learning rate of D (TTUR)
    beta1: float = 0.0  # Adam beta1
    beta2: float = 0.9  # Adam beta2
    n_dis: int = 1  # D updates per G update (TTUR: 1)
    lr_decay_steps: int | None = None  # linear decay to 0 over this many G steps; None: constant (paper)

    def __post_init__(self):
        check_resnet_config(self, "sagan", conditional_required=False)
        if self.num_classes == 1:
            raise GanbenchError("sagan: num_classes must be 0 (unconditional) or >= 2")
        if self.attention_ratio < 1:
            raise GanbenchError("sagan: attention_ratio must be >= 1")


class SelfAttention(nn.Module):
    """The SAGAN self-attention block (spectrally normalised 1 x 1 convolutions)."""

    def __init__(self, channels: int, ratio: int = 8):
        super().__init__()
        inner = max(channels // ratio, 1)
        self.f = spectral_norm(nn.Conv2d(channels, inner, 1, bias=False))
        self.g = spectral_norm(nn.Conv2d(channels, inner, 1, bias=False))
        self.h = spectral_norm(nn.Conv2d(channels, inner, 1, bias=False))
        self.v = spectral_norm(nn.Conv2d(inner, channels, 1, bias=False))
        self.gamma = nn.Parameter(torch.zeros(()))

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """beta: (B, N, N) with beta[b, j, i] = softmax_i f(x_i)^T g(x_j); rows sum to 1."""
        f = self.f(x).flatten(2)  # (B, C', N): positions i
        g = self.g(x).flatten(2)  # (B, C', N): positions j
        s = torch.bmm(g.transpose(1, 2), f)  # s[b, j, i] = g(x_j) . f(x_i)
        return torch.softmax(s.float(), dim=-1).to(x.dtype)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        b, _, hgt, wid = x.shape
        beta = self.attention_map(x)
        h = self.h(x).flatten(2)  # (B, C', N)
        o = torch.bmm(h, beta.transpose(1, 2))  # o[:, :, j] = sum_i beta[j, i] h[:, :, i]
        y = x + self.gamma * self.v(o.view(b, -1, hgt, wid))
        return (y, beta) if return_attention else y


def spectral_norm_all(module: nn.Module) -> None:
    """Spectrally normalise every Conv2d and Linear inside ``module`` not already normalised."""
    from torch.nn.utils.parametrize import is_parametrized

    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)) and not is_parametrized(m, "weight"):
            spectral_norm(m)


class SAGAN(GANModel):
    def __init__(self, config: SAGANConfig):
        super().__init__(config)
        res = config.attention_resolution or config.image_size // 2
        factory = functools.partial(SelfAttention, ratio=config.attention_ratio)
        self.generator = Generator(config, attention=(res, factory))
        spectral_norm_all(self.generator)
        self.discriminator = Discriminator(config, attention=(res, factory))
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas)
        self.base_lrs = (config.lr_g, config.lr_d)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        if batch.labels is None and self.generator.latent.num_classes:
            raise GanbenchError("sagan with num_classes > 0 needs labelled training data "
                                "(or --set num_classes=0)")
        out = hinge_step(self, batch, step, ctx, c.n_dis, c.lr_decay_steps)
        out["gamma_g"] = self.generator.attention.gamma.detach()
        out["gamma_d"] = self.discriminator.attention.gamma.detach()
        return out


_MNIST_LIKE = {"image_size": 32}


@register_model(
    "sagan", config=SAGANConfig, paper="Self-Attention Generative Adversarial Networks",
    authors="Zhang, Goodfellow, Metaxas, Odena", arxiv="1805.08318", year=2018, task="class-conditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE,
              "cifar10": {"image_size": 32, "channels": 3, "g_channels": 256, "d_channels": 256},
              "celeba": {"image_size": 64, "channels": 3, "num_classes": 0}},
    description="Self-attention (1 x 1 f, g, h at C/8, gamma from 0) at image_size / 2 in a spectrally "
                "normalised ResNet G (conditional BatchNorm) and projection D; hinge loss; TTUR (lr_d 4e-4, lr_g 1e-4)",
    reference_code="https://github.com/brain-research/self-attention-gan (read; paper equations followed)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space)
    search_space={"lr_g": LogUniform(1e-5, 1e-2), "lr_d": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0),
                  "n_dis": IntRange(1, 5)},
    recipes={"default": TrainingRecipe(batch_size=256, source="paper Section 5, ImageNet: batch 256; authors' "
                                                              "train_imagenet.py: 64 per GPU x 4 GPUs")},
    departures=[
        ("attention at image_size / 2 (16 x 16 at 32 px) in G and D; the authors' code puts it at 32 x 32 of "
         "128 px images (image_size / 4)",
         "at 32 px, image_size / 4 is the 8 x 8 map the paper found worst (Table 1: feat32, feat64 best)"),
        ("networks: the constant-width ResNet G and projection D of models/projection.py at 32 / 64 px, not the "
         "paper's 128 px ImageNet networks",
         "ganbench's datasets are at most 64 px; one implementation of the SNGAN ResNet"),
    ],
    tiny={"image_size": 16, "g_channels": 16, "d_channels": 16, "z_dim": 32, "lr_g": 1e-3, "lr_d": 4e-3},
    test_steps=600)
def build(config: SAGANConfig) -> SAGAN:
    return SAGAN(config)
