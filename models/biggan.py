"""BigGAN: Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural
Image Synthesis", ICLR 2019. arXiv:1809.11096.

Following the paper (Sections 3-4, Appendices B-C) and the authors' PyTorch code
(ajbrock/BigGAN-PyTorch, read for its conventions; written anew here):

* Baseline (Section 3): SAGAN -- a ResNet G with class-conditional BatchNorm and a
  projection D (:mod:`ganbench.models.projection`), one self-attention block in each
  (:class:`ganbench.models.sagan.SelfAttention`, at ``attention_resolution``), spectral
  normalisation in G and D, the hinge loss.
* Shared embedding and skip-z (Section 3, Appendix B): z is split into one chunk per
  residual block plus one for the input linear layer ("hierarchical latent space"); a
  single class embedding (``shared_dim``-d, shared by all blocks) is concatenated with
  each block's z chunk, and every conditional BatchNorm of that block gets its gains
  ``1 + W_g [e(y), z_i]`` and biases ``W_b [e(y), z_i]`` from (spectrally normalised)
  linear projections of it. G's last BatchNorm (before the output convolution) is
  unconditional.
* Orthogonal regularisation (Section 3.1), the paper's variant that leaves the norms
  free: ``R_beta(W) = beta ||W^T W (.) (1 - I)||_F^2``, beta = 1e-4 (the value the paper
  selects; the authors' ``utils.py``: "1e-4 should be default for BigGAN"), summed over
  G's weight matrices (convolution kernels flattened to (out, in k k), rows as filters; the
  shared embedding excluded, as the authors' code). Here the loss is differentiated as
  written. The authors' ``utils.ortho`` instead adds the gradient
  ``2 beta (W W^T (.) (1 - I)) W`` directly, which is half the gradient of the formula
  (4 beta (...) W): their ``--G_ortho 1e-4`` equals ``ortho_beta = 5e-5`` here. Their
  released models were trained without it (``--G_ortho 0.0``, README).
* Training: Section 3 keeps SA-GAN's optimiser settings (G 1e-4, D 4e-4) but halves the
  learning rates and takes two D steps per G step: Adam beta1 = 0, beta2 = 0.999,
  learning rates 2e-4 (D) and 5e-5 (G), 2 D steps per G step, orthogonal initialisation
  -- the defaults of the authors' ``utils.prepare_parser`` (``--G_lr 5e-5 --D_lr 2e-4
  --num_D_steps 2 --G_B1 0 --G_B2 0.999 --G_init ortho``). Adam's epsilon 1e-6 is the
  authors' ImageNet launch scripts' ``--adam_eps 1e-6`` (their parser's default is 1e-8;
  a paper value was not verified).
* Recipe (what ``ganbench train`` uses): the evaluated G is an EMA of G's weights with
  decay 0.9999 (the paper; the parser's ``--ema_decay``), a copy of G for the first
  ``ema_start`` G steps (the authors' ``--ema_start``: 20000 in their ImageNet launch
  scripts, 1000 in ``scripts/launch_cifar_ema.sh``). Batch: 2048 real images per D step
  and latents per G step on ImageNet (the paper; ``launch_BigGAN_bs256x8.sh``:
  ``--batch_size 256 --num_D_accumulations 8 --num_G_accumulations 8``), the default for
  every dataset but CIFAR-10, which uses the script's 50.
* CIFAR-10 (``cifar10`` defaults): the authors' ``scripts/launch_cifar_ema.sh`` trains
  with batch 50, ``--num_D_steps 4 --G_lr 2e-4 --D_lr 2e-4``, ``dim_z`` 128 (the parser's
  default) and width 4 x 64 = 256 at 32 px; it also turns attention off (``--G_attn 0``),
  uses N(0, 0.02) initialisation, no orthogonal regularisation, and neither the shared
  embedding nor hierarchical z (no ``--G_shared --hier``), which this file keeps.
* Truncation trick (Section 3.1): z drawn from a normal truncated to [-t, t]. ``generate``
  applies it when ``truncation`` is set, as the inverse-CDF map of the given N(0, I) z
  (:func:`truncated_normal`): the same distribution as resampling out-of-range values,
  but deterministic, so seeded sampling stays seeded.

Resolutions: ``image_size = base * 2**k`` with base 4 (or 7 for 28 px), k residual
up-blocks in G; widths are uniform (``g_channels``, ``d_channels``; 256 at 32 px as the
authors' CIFAR-10 networks, 128 for MNIST-like data), not the paper's per-resolution
multipliers. The D is the projection D of :mod:`ganbench.models.projection` (Xavier
initialisation there). Each of the ``n_dis`` D updates draws a fresh real batch of
``--batch-size`` images and G's update uses as many latents (the authors' code: a loader
batch of ``num_D_steps`` x ``batch_size`` split into one chunk per D step; G_batch_size =
batch_size): 2048 for the paper's ImageNet models, 50 for the authors' CIFAR-10 script. z is split into chunks
whose sizes differ by at most one; the authors' code (``BigGAN.py``, ``hier``) instead
rounds ``dim_z`` down to a multiple of the number of chunks (120 = 6 x 20 at 128 px, so
the two agree there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import (Batch, GANModel, IntRange, LogUniform, ModelConfig, TrainContext, TrainingRecipe,
                                  Uniform, frozen, register_model)
from ganbench.models.losses import hinge_d_loss, hinge_g_loss
from ganbench.models.projection import Discriminator, base_and_blocks
from ganbench.models.sagan import SelfAttention


@dataclass(frozen=True)
class BigGANConfig(ModelConfig):
    num_classes: int = 10  # label classes (from the dataset)
    z_dim: int = 120  # length of z, split into k + 1 chunks (k residual blocks)
    shared_dim: int = 128  # length of the shared class embedding
    g_channels: int = 128  # G's residual-block width
    d_channels: int = 128  # D's residual-block width
    attention_resolution: int | None = None  # feature-map size of the attention blocks; None: image_size // 2
    ortho_beta: float = 1e-4  # beta of the orthogonal regulariser on G's weights (0: off)
    n_dis: int = 2  # D updates per G update
    lr_g: float = 5e-5  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D
    beta1: float = 0.0  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    adam_eps: float = 1e-6  # Adam epsilon (the authors' ImageNet launch scripts; their parser default is 1e-8)
    truncation: float | None = None  # threshold t of the truncated normal used by generate() (None: off)

    def __post_init__(self):
        _, k = base_and_blocks(self.image_size, "biggan")
        if self.channels not in (1, 3):
            raise GanbenchError(f"biggan: channels must be 1 or 3, got {self.channels}")
        if self.num_classes < 2:
            raise GanbenchError("biggan is class-conditional: train it on a labelled dataset "
                                "(num_classes >= 2), e.g. --dataset mnist")
        if self.n_dis < 1:
            raise GanbenchError(f"biggan: n_dis must be >= 1, got {self.n_dis}")
        if self.z_dim < k + 1:
            raise GanbenchError(f"biggan: z_dim must be at least {k + 1} (one chunk per block + 1), got {self.z_dim}")
        if self.truncation is not None and self.truncation <= 0:
            raise GanbenchError(f"biggan: truncation must be positive or None, got {self.truncation}")
        if self.ortho_beta < 0 or self.shared_dim < 1:
            raise GanbenchError("biggan: ortho_beta must be >= 0 and shared_dim >= 1")


# ---------------------------------------------------------------------------------------
# The maths (pure functions)
# ---------------------------------------------------------------------------------------
def orthogonal_regularization(weight: torch.Tensor) -> torch.Tensor:
    """``||W W^T (.) (1 - I)||_F^2`` with W = ``weight`` flattened to (out, -1): the squared
    cosine-free overlaps between different filters (the paper's ``W^T W`` with filters as
    columns). Zero for any W with mutually orthogonal rows, whatever their norms."""
    w = weight.flatten(1)
    gram = w @ w.T
    return (gram * (1.0 - torch.eye(len(w), device=w.device, dtype=w.dtype))).square().sum()


def truncated_normal(z: torch.Tensor, threshold: float) -> torch.Tensor:
    """Map N(0, 1) values to N(0, 1) truncated to [-threshold, threshold] (inverse CDF,
    monotone, elementwise)."""
    zd = z.double()
    lo = torch.special.ndtr(torch.tensor(-float(threshold), dtype=torch.float64, device=z.device))
    u = lo + torch.special.ndtr(zd) * (1.0 - 2.0 * lo)
    return torch.special.ndtri(u).clamp(-threshold, threshold).to(z.dtype)


def split_latent(z: torch.Tensor, chunks: int) -> tuple[torch.Tensor, ...]:
    """z (N, z_dim) into ``chunks`` hierarchical pieces (sizes differ by at most one)."""
    return torch.tensor_split(z, chunks, dim=1)


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------
def sn(module: nn.Module) -> nn.Module:
    nn.init.orthogonal_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return spectral_norm(module)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine parameters; gain ``1 + W_g c`` and bias ``W_b c`` from the
    conditioning vector c = [shared embedding, z chunk]."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = sn(nn.Linear(cond_dim, channels, bias=False))
        self.bias = sn(nn.Linear(cond_dim, channels, bias=False))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1.0 + self.gain(cond))[:, :, None, None] + self.bias(cond)[:, :, None, None]


class GBlock(nn.Module):
    """CBN-ReLU-up-conv3-CBN-ReLU-conv3 + up-conv1 shortcut (spectrally normalised)."""

    def __init__(self, cin: int, cout: int, cond_dim: int):
        super().__init__()
        self.bn1 = ConditionalBatchNorm(cin, cond_dim)
        self.conv1 = sn(nn.Conv2d(cin, cout, 3, 1, 1))
        self.bn2 = ConditionalBatchNorm(cout, cond_dim)
        self.conv2 = sn(nn.Conv2d(cout, cout, 3, 1, 1))
        self.shortcut = sn(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(GenerativeModel):
    """BigGAN's G: shared class embedding, skip-z into every block's conditional BatchNorm."""

    def __init__(self, c: BigGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist="normal", num_classes=c.num_classes,
                                 channels=c.channels, image_size=c.image_size)
        self.truncation = c.truncation
        base, k = base_and_blocks(c.image_size, "biggan")
        self.base, self.ch, self.num_chunks = base, c.g_channels, k + 1
        sizes = [t.shape[1] for t in split_latent(torch.zeros(1, c.z_dim), k + 1)]
        self.shared = nn.Embedding(c.num_classes, c.shared_dim)
        nn.init.normal_(self.shared.weight)
        self.linear = sn(nn.Linear(sizes[0], base * base * c.g_channels))
        self.blocks = nn.ModuleList(GBlock(c.g_channels, c.g_channels, c.shared_dim + s) for s in sizes[1:])
        res = c.attention_resolution or c.image_size // 2
        self.attention_after = int(math.log2(res / base)) - 1 if res > base else -1
        if not 0 <= self.attention_after < k or base * 2 ** (self.attention_after + 1) != res:
            raise GanbenchError(f"biggan: attention_resolution {res} is not one of G's block outputs "
                                f"{[base * 2 ** (i + 1) for i in range(k)]}")
        self.attention = SelfAttention(c.g_channels)
        self.bn = nn.BatchNorm2d(c.g_channels)
        self.conv = sn(nn.Conv2d(c.g_channels, c.channels, 3, 1, 1))

    def conditions(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(the first z chunk, [e(y) ++ z_i for each block]): the skip-z inputs."""
        chunks = split_latent(z, self.num_chunks)
        e = self.shared(labels.long())
        return chunks[0], [torch.cat([e, zi], dim=1) for zi in chunks[1:]]

    def synthesize(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z0, conds = self.conditions(z, labels)
        h = self.linear(z0).view(len(z), self.ch, self.base, self.base)
        for i, (block, cond) in enumerate(zip(self.blocks, conds)):
            h = block(h, cond)
            if i == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.conv(F.relu(self.bn(h))))

    def generate(self, z, labels=None):
        if labels is None:
            raise GanbenchError("biggan is class-conditional and needs labels")
        if self.truncation is not None:
            z = truncated_normal(z, self.truncation)
        return self.synthesize(z, labels)

    def set_truncation(self, threshold: float | None) -> float | None:
        """Set the threshold t of ``generate``'s truncated z (None: off; 0: z = 0, one image
        per class); returns the previous one. The sampling hook of ``ganbench sample --truncation``."""
        if threshold is not None and not threshold >= 0:
            raise GanbenchError(f"biggan: the truncation threshold must be >= 0, got {threshold}")
        previous, self.truncation = self.truncation, threshold
        return previous

    def regularized_weights(self) -> list[torch.Tensor]:
        """G's weight matrices under the orthogonal regulariser (not the shared embedding)."""
        shared = {id(p) for p in self.shared.parameters()}
        return [p for p in self.parameters() if p.dim() >= 2 and id(p) not in shared]


