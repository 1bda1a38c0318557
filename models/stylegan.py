"""StyleGAN: Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative
Adversarial Networks", CVPR 2019. arXiv:1812.04948.

Following the paper (Sections 2-3, Appendix C) and the authors' code (NVlabs/stylegan,
read for its conventions; written anew here):

* Mapping network f (Section 2): z (512-d, N(0, I)) is normalised (pixel norm) and
  mapped by 8 fully connected layers (LeakyReLU 0.2) to w (512-d). Its learning rate is
  100 x lower (``mapping_lr_mul = 0.01``, through the equalized-lr scaling).
* Synthesis network g: a learned constant 4 x 4 (7 x 7 for 28 px) input; per resolution
  two layers [(bilinear up x2 +) conv 3 x 3, per-pixel noise with a learned per-channel
  scale (initialised to 0), bias, LeakyReLU, AdaIN]; a 1 x 1 toRGB at the end.
  AdaIN(x, y) = y_s * (x - mu(x)) / sigma(x) + y_b (instance norm, then a per-channel
  scale and shift from a learned affine map A of w; y_s = 1 + A_s(w) so styles start at
  the identity). Each layer gets its own copy of w (the "num_ws" styles).
* Style mixing regularisation (Section 3.1): for 90% of the minibatches two latents are
  mapped and the styles switch from w1 to w2 at a crossover layer drawn uniformly from
  the layers in use (one per minibatch, as the official code).
* Truncation trick in W (Section 3.1): w' = w_avg + psi (w - w_avg) on the first
  ``truncation_cutoff`` layers, w_avg an exponential moving average (beta 0.995) of the
  mapped w during training. Off (psi = 1) unless ``truncation_psi`` is set.
* Progressive growing, equalized learning rate, the minibatch-stddev discriminator and
  Adam (0.001, 0, 0.99) are ProGAN's (:mod:`ganbench.models.progan`), whose growth
  schedule, fade-in and D are reused unchanged (StyleGAN trains with progressive growing,
  Section 2 and the official code): G has one toRGB per resolution and fades a new
  resolution in exactly as ProGAN's G does. The official phases are 600k images each
  (``phase_steps = 18_750`` at batch 32).
* Loss (FFHQ setting, Appendix C): non-saturating logistic loss with the R1 penalty
  (gamma / 2) E_x[||grad D(x)||^2] on real images, gamma = 10.
* Recipe (what ``ganbench train`` uses): the evaluated G is a running average of G's
  weights with a half-life of 10k images (the official ``G_smoothing_kimg = 10.0``,
  ``training/training_loop.py``; decay ``0.5 ** (batch / 10_000)`` per step). Batch: the
  official 8-GPU schedule (``train.py``: ``minibatch_dict = {4: 512, 8: 256, 16: 128, 32:
  64, 64: 32}``, ``minibatch_base = 32`` above) at the final resolution, kept for the whole
  run: 64 for 28 / 32 px data, 32 for 64 px and above.

Differences from the paper (also listed as ``departures`` in the registration):
bilinear up-sampling stands for the paper's up-sampling + 2 x 2 binomial blur; the
learned constant starts as N(0, 1) (StyleGAN2's initialisation; StyleGAN's is 1, whose
instance norm is then 0 until the constant has learned structure); growth starts at the
base resolution (4 x 4; the official code starts at 8 x 8); one batch size for the whole
run. (Widths follow the official ``fmap_base`` rule, shared with ProGAN, and its learning
rate is 0.001 at every resolution up to 64 px, as here.)

Noise inputs: fresh N(0, 1) maps per sample in training (drawn from the global generator,
which the harness seeds). Sampling in eval mode (:meth:`Generator.generate`: evaluation,
sample grids) gives every sample its own maps too, as the official metrics do (FID:
``Gs.get_output_for(..., randomize_noise=True)`` in NVlabs/stylegan ``metrics/``), drawn
from a generator seeded by a hash of the sample's z and ``Generator.noise_seed``: the same z
and seed give the same image in any batch and on any device; another ``noise_seed`` is
another noise draw. :meth:`Generator.synthesis` without explicit noise (PPL in W) uses
one fixed map per layer, drawn at construction, for every sample and both ends of each
path, as the official PPL (``randomize_noise=False``; it redraws the maps per minibatch,
here they stay fixed). PPL in Z goes through ``generate`` and so gives the two ends of a
path different noise, where the official code shares it: use PPL in W (this model's
default). ``noise_mode`` ("random", "const", "none") and ``noise`` of
:meth:`Generator.synthesize` override these.

The generator exposes ``has_mapping = True``, ``mapping(z, labels) -> w`` of shape
(N, num_ws, w_dim) and ``synthesis(w)``, so PPL walks W (lerp), as the paper's Table 3/4.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)
from ganbench.models.losses import r1_penalty
from ganbench.models.progan import (Discriminator, EqualizedConv2d, EqualizedLinear, base_resolutions, fade,
                                    growth_schedule, lrelu, pixel_norm, real_at_stage, stage_widths, upsample2)

NOISE_MODES = ("auto", "random", "const", "none")
NoiseMaps = list  # one (N or 1, 1, res, res) noise map per synthesis layer


@dataclass(frozen=True)
class StyleGANConfig(ModelConfig):
    z_dim: int = 512  # length of the latent z
    w_dim: int = 512  # length of the intermediate latent w
    mapping_layers: int = 8  # fully connected layers of the mapping network
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network
    fmap_base: int = 8192  # width at stage s: min(fmap_base / 2**(s + 1), fmap_max), s = 0 at the base
    fmap_max: int = 512  # largest number of feature maps of any layer
    mbstd_group: int = 4  # D's minibatch-stddev group size
    phase_steps: int = 18_750  # steps per fade-in and per stabilisation phase (official: 600k images)
    style_mixing_prob: float = 0.9  # share of minibatches trained with two mixed latents
    r1_gamma: float = 10.0  # gamma of the R1 penalty on real images
    w_avg_beta: float = 0.995  # decay of the moving average of w used by truncation
    truncation_psi: float = 1.0  # psi of the truncation trick at sampling (1: off; the paper shows 0.7)
    truncation_cutoff: int | None = 8  # truncate only the first this many styles (None: all)
    lr: float = 0.001  # Adam learning rate, G and D
    beta1: float = 0.0  # Adam beta1
    beta2: float = 0.99  # Adam beta2
    eps: float = 1e-8  # Adam epsilon

    def __post_init__(self):
        base_resolutions(self.image_size)
        if self.channels not in (1, 3):
            raise GanbenchError(f"stylegan: channels must be 1 or 3, got {self.channels}")
        if self.mapping_layers < 1 or self.w_dim < 1 or self.z_dim < 1:
            raise GanbenchError("stylegan: mapping_layers, w_dim and z_dim must be >= 1")
        if not 0.0 <= self.style_mixing_prob <= 1.0 or not 0.0 <= self.w_avg_beta < 1.0:
            raise GanbenchError("stylegan: style_mixing_prob must lie in [0, 1] and w_avg_beta in [0, 1)")
        if self.phase_steps < 0:
            raise GanbenchError(f"stylegan: phase_steps must be >= 0, got {self.phase_steps}")
        if self.mapping_lr_mul <= 0 or self.r1_gamma < 0:
            raise GanbenchError("stylegan: mapping_lr_mul must be positive and r1_gamma >= 0")


# ---------------------------------------------------------------------------------------
# The maths (pure functions)
# ---------------------------------------------------------------------------------------
def adain(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Instance-normalise x (N, C, H, W), then ``x * scale + shift`` with (N, C) styles."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)
    return x * scale[:, :, None, None] + shift[:, :, None, None]


def mix_styles(w1: torch.Tensor, w2: torch.Tensor, crossover: int) -> torch.Tensor:
    """Styles (N, num_ws, w_dim) taken from ``w1`` before layer ``crossover`` and from
    ``w2`` from it on."""
    layer = torch.arange(w1.shape[1], device=w1.device)[None, :, None]
    return torch.where(layer < crossover, w1, w2)


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick: ``w_avg + psi (w - w_avg)`` on the first ``cutoff`` styles of
    w (N, num_ws, w_dim) (all when ``cutoff`` is None)."""
    if psi == 1.0:
        return w
    truncated = torch.lerp(w_avg.to(w.dtype), w, psi)
    if cutoff is None or cutoff >= w.shape[1]:
        return truncated
    return mix_styles(truncated, w, cutoff)


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------
class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``layers`` equalized fully connected layers with LeakyReLU."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mul: float):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims, dims[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z)
        for layer in self.layers:
            x = lrelu(layer(x))
        return x


