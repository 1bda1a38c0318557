"""ProGAN: Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation", ICLR 2018. arXiv:1710.10196.

Following the paper (Sections 2-4, Appendix A) and the authors' code
(tkarras/progressive_growing_of_gans, read for its conventions; written anew here):

* Progressive growing (Section 2): G and D start at the base resolution (4 x 4, or 7 x 7
  for 28 px images) and grow by a factor 2 per stage. A new resolution is *faded in*:
  G's output is ``(1 - alpha) * up2(toRGB_old(h)) + alpha * toRGB_new(block(h))`` and D's
  input path ``(1 - alpha) * fromRGB_old(down2(x)) + alpha * block(fromRGB_new(x))``, with
  alpha rising linearly from 0 to 1 over a fade-in phase, followed by a stabilisation
  phase at alpha = 1. Real images reach D at the current resolution, blended between the
  two resolutions during a fade-in exactly as G's output is. The schedule
  (:func:`growth_schedule`) is a pure function of the step, so a resumed run matches an
  uninterrupted one. Up-sampling is nearest-neighbour, down-sampling 2 x 2 average
  pooling (as the paper).
* Equalized learning rate (Section 4.1): weights are stored as N(0, 1) and scaled at run
  time by He's constant ``gain / sqrt(fan_in)`` (:class:`EqualizedLinear`,
  :class:`EqualizedConv2d`), so Adam's scale-free updates move every layer at the same
  relative speed. Biases start at zero.
* Pixelwise feature normalisation in G (Section 4.2): after every 3 x 3 convolution,
  ``b = a / sqrt(mean_c(a^2) + 1e-8)``; the latent z is normalised the same way.
* Minibatch standard deviation (Section 3): before D's last 3 x 3 convolution, the
  standard deviation of each feature over groups of samples, averaged to one number per
  group, is appended as an extra feature map. Section 3 takes it over the whole minibatch;
  the official TensorFlow code groups 4 samples (``mbstd_group_size = 4`` in
  ``networks.D_paper``; its ``preset-v1`` that reproduces the paper sets 16, the whole
  minibatch of 16). ``mbstd_group`` keeps the code's 4.
* Networks (Table 2): G: z -> dense to a base x base map, conv 3 x 3; per stage: up x2,
  two conv 3 x 3; toRGB 1 x 1 (linear). D mirrors it: fromRGB 1 x 1; per stage two conv
  3 x 3 and 2 x 2 average pooling; at the base: minibatch stddev, conv 3 x 3, dense, dense
  to one output. LeakyReLU(0.2) everywhere; no batch norm.
  Widths ``min(fmap_base / 2**(stage + 1), fmap_max)`` (the official ``nf``); with the
  CelebA-HQ values (``fmap_base`` 8192, ``fmap_max`` 512, latent 512: ``config.py``'s
  baseline "from Appendix A.1") that is 512 at every resolution up to 32 x 32. The
  CIFAR-10 network is narrower: ``fmap_base`` 4096, ``fmap_max`` 128, latent 128
  (``config.py``, "Section 6.5: CIFAR10 inception scores"; the ``cifar10`` defaults).
* Loss (Appendix A.1): WGAN-GP, ``lambda = 10``, plus the drift term
  ``epsilon_drift * E[D(x)^2]`` with epsilon_drift = 0.001; one D step per G step
  (n_critic = 1); Adam (alpha 0.001, beta1 0, beta2 0.99, eps 1e-8) -- the official
  ``config.py`` baseline (``iwass_lambda``, ``iwass_epsilon``, ``D_training_repeats``,
  ``*_learning_rate_max``, ``adam_beta1/2``, ``adam_epsilon``). For CIFAR-10 the paper
  uses the gradient penalty with target ``gamma = 750`` (``iwass_target = 750`` in the
  Section 6.5 config), ``lambda ((|grad| - gamma) / gamma)^2`` as ``loss.py``'s
  ``(|grad| - target)^2 * lambda / target^2``; ``gp_target``.
* Phases: 800k real images per fade-in and per stabilisation phase for CelebA-HQ, LSUN
  and Section 6.1 (``lod_training_kimg = lod_transition_kimg = 800``; the code's default
  is 600) at batch 16: ``phase_steps = 50_000``. CIFAR-10 uses 400k images per phase at
  batch 16: ``phase_steps = 25_000``.
* Recipe (what ``ganbench train`` uses; Appendix A.1 and ``config.py``): batch 16, the
  paper's minibatch for every resolution up to 128 x 128 (``minibatch_default = 16``; 14,
  6, 3 only at 256, 512, 1024), for CIFAR-10 too; the evaluated G is an exponential
  running average of G's weights with decay 0.999 (``G_smoothing = 0.999``), updated after
  every G step from the first.
* Not modelled (the ``departures`` of the registration): the learning-rate ramp-up (40k
  images in the CelebA-HQ config, none for CIFAR-10), the TensorFlow code's reset of
  Adam's moments when a new resolution starts (``reset_opt_for_new_lod``), the minibatch
  stddev over the whole minibatch (``mbstd_group``, above), and the CIFAR-10 config's
  ``separate_funcs = False``.

G's output layer is linear (no tanh), as in the paper; :meth:`Generator.generate`
clamps to [-1, 1] for evaluation (the official code clips when saving images) while
training uses the unclamped output. Images smaller than ``image_size`` during growth are
up-sampled (nearest) by ``generate`` so evaluation always sees full-size images.

The equalized layers, pixel norm and minibatch-stddev layer here are reused by StyleGAN
(:mod:`ganbench.models.stylegan`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)
from ganbench.models.losses import gradient_penalty


@dataclass(frozen=True)
class ProGANConfig(ModelConfig):
    z_dim: int = 512  # length of the latent z (normalised onto the unit hypersphere's scale)
    fmap_base: int = 8192  # width of stage s: min(fmap_base / 2**(s + 1), fmap_max), s = 0 at the base
    fmap_max: int = 512  # largest number of feature maps of any layer
    mbstd_group: int = 4  # minibatch-stddev group size (official TF code; <= batch, the largest divisor is used)
    phase_steps: int = 50_000  # steps per fade-in and per stabilisation phase (CelebA-HQ: 800k images at batch 16)
    gp_lambda: float = 10.0  # lambda: weight of the WGAN-GP gradient penalty
    gp_target: float = 1.0  # gamma: target gradient norm (750 for CIFAR-10 in the paper)
    drift: float = 0.001  # epsilon_drift: weight of E[D(x)^2] keeping D's output near zero
    lr: float = 0.001  # Adam learning rate, G and D
    beta1: float = 0.0  # Adam beta1
    beta2: float = 0.99  # Adam beta2
    eps: float = 1e-8  # Adam epsilon

    def __post_init__(self):
        base_resolutions(self.image_size)
        if self.channels not in (1, 3):
            raise GanbenchError(f"progan: channels must be 1 or 3, got {self.channels}")
        if self.phase_steps < 0 or self.mbstd_group < 1 or self.fmap_max < 1 or self.fmap_base < 2:
            raise GanbenchError("progan: phase_steps must be >= 0, mbstd_group, fmap_max >= 1, fmap_base >= 2")
        if self.gp_target <= 0:
            raise GanbenchError(f"progan: gp_target must be positive, got {self.gp_target}")


# ---------------------------------------------------------------------------------------
# The maths (pure functions)
# ---------------------------------------------------------------------------------------
def base_resolutions(image_size: int) -> list[int]:
    """Resolutions of the growth stages: 28 -> [7, 14, 28], 32 -> [4, 8, 16, 32]."""
    for base in (4, 7):
        k = math.log2(image_size / base) if image_size >= base else -1
        if k >= 0 and k == int(k):
            return [base * 2 ** i for i in range(int(k) + 1)]
    raise GanbenchError(f"progan: image_size must be 4 * 2**k (4, 8, ..., 32, 64...) or 7 * 2**k "
                        f"(7, 14, 28...), got {image_size}")


def growth_schedule(step: int, num_stages: int, phase_steps: int) -> tuple[int, float]:
    """(stage, alpha) at ``step``: stage 0 stabilises for ``phase_steps``, then every later
    stage fades in (alpha from 0 to 1, linearly) for ``phase_steps`` and stabilises
    (alpha = 1) for ``phase_steps``; the last stage then stays. ``phase_steps = 0``
    trains the full resolution from the start."""
    if phase_steps == 0:
        return num_stages - 1, 1.0
    phase, into = divmod(step, phase_steps)
    stage = (phase + 1) // 2
    if stage >= num_stages:
        return num_stages - 1, 1.0
    alpha = into / phase_steps if phase % 2 == 1 else 1.0
    return stage, alpha


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixelwise feature normalisation: each position's feature vector to unit RMS (dim 1)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, *, any_group: bool = True) -> torch.Tensor:
    """Append one feature map: the std of each feature over a group of samples, averaged
    over features and positions; (N, C, H, W) -> (N, C + 1, H, W). Computed in float32.

    Sample i belongs to group ``i % (N / G)`` (the official reshape). The group size G is
    the largest divisor of N that is at most ``group_size`` (ProGAN's code); with
    ``any_group=False`` it is ``min(group_size, N)`` if that divides N, else 1 (StyleGAN2's
    rule, which GPEN follows)."""
    n, c, h, w = x.shape
    g = _group_size(n, group_size, any_group)
    y = x.float().view(g, -1, c, h, w)
    std = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (N/G, C, H, W)
    stat = std.mean(dim=(1, 2, 3)).to(x.dtype)  # (N/G,)
    stat = stat.view(1, -1, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, stat], dim=1)


def _group_size(n: int, group_size: int, any_group: bool) -> int:
    if any_group:
        return max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    g = min(group_size, n)
    return g if n % g == 0 else 1


def fade(old: torch.Tensor, new: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(1 - alpha) * old + alpha * new`` (just ``new`` at alpha = 1)."""
    return new if alpha >= 1.0 else torch.lerp(old, new, alpha)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Average-pool a square image batch to ``size`` px (an integer factor)."""
    factor = x.shape[-1] // size
    return x if factor == 1 else F.avg_pool2d(x, factor)


# ---------------------------------------------------------------------------------------
# Equalized-learning-rate layers (shared with StyleGAN)
# ---------------------------------------------------------------------------------------
class EqualizedLinear(nn.Module):
    """Linear layer with weights stored as N(0, 1 / lr_mul^2) and scaled at run time by
    ``lr_mul * gain / sqrt(fan_in)`` (bias by ``lr_mul``): the effective learning rate of
    the layer is ``lr * lr_mul`` whatever its fan-in."""

    def __init__(self, cin: int, cout: int, *, gain: float = math.sqrt(2), lr_mul: float = 1.0,
                 bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul))
        self.weight_scale = lr_mul * gain / math.sqrt(cin)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_scale, self.bias * self.lr_mul)


class EqualizedConv2d(nn.Module):
    """Convolution (stride 1, 'same' padding) with the run-time He scaling of
    :class:`EqualizedLinear`; fan_in = cin * k * k."""

    def __init__(self, cin: int, cout: int, kernel: int, *, gain: float = math.sqrt(2), bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.weight_scale = gain / math.sqrt(cin * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.weight_scale, self.bias, padding=self.padding)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def stage_widths(c: ProGANConfig, num_stages: int) -> list[int]:
    return [max(1, min(c.fmap_base // 2 ** (s + 1), c.fmap_max)) for s in range(num_stages)]


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------
class GConvPair(nn.Module):
    """Up x2 (unless ``first``), then two [conv 3 x 3, LeakyReLU, pixel norm]."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(cin, cout, 3)
        self.conv2 = EqualizedConv2d(cout, cout, 3)

    def forward(self, x):
        x = pixel_norm(lrelu(self.conv1(upsample2(x))))
        return pixel_norm(lrelu(self.conv2(x)))


class Generator(GenerativeModel):
    """The growing generator. ``synthesize(z, stage, alpha)`` gives images at the stage's
    resolution (linear output, for training); ``generate`` uses the stage and alpha held
    in buffers (set by the training step, checkpointed, copied to the EMA generator)."""

    def __init__(self, c: ProGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist="normal", channels=c.channels, image_size=c.image_size)
        self.resolutions = base_resolutions(c.image_size)
        widths = stage_widths(c, len(self.resolutions))
        self.base, self.width0 = self.resolutions[0], widths[0]
        # the official code's gain sqrt(2)/4 on the dense layer of the 4 x 4 block
        self.dense = EqualizedLinear(c.z_dim, widths[0] * self.base ** 2, gain=math.sqrt(2) / 4)
        self.conv0 = EqualizedConv2d(widths[0], widths[0], 3)
        self.blocks = nn.ModuleList(GConvPair(a, b) for a, b in zip(widths, widths[1:]))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(w, c.channels, 1, gain=1.0) for w in widths)
        last = len(self.resolutions) - 1
        self.register_buffer("stage", torch.tensor(last, dtype=torch.long))
        self.register_buffer("alpha", torch.tensor(1.0))

    def set_growth(self, stage: int, alpha: float) -> None:
        self.stage.fill_(stage)
        self.alpha.fill_(alpha)

    def synthesize(self, z: torch.Tensor, stage: int, alpha: float = 1.0) -> torch.Tensor:
        """Images at ``resolutions[stage]`` px, fading the newest block in by ``alpha``."""
        h = lrelu(self.dense(pixel_norm(z))).view(len(z), self.width0, self.base, self.base)
        h = pixel_norm(lrelu(self.conv0(pixel_norm(h))))
        for block in self.blocks[:stage - 1] if stage > 0 else ():
            h = block(h)
        if stage == 0:
            return self.to_rgb[0](h)
        new = self.to_rgb[stage](self.blocks[stage - 1](h))
        if alpha >= 1.0:
            return new
        return fade(upsample2(self.to_rgb[stage - 1](h)), new, alpha)

    def generate(self, z, labels=None):
        x = self.synthesize(z, int(self.stage), float(self.alpha))
        if x.shape[-1] != self.latent.image_size:
            x = F.interpolate(x, size=self.latent.image_size, mode="nearest")
        return x.clamp(-1.0, 1.0)