class BigGAN(GANModel):
    def __init__(self, config: BigGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        res = config.attention_resolution or config.image_size // 2
        self.discriminator = Discriminator(config, attention=(res, SelfAttention))
        betas, eps = (config.beta1, config.beta2), config.adam_eps
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas, eps=eps)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas, eps=eps)

    def ortho_penalty(self) -> torch.Tensor:
        return sum(orthogonal_regularization(w) for w in self.generator.regularized_weights())

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c, G, D = self.config, self.generator, self.discriminator
        if batch.labels is None:
            raise GanbenchError("biggan is class-conditional: train it on a labelled dataset (e.g. mnist)")
        n = len(batch.images)
        for real_batch in ctx.real_batches(batch, c.n_dis):  # a fresh batch per D update
            real, labels = real_batch.images, real_batch.labels
            z, y_fake = ctx.latents(G.latent, n)
            with ctx.autocast():
                with torch.no_grad():
                    fake = ctx.images(G.synthesize(z, y_fake))
                d_real, d_fake = D(real, labels).float(), D(fake, y_fake).float()
                loss_d = hinge_d_loss(d_real, d_fake)
            ctx.backward_step(loss_d, self.opt_d)
        with frozen(D):
            z, y_fake = ctx.latents(G.latent, n)
            with ctx.autocast():
                loss_g = hinge_g_loss(D(ctx.images(G.synthesize(z, y_fake)), y_fake).float())
            ortho = self.ortho_penalty().float() if c.ortho_beta else torch.zeros((), device=ctx.device)
            ctx.backward_step(loss_g + c.ortho_beta * ortho, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "ortho": ortho.detach(),
                "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}


_MNIST_LIKE = {"image_size": 32}


@register_model(
    "biggan", config=BigGANConfig, paper="Large Scale GAN Training for High Fidelity Natural Image Synthesis",
    authors="Brock, Donahue, Simonyan", arxiv="1809.11096", year=2019, task="class-conditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE,
              # the authors' scripts/launch_cifar_ema.sh: 4 D steps, G and D at 2e-4 (see the docstring)
              "cifar10": {"image_size": 32, "channels": 3, "g_channels": 256, "d_channels": 256, "z_dim": 128,
                          "n_dis": 4, "lr_g": 2e-4, "lr_d": 2e-4}},
    description="SAGAN + shared class embedding and skip-z into conditional BatchNorm, orthogonal "
                "regularisation (beta 1e-4), 2 D steps, Adam G 5e-5 / D 2e-4 (0, 0.999), truncation trick",
    reference_code="https://github.com/ajbrock/BigGAN-PyTorch (read; paper followed)",
    # Lucic et al. 2018's wide ranges; ortho_beta a decade either side of the paper's 1e-4 (no range given)
    search_space={"lr_g": LogUniform(1e-5, 1e-2), "lr_d": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0),
                  "n_dis": IntRange(1, 5), "ortho_beta": LogUniform(1e-5, 1e-3)},
    recipes={"imagenet": TrainingRecipe(batch_size=2048, ema=0.9999, ema_start=20_000,
                                        source="paper: batch 2048, EMA 0.9999; BigGAN-PyTorch "
                                               "launch_BigGAN_bs256x8.sh: 256 x 8 accumulations, --ema_start 20000"),
             # every dataset ganbench ships is small (28-64 px): the authors' small-image recipe
             "default": TrainingRecipe(batch_size=50, ema=0.9999, ema_start=1000,
                                       source="BigGAN-PyTorch scripts/launch_cifar_ema.sh: --batch_size 50 "
                                              "--ema --ema_start 1000; utils.py --ema_decay 0.9999")},
    departures=[
        ("uniform widths (g_channels, d_channels) instead of the paper's per-resolution channel multipliers",
         "the networks are sized for 32 / 64 px data; the D is models/projection.py's"),
        ("D initialised with Xavier (models/projection.py) instead of orthogonally",
         "one implementation of the projection D"),
        ("CIFAR-10 keeps attention, the shared embedding, skip-z, orthogonal init and regularisation, which the "
         "authors' CIFAR script (launch_cifar_ema.sh) turns off; its batch, D steps, learning rates, width are taken",
         "the paper's architecture is kept; the script supplies only the optimisation setting"),
    ],
    # tests: narrow nets, attention at 8 x 8 (cheaper), faster learning rates (the paper's suit batch 2048)
    tiny={"z_dim": 24, "shared_dim": 16, "g_channels": 16, "d_channels": 16, "attention_resolution": 8,
          "lr_g": 2e-3, "lr_d": 4e-3},
    # at 250 steps the class accuracy was 0.52 with oneDNN and 0.28 without (threshold 0.3); 400: 0.76
    test_steps=400)
def build(config: BigGANConfig) -> BigGAN:
    return BigGAN(config)