class StyleLayer(nn.Module):
    """[(up x2,) conv 3 x 3,] noise, bias, LeakyReLU, AdaIN with the style A(w)."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, *, up: bool = False, conv: bool = True):
        super().__init__()
        self.up = up
        self.conv = EqualizedConv2d(cin, cout, 3, bias=False) if conv else None
        self.noise_strength = nn.Parameter(torch.zeros(cout))  # B: learned per-channel noise scale
        self.bias = nn.Parameter(torch.zeros(cout))
        self.affine = EqualizedLinear(w_dim, 2 * cout, gain=1.0)  # A
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """``noise``: (N or 1, 1, H, W) at this layer's resolution, or None for no noise."""
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if self.conv is not None:
            x = self.conv(x)
        if noise is not None:
            x = x + noise.to(x.dtype) * self.noise_strength.to(x.dtype)[None, :, None, None]
        x = lrelu(x + self.bias.to(x.dtype)[None, :, None, None])
        scale, shift = self.affine(w).chunk(2, dim=1)
        return adain(x, 1.0 + scale, shift)


def _noise_seed(key: np.ndarray, seed: int) -> int:
    """A 64-bit seed from ``seed`` and the bytes of one sample's key (its float32 z)."""
    digest = hashlib.blake2b(int(seed).to_bytes(8, "little", signed=True) + key.tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class Generator(GenerativeModel):
    """Mapping network + synthesis network. ``generate(z)`` applies the truncation
    ``truncation_psi`` (an attribute, from the config) and clamps to [-1, 1]; images of a
    stage below the last are up-sampled (nearest) to ``image_size``. The growth stage and
    alpha live in buffers (set by the training step, checkpointed, copied to the EMA G)."""

    has_mapping = True

    def __init__(self, c: StyleGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist="normal", channels=c.channels, image_size=c.image_size)
        self.resolutions = resolutions = base_resolutions(c.image_size)
        widths = stage_widths(c, len(resolutions))
        self.mapping_network = MappingNetwork(c.z_dim, c.w_dim, c.mapping_layers, c.mapping_lr_mul)
        self.const = nn.Parameter(torch.randn(1, widths[0], resolutions[0], resolutions[0]))
        layers = []
        for i, (res, width) in enumerate(zip(resolutions, widths)):
            if i == 0:
                layers.append(StyleLayer(width, width, c.w_dim, res, conv=False))
            else:
                layers.append(StyleLayer(widths[i - 1], width, c.w_dim, res, up=True))
            layers.append(StyleLayer(width, width, c.w_dim, res))
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.ModuleList(EqualizedConv2d(w, c.channels, 1, gain=1.0) for w in widths)
        self.num_ws = len(layers)
        self.register_buffer("stage", torch.tensor(len(resolutions) - 1, dtype=torch.long))
        self.register_buffer("alpha", torch.tensor(1.0))
        self.register_buffer("w_avg", torch.zeros(c.w_dim))
        self.truncation_psi, self.truncation_cutoff = c.truncation_psi, c.truncation_cutoff
        self.noise_seed = 0  # salt of the per-sample noise of generate() in eval mode: another draw for the same z

    def mapping(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """w for every synthesis layer: (N, num_ws, w_dim) (untruncated)."""
        return self.mapping_network(z)[:, None, :].expand(-1, self.num_ws, -1)

    def set_growth(self, stage: int, alpha: float) -> None:
        self.stage.fill_(stage)
        self.alpha.fill_(alpha)

    def synthesize(self, w: torch.Tensor, noise_mode: str = "auto", stage: int | None = None,
                   alpha: float | None = None, *, noise: NoiseMaps | None = None) -> torch.Tensor:
        """Unclamped images at the stage's resolution from styles w: (N, w_dim) or
        (N, num_ws, w_dim); ``stage``/``alpha`` default to the buffers'. Styles of layers
        above the stage are unused. ``noise`` (one map per layer, e.g. from
        :meth:`per_sample_noise`) replaces the maps ``noise_mode`` would give."""
        stage = int(self.stage) if stage is None else stage
        alpha = float(self.alpha) if alpha is None else alpha
        if w.dim() == 2:
            w = w[:, None, :].expand(-1, self.num_ws, -1)
        if w.shape[1] != self.num_ws:
            raise InputError(f"synthesis expects {self.num_ws} styles, got w of shape {tuple(w.shape)}")
        active = self.layers[:2 * stage + 2]
        if noise is None:
            noise = self.noise_maps(noise_mode, len(w), w.device, len(active))
        x = previous = self.const.to(w.dtype).expand(len(w), -1, -1, -1)
        for i, layer in enumerate(active):
            if i == 2 * stage:
                previous = x
            x = layer(x, w[:, i], noise[i])
        rgb = self.to_rgb[stage](x)
        if stage == 0 or alpha >= 1.0:
            return rgb
        return fade(upsample2(self.to_rgb[stage - 1](previous)), rgb, alpha)

    def noise_maps(self, noise_mode: str, n: int, device: torch.device, layers: int) -> NoiseMaps:
        """Noise of ``noise_mode`` for the first ``layers`` layers: "random" (fresh N(0, 1)
        maps per sample from the global generator: training), "const" (each layer's one fixed
        map, the same for every sample), "none", or "auto" ("random" in training mode, else
        "const")."""
        if noise_mode not in NOISE_MODES:
            raise InputError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        if noise_mode == "auto":
            noise_mode = "random" if self.training else "const"
        if noise_mode == "none":
            return [None] * layers
        if noise_mode == "const":
            return [layer.noise_const for layer in self.layers[:layers]]
        return [torch.randn(n, 1, *layer.noise_const.shape[2:], device=device) for layer in self.layers[:layers]]

    def per_sample_noise(self, keys: torch.Tensor, seed: int = 0) -> NoiseMaps:
        """Noise maps (N, 1, res, res) per layer, each sample's drawn on the CPU from its own
        generator seeded by a hash of (``seed``, the sample's row of ``keys``): the same key
        and seed give the same maps in any batch and on any device; other keys or another
        seed give independent ones."""
        sizes = [layer.noise_const.shape[-1] for layer in self.layers]
        draws = torch.stack([torch.randn(sum(r * r for r in sizes), generator=torch.Generator().manual_seed(
            _noise_seed(row, seed))) for row in keys.detach().to("cpu", torch.float32).numpy()])
        chunks = draws.to(keys.device).split([r * r for r in sizes], dim=1)
        return [chunk.view(-1, 1, r, r) for chunk, r in zip(chunks, sizes)]

    def synthesis(self, w: torch.Tensor, noise_mode: str = "auto", *, noise: NoiseMaps | None = None) -> torch.Tensor:
        """Images in [-1, 1] at ``image_size`` from styles w (PPL in W uses it without
        ``noise``: in eval mode both ends of a path share each layer's fixed map)."""
        x = self.synthesize(w, noise_mode, noise=noise)
        if x.shape[-1] != self.latent.image_size:
            x = F.interpolate(x, size=self.latent.image_size, mode="nearest")
        return x.clamp(-1.0, 1.0)

    def generate(self, z, labels=None, noise_seed: int | None = None):
        """Images in [-1, 1] from z (truncated in W when ``truncation_psi`` < 1). In eval
        mode (evaluation, sampling) every sample gets its own noise maps, seeded by its z and
        ``noise_seed`` (default: the ``noise_seed`` attribute, 0), as the official metrics'
        ``randomize_noise=True`` but reproducible: same z and seed, same image."""
        w = truncate(self.mapping(z), self.w_avg, self.truncation_psi, self.truncation_cutoff)
        if self.training:
            return self.synthesis(w)
        return self.synthesis(w, noise=self.per_sample_noise(z, self.noise_seed if noise_seed is None else noise_seed))

    def set_truncation(self, psi: float | None) -> float:
        """Set ``generate``'s truncation psi (None or 1: off; 0: every w is w_avg on the first
        ``truncation_cutoff`` styles); returns the previous psi. The sampling hook of
        ``ganbench sample --truncation``."""
        previous, self.truncation_psi = self.truncation_psi, 1.0 if psi is None else float(psi)
        return previous

    @torch.no_grad()
    def track_w_avg(self, w: torch.Tensor, beta: float) -> None:
        self.w_avg.lerp_(w.detach().float().mean(0).to(self.w_avg.dtype), 1.0 - beta)


class StyleGAN(GANModel):
    def __init__(self, config: StyleGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)  # ProGAN's growing D
        betas, eps = (config.beta1, config.beta2), config.eps
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas, eps=eps)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas, eps=eps)

    def training_styles(self, n: int, ctx: TrainContext) -> torch.Tensor:
        """Styles (n, num_ws, w_dim) for a training minibatch, style-mixed with
        probability ``style_mixing_prob`` at a crossover among the current stage's layers."""
        G, c = self.generator, self.config
        z, _ = ctx.latents(G.latent, n)
        w = G.mapping(z)
        active = 2 * int(G.stage) + 2  # layers of the current growth stage
        u = torch.rand((), device=ctx.device, generator=ctx.generator).item()
        if u < c.style_mixing_prob:
            z2, _ = ctx.latents(G.latent, n)
            crossover = int(torch.randint(1, active, (), device=ctx.device, generator=ctx.generator))
            w = mix_styles(w, G.mapping(z2), crossover)
        return w

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c, G = self.config, self.generator
        stage, alpha = growth_schedule(step, len(G.resolutions), c.phase_steps)
        G.set_growth(stage, alpha)
        D = functools.partial(self.discriminator, stage=stage, alpha=alpha)
        real = ctx.images(real_at_stage(batch.images, G.resolutions[stage], alpha))
        n = len(real)

        with ctx.autocast():
            with torch.no_grad():
                fake = ctx.images(G.synthesize(self.training_styles(n, ctx), "random"))
            d_fake = D(fake).float()
            d_real, r1 = r1_penalty(D, real, ctx)
            d_real = d_real.float()
            loss_d = F.softplus(d_fake).mean() + F.softplus(-d_real).mean() + 0.5 * c.r1_gamma * r1
        ctx.backward_step(loss_d, self.opt_d)

        with frozen(self.discriminator):
            with ctx.autocast():
                w = self.training_styles(n, ctx)
                loss_g = F.softplus(-D(ctx.images(G.synthesize(w, "random"))).float()).mean()
            ctx.backward_step(loss_g, self.opt_g)
        G.track_w_avg(w[:, 0], c.w_avg_beta)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "r1": r1.detach(),
                "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean(),
                "stage": float(stage), "alpha": alpha}