class DBlock(nn.Module):
    """Two [conv 3 x 3, LeakyReLU], then 2 x 2 average pooling."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(cin, cin, 3)
        self.conv2 = EqualizedConv2d(cin, cout, 3)

    def forward(self, x):
        return F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)


class Discriminator(nn.Module):
    """The growing critic: ``forward(x, stage, alpha)`` with x at ``resolutions[stage]`` px."""

    def __init__(self, c: ProGANConfig):
        super().__init__()
        self.resolutions = base_resolutions(c.image_size)
        widths = stage_widths(c, len(self.resolutions))
        self.mbstd_group = c.mbstd_group
        self.from_rgb = nn.ModuleList(EqualizedConv2d(c.channels, w, 1) for w in widths)
        # blocks[s - 1] takes stage s's resolution to stage s - 1's
        self.blocks = nn.ModuleList(DBlock(b, a) for a, b in zip(widths, widths[1:]))
        w0, base = widths[0], self.resolutions[0]
        self.conv = EqualizedConv2d(w0 + 1, w0, 3)
        self.dense = EqualizedLinear(w0 * base * base, w0)
        self.out = EqualizedLinear(w0, 1, gain=1.0)

    def forward(self, x: torch.Tensor, stage: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        stage = len(self.resolutions) - 1 if stage is None else stage
        h = lrelu(self.from_rgb[stage](x))
        if stage > 0:
            h = self.blocks[stage - 1](h)
            if alpha < 1.0:
                h = fade(lrelu(self.from_rgb[stage - 1](F.avg_pool2d(x, 2))), h, alpha)
            for s in range(stage - 1, 0, -1):
                h = self.blocks[s - 1](h)
        h = lrelu(self.conv(minibatch_stddev(h, self.mbstd_group)))
        return self.out(lrelu(self.dense(h.flatten(1)))).flatten()  # (N,)


def real_at_stage(images: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
    """Real images as D sees them at ``resolution``: down-sampled, and during a fade-in
    blended with their half-resolution copy up-sampled (as G's output is)."""
    x = downsample(images, resolution)
    if alpha >= 1.0:
        return x
    return fade(upsample2(F.avg_pool2d(x, 2)), x, alpha)


class ProGAN(GANModel):
    def __init__(self, config: ProGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        betas, eps = (config.beta1, config.beta2), config.eps
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas, eps=eps)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas, eps=eps)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c, G, D = self.config, self.generator, self.discriminator
        stage, alpha = growth_schedule(step, len(G.resolutions), c.phase_steps)
        G.set_growth(stage, alpha)
        critic = functools.partial(D, stage=stage, alpha=alpha)
        real = ctx.images(real_at_stage(batch.images, G.resolutions[stage], alpha))
        n = len(real)

        z, _ = ctx.latents(G.latent, n)
        eps = ctx.rand(n)
        with ctx.autocast():
            with torch.no_grad():
                fake = ctx.images(G.synthesize(z, stage, alpha))
            d_real = critic(real).float()
            d_fake = critic(fake).float()
            gp = gradient_penalty(critic, real, fake, eps, ctx, target=c.gp_target)
            drift = d_real.square().mean()
            loss_d = d_fake.mean() - d_real.mean() + c.gp_lambda * gp + c.drift * drift
        ctx.backward_step(loss_d, self.opt_d)

        with frozen(D):
            z, _ = ctx.latents(G.latent, n)
            with ctx.autocast():
                loss_g = -critic(ctx.images(G.synthesize(z, stage, alpha))).float().mean()
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "gp": gp.detach(),
                "wasserstein": (d_real.mean() - d_fake.mean()).detach(), "stage": float(stage), "alpha": alpha}