_MNIST_28 = {"image_size": 28, "fmap_max": 128, "z_dim": 128, "w_dim": 128, "phase_steps": 10_000}


def _recipe(batch_size: int) -> TrainingRecipe:
    """The official G smoothing (half-life 10k images) at the 8-GPU batch of the final resolution."""
    return TrainingRecipe(batch_size=batch_size, ema_halflife_kimg=10.0,
                          source="NVlabs/stylegan training_loop.py G_smoothing_kimg=10.0; train.py 8-GPU "
                                 "minibatch_dict {4: 512, 8: 256, 16: 128, 32: 64, 64: 32} at the final resolution")


@register_model(
    "stylegan", config=StyleGANConfig, paper="A Style-Based Generator Architecture for Generative Adversarial Networks",
    authors="Karras, Laine, Aila", arxiv="1812.04948", year=2019, task="unconditional",
    defaults={"mnist": _MNIST_28, "fashion-mnist": _MNIST_28, "digits": _MNIST_28,
              # 600k images per phase (lod_training_kimg = lod_transition_kimg = 600) at the recipe's batch 64
              "cifar10": {"image_size": 32, "channels": 3, "phase_steps": 9_375},
              "celeba": {"image_size": 64, "channels": 3}},
    description="Mapping network (8 FC, lr x 0.01) to w, AdaIN styles on a learned constant, per-pixel "
                "noise, style mixing, truncation in W; non-saturating loss + R1 (gamma 10); Adam(0.001, 0, 0.99)",
    reference_code="https://github.com/NVlabs/stylegan (read; paper followed)",
    # Lucic et al. 2018's wide ranges (r1_gamma: their gradient-penalty range); style mixing over the paper's
    # Table 2 (0 to 100% of the minibatches)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "r1_gamma": LogUniform(0.1, 100.0),
                  "style_mixing_prob": Uniform(0.0, 1.0)},
    recipes={"default": _recipe(32), "celeba": _recipe(32), "cifar10": _recipe(64), "mnist": _recipe(64),
             "fashion-mnist": _recipe(64), "digits": _recipe(64)},
    departures=[
        ("bilinear up-sampling instead of up-sampling followed by a 2 x 2 binomial blur",
         "a smoothing up-sampler in one call; the blur layer is not implemented"),
        ("the learned constant input starts as N(0, 1) instead of 1",
         "StyleGAN's all-ones constant has zero instance-norm output until it learns structure"),
        ("growth starts at the base resolution (4 x 4, or 7 x 7 for 28 px) instead of 8 x 8",
         "ProGAN's growth schedule is reused unchanged"),
        ("one batch size for the whole run (the final resolution's) instead of 512 at 4 x 4 down to it",
         "ganbench trains with one batch size per run"),
        ("PPL in W keeps one fixed noise map per layer for all paths; the official PPL redraws it per minibatch",
         "seeded, batch-independent PPL; both ends of a path still share their noise, as the official code"),
    ],
    # tests: narrow nets, short phases, the official code's higher-resolution learning rate, and a
    # two-layer mapping at lr x 0.1 (at x 0.01 it barely moves in 250 steps: lenet-FID 388 against a
    # threshold of 439; with phases of 25 steps too, 363 with phases of 15, 358 with both changes)
    tiny={"z_dim": 32, "w_dim": 32, "mapping_layers": 2, "mapping_lr_mul": 0.1, "fmap_base": 64, "fmap_max": 16,
          "phase_steps": 15, "lr": 0.002},
    test_steps=250)
def build(config: StyleGANConfig) -> StyleGAN:
    return StyleGAN(config)