_MNIST_28 = {"image_size": 28, "fmap_max": 128, "phase_steps": 10_000}


@register_model(
    "progan", config=ProGANConfig, paper="Progressive Growing of GANs for Improved Quality, Stability, and Variation",
    authors="Karras, Aila, Laine, Lehtinen", arxiv="1710.10196", year=2018, task="unconditional",
    defaults={"mnist": _MNIST_28, "fashion-mnist": _MNIST_28, "digits": {**_MNIST_28, "phase_steps": 2_000},
              # config.py, "Section 6.5: CIFAR10 inception scores" (see the docstring)
              "cifar10": {"image_size": 32, "channels": 3, "gp_target": 750.0, "z_dim": 128, "fmap_base": 4096,
                          "fmap_max": 128, "phase_steps": 25_000},
              "celeba": {"image_size": 64, "channels": 3}},
    description="Progressive growing with fade-in, equalized learning rate, pixel norm in G, minibatch "
                "stddev in D; WGAN-GP + drift 0.001; Adam(0.001, 0, 0.99)",
    reference_code="https://github.com/tkarras/progressive_growing_of_gans (read; paper followed)",
    # Lucic et al. 2018's wide ranges (gp_lambda: their gradient-penalty range); drift a decade either side of
    # the paper's epsilon_drift = 0.001 (no range given)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "gp_lambda": LogUniform(0.1, 100.0),
                  "drift": LogUniform(1e-4, 1e-2)},
    recipes={"default": TrainingRecipe(
        batch_size=16, ema=0.999,
        source="paper A.1 and tkarras/progressive_growing_of_gans config.py: minibatch_default=16 up to "
               "128 px (CIFAR-10 config too), G_smoothing=0.999")},
    departures=[
        ("no learning-rate ramp-up (rampup_kimg = 40 in the CelebA-HQ config; the CIFAR-10 config has none)",
         "not implemented"),
        ("Adam's moments are kept when a new resolution starts (the TensorFlow code's reset_opt_for_new_lod)",
         "not implemented; the paper does not mention the reset"),
        ("minibatch stddev over groups of 4 samples (mbstd_group) instead of the whole minibatch of Section 3",
         "the official TensorFlow code's default (D_paper mbstd_group_size=4); --set mbstd_group=16 gives the "
         "paper's whole minibatch at batch 16"),
        ("CIFAR-10: G and D updates alternate; the official config sets separate_funcs=False (not alternated)",
         "ganbench's train_step alternates D and G updates; the combined update is not implemented"),
    ],
    tiny={"z_dim": 32, "fmap_base": 32, "fmap_max": 16, "phase_steps": 25},  # tests: narrow, short phases
    test_steps=250)
def build(config: ProGANConfig) -> ProGAN:
    return ProGAN(config)
