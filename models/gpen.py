"""GPEN: Yang, Ren, Xie & Zhang, "GAN Prior Embedded Network for Blind Face Restoration
in the Wild", CVPR 2021. arXiv:2105.06070.

Followed here (Section 3 of the paper; layer details after the authors' code):

* A U-shaped network. The encoder (a 1 x 1 conv, then stride-2 3 x 3 convs down to
  4 x 4, LeakyReLU) maps the degraded image to a latent code (a fully connected layer on
  the 4 x 4 features) and to feature maps at every resolution.
* The decoder is a StyleGAN2-like generator -- the GAN prior: the latent code goes
  through the mapping MLP (pixel norm, ``n_mlp`` layers, lr multiplier 0.01) to w; a
  learned 4 x 4 constant is refined by modulated / demodulated 3 x 3 convolutions with
  skip ToRGB outputs. Its noise inputs are the encoder's feature maps of the same
  resolution, concatenated to the decoder's features (the paper's choice over adding).
  Equalised learning rate throughout.
* Training: the GAN prior is first trained as an unconditional GAN (random noise maps,
  z ~ N(0, I)) for ``prior_steps`` steps, then embedded and the whole network fine-tuned
  with L = L_A + alpha L_C + beta L_F: the non-saturating adversarial loss (softplus),
  the content loss L_C = ||X_restored - X_clean||_1 and the feature-matching loss L_F,
  the L2 distance between D's intermediate features of the clean and the restored image;
  alpha = 1, beta = 0.02. D: StyleGAN2's residual discriminator with minibatch stddev,
  logistic loss and lazy R1 (gamma = 10 every 16 steps). Adam lr 0.002, betas (0, 0.99)
  with StyleGAN2's lazy-regularisation correction.
* The recipe follows the authors' ``train_simple.py``: batch 4 (its ``--batch`` default,
  per process) and an exponential moving average of G with decay 0.5 ** (32 / 10,000)
  per step (``accumulate(g_ema, ...)``), the generator the authors validate and save.

Scaled down: 32 x 32 px with narrow layers; up-sampling is bilinear instead of the
transposed convolution + FIR blur of StyleGAN2, down-sampling in D is average pooling;
no path-length regularisation and no style mixing. The restored image is clamped to
[-1, 1] when evaluated (the decoder's raw output is unbounded, as in StyleGAN2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import ConditionalImageGenerator, LatentSpec
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, frozen,
                                  register_model)
from ganbench.models.losses import r1_penalty
from ganbench.models.progan import minibatch_stddev


@dataclass(frozen=True)
class GPENConfig(ModelConfig):
    source_channels: int = 1  # channels of the degraded input image
    style_dim: int = 512  # length of the latent code and of w
    n_mlp: int = 8  # layers of the mapping network
    g_channels: int = 512  # feature maps of encoder and decoder at every resolution (<= 32 px in the paper)
    d_channels: int = 512  # feature maps of the discriminator at every resolution
    content_weight: float = 1.0  # alpha: weight of the L1 content loss
    fm_weight: float = 0.02  # beta: weight of the feature-matching loss on D's features
    r1_gamma: float = 10.0  # R1 penalty weight on real images
    d_reg_every: int = 16  # lazy regularisation: R1 every this many steps
    lr: float = 0.002  # Adam learning rate of G (encoder + prior) and D
    lr_mlp: float = 0.01  # learning-rate multiplier of the mapping network
    prior_steps: int = 0  # first steps training the decoder alone as an unconditional GAN (the GAN prior)

    def __post_init__(self):
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise GanbenchError(f"gpen: image_size must be a power of two >= 8, got {self.image_size}")


# ---------------------------------------------------------------------------------------
# Losses (pure functions)
# ---------------------------------------------------------------------------------------
def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def feature_matching_loss(real_features: list[torch.Tensor], fake_features: list[torch.Tensor]) -> torch.Tensor:
    """Sum over D's layers of the mean squared distance between features (real detached)."""
    return sum((f - r.detach()).pow(2).mean() for r, f in zip(real_features, fake_features))


# ---------------------------------------------------------------------------------------
# Layers with equalised learning rate
# ---------------------------------------------------------------------------------------
class EqualLinear(nn.Module):
    def __init__(self, cin: int, cout: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(cin), lr_mul, activate

    def forward(self, x):
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(out, 0.2) * math.sqrt(2) if self.activate else out


class EqualConv(nn.Module):
    """Conv (+ bias + scaled LeakyReLU), equalised lr; ``down``: average-pool by 2 afterwards."""

    def __init__(self, cin: int, cout: int, k: int, *, activate: bool = True, bias: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.activate, self.down = 1 / math.sqrt(cin * k * k), activate, down

    def forward(self, x):
        out = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)
        if self.down:
            out = F.avg_pool2d(out, 2)
        return F.leaky_relu(out, 0.2) * math.sqrt(2) if self.activate else out


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated convolution: weights scaled per input channel by the style,
    then (optionally) demodulated to unit output variance. Computed as StyleGAN2-ADA's
    non-fused path -- scale the input, one shared conv, scale the output -- which equals
    the per-sample weights and is far cheaper than a grouped conv on the CPU."""

    def __init__(self, cin: int, cout: int, k: int, style_dim: int, *, demodulate: bool = True, up: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.modulation = EqualLinear(style_dim, cin, bias_init=1.0)
        self.scale, self.demodulate, self.up, self.pad = 1 / math.sqrt(cin * k * k), demodulate, up, k // 2

    def forward(self, x, w):
        style = self.modulation(w)  # (B, Cin)
        weight = self.weight * self.scale
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = F.conv2d(x * style[:, :, None, None], weight, padding=self.pad)
        if self.demodulate:  # 1 / ||w * s|| per sample and output channel
            demod = torch.rsqrt(style.pow(2) @ weight.pow(2).sum([2, 3]).t() + 1e-8)  # (B, Cout)
            out = out * demod[:, :, None, None]
        return out


class StyledConv(nn.Module):
    """Modulated conv -> concatenated noise input (encoder features) -> bias + LeakyReLU."""

    def __init__(self, cin: int, cout: int, style_dim: int, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, style_dim, up=up)
        self.noise_weight = nn.Parameter(torch.zeros(1))  # StyleGAN2's zero-initialised noise strength
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x, w, noise):
        out = F.leaky_relu(self.conv(x, w) + self.bias, 0.2) * math.sqrt(2)
        return torch.cat([out, self.noise_weight * noise], 1)


class ToRGB(nn.Module):
    def __init__(self, cin: int, cout: int, style_dim: int):
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x, w, skip=None):
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
        return out


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------
class GPENGenerator(ConditionalImageGenerator):
    """Encoder -> (latent code, feature maps) -> mapping -> StyleGAN2-like decoder."""

    def __init__(self, c: GPENConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=0, channels=c.channels, image_size=c.image_size,
                                 source_channels=c.source_channels)
        ch, levels = c.g_channels, int(math.log2(c.image_size)) - 1  # resolutions 4 .. image_size
        self.levels = levels
        self.encoder = nn.ModuleList([EqualConv(c.source_channels, ch, 1)] +
                                     [EqualConv(ch, ch, 3, down=True) for _ in range(levels - 1)])
        self.to_code = EqualLinear(ch * 16, c.style_dim, activate=True)
        self.style_mlp = nn.Sequential(*[EqualLinear(c.style_dim, c.style_dim, lr_mul=c.lr_mlp,
                                                   activate=True) for _ in range(c.n_mlp)])
        self.const = nn.Parameter(torch.randn(1, ch, 4, 4))
        self.conv1 = StyledConv(ch, ch, c.style_dim)
        self.to_rgb1 = ToRGB(2 * ch, c.channels, c.style_dim)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for _ in range(levels - 1):
            self.convs.append(StyledConv(2 * ch, ch, c.style_dim, up=True))
            self.convs.append(StyledConv(2 * ch, ch, c.style_dim))
            self.to_rgbs.append(ToRGB(2 * ch, c.channels, c.style_dim))

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(latent code (B, style_dim), encoder features at 4, 8, ..., image_size px)."""
        feats, x = [], source
        for layer in self.encoder:
            x = layer(x)
            feats.append(x)
        return self.to_code(x.flatten(1)), feats[::-1]

    def decode(self, code: torch.Tensor, noises: list[torch.Tensor]) -> torch.Tensor:
        """The GAN prior: code -> w (mapping) -> image, noise inputs per resolution (4 px first)."""
        code = code * torch.rsqrt(code.pow(2).mean(1, keepdim=True) + 1e-8)  # pixel norm
        w = self.style_mlp(code)
        x = self.conv1(self.const.expand(len(code), -1, -1, -1), w, noises[0])
        skip = self.to_rgb1(x, w)
        for i, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * i](x, w, noises[i + 1])
            x = self.convs[2 * i + 1](x, w, noises[i + 1])
            skip = to_rgb(x, w, skip)
        return skip

    def restore(self, source: torch.Tensor) -> torch.Tensor:
        """The unclamped restored image (training)."""
        code, feats = self.encode(source)
        return self.decode(code, feats)

    def sample_prior(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """An unconditional sample of the GAN prior (random noise maps), for its pre-training."""
        ch = self.const.shape[1]
        noises = [torch.randn(len(z), ch, 4 * 2 ** i, 4 * 2 ** i, device=z.device, generator=generator)
                  for i in range(self.levels)]
        return self.decode(z, noises)

    def translate(self, source, z=None):
        return self.restore(source).clamp(-1.0, 1.0)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = EqualConv(cin, cin, 3)
        self.conv2 = EqualConv(cin, cout, 3, down=True)
        self.skip = EqualConv(cin, cout, 1, activate=False, bias=False, down=True)

    def forward(self, x):
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class Discriminator(nn.Module):
    """StyleGAN2's residual D: fromRGB, residual blocks to 4 px, minibatch stddev, two FC."""

    def __init__(self, c: GPENConfig):
        super().__init__()
        ch = c.d_channels
        self.from_rgb = EqualConv(c.channels, ch, 1)
        self.blocks = nn.ModuleList([ResBlock(ch, ch) for _ in range(int(math.log2(c.image_size)) - 2)])
        self.final_conv = EqualConv(ch + 1, ch, 3)
        self.fc = EqualLinear(ch * 16, ch, activate=True)
        self.out = EqualLinear(ch, 1)

    def forward(self, x) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits (N,), intermediate features for feature matching)."""
        x = self.from_rgb(x)
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        x = minibatch_stddev(x, 4, any_group=False)
        x = self.final_conv(x)
        feats.append(x)
        return self.out(self.fc(x.flatten(1))).flatten(), feats


class GPEN(GANModel):
    def __init__(self, config: GPENConfig):
        super().__init__(config)
        c = config
        self.generator = GPENGenerator(c)
        self.discriminator = Discriminator(c)
        ratio = c.d_reg_every / (c.d_reg_every + 1)  # lazy regularisation (StyleGAN2 Appendix B)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr * ratio,
                                      betas=(0.0, 0.99 ** ratio))

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c, G, D = self.config, self.generator, self.discriminator
        clean = batch.images
        prior = step < c.prior_steps
        if not prior and "source" not in batch.extra:
            raise GanbenchError("gpen trains on a restoration dataset (e.g. --dataset mnist-degraded)")
        if prior:  # pre-training the GAN prior: the decoder as an unconditional StyleGAN
            z = ctx.randn(len(clean), c.style_dim)
            make_fake = lambda: G.sample_prior(z, ctx.generator)  # noqa: E731
        else:
            degraded = batch.extra["source"]
            make_fake = lambda: G.restore(degraded)  # noqa: E731
        # D: logistic loss, lazy R1
        with ctx.autocast():
            with torch.no_grad():
                fake = make_fake()
            loss_d = d_logistic_loss(D(clean)[0], D(fake)[0])
        ctx.backward_step(loss_d, self.opt_d)
        r1 = torch.zeros((), device=clean.device)
        if c.r1_gamma > 0 and step % c.d_reg_every == 0:
            _, r1 = r1_penalty(lambda x: D(x)[0], clean, ctx)
            ctx.backward_step(c.r1_gamma / 2 * r1 * c.d_reg_every, self.opt_d)
        # G: adversarial (+ content and feature matching once embedded)
        with frozen(D):
            with ctx.autocast():
                fake = make_fake()
                fake_logits, fake_feats = D(fake)
                loss_adv = g_nonsaturating_loss(fake_logits)
                loss_content = loss_fm = torch.zeros((), device=clean.device)
                if not prior:
                    loss_content = (fake - clean).abs().mean()
                    with torch.no_grad():
                        real_feats = D(clean)[1]
                    loss_fm = feature_matching_loss(real_feats, fake_feats)
                loss_g = loss_adv + c.content_weight * loss_content + c.fm_weight * loss_fm
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_adv": loss_adv.detach(), "loss_content": loss_content.detach(),
                "loss_fm": loss_fm.detach(), "r1": r1.detach()}


_MNIST_32 = {"image_size": 32}


@register_model(
    "gpen", config=GPENConfig,
    paper="GAN Prior Embedded Network for Blind Face Restoration in the Wild",
    authors="Yang, Ren, Xie, Zhang", arxiv="2105.06070", year=2021, task="restoration",
    defaults={"mnist-degraded": {**_MNIST_32, "prior_steps": 20_000}},
    description="U-shaped net: encoder -> latent code + noise maps of a StyleGAN2-like prior decoder; "
                "adversarial + L1 content + D feature matching, R1",
    reference_code="https://github.com/yangxy/GPEN (face_model/gpen_model.py: layer layout; train_simple.py: "
                   "batch, G EMA)",
    # Lucic et al. 2018's learning-rate and gradient-penalty (r1_gamma) ranges; alpha, beta a decade either side
    # of the paper's 1 and 0.02; Adam's betas (0, 0.99) are fixed in the model, not config fields
    search_space={"lr": LogUniform(1e-5, 1e-2), "content_weight": LogUniform(0.1, 10.0),
                  "fm_weight": LogUniform(0.002, 0.2), "r1_gamma": LogUniform(0.1, 100.0)},
    recipes={"default": TrainingRecipe(batch_size=4, ema=0.5 ** (32 / 10_000),
                                       source="yangxy/GPEN train_simple.py: --batch 4 (per process), g_ema "
                                              "accumulated with decay 0.5 ** (32 / 10000) per step")},
    departures=[
        ("32 x 32 images with narrow layers (the paper restores 512 / 1024 px faces)", "MNIST-sized data"),
        ("bilinear up-sampling instead of transposed convolution + FIR blur; average-pool down-sampling in D",
         "simpler layers that do the same job at 32 px"),
        ("no path-length regularisation and no style mixing", "not needed at this size; not implemented"),
        ("the GAN prior trains inside the same run for prior_steps steps, then the whole network fine-tunes",
         "one run per model in ganbench; the paper pre-trains the prior on FFHQ first"),
    ],
    # narrow nets learn faster with a larger step; same losses and layer structure; no prior stage
    tiny={"style_dim": 32, "n_mlp": 2, "g_channels": 16, "d_channels": 16, "image_size": 32, "prior_steps": 0,
          "lr": 0.005},
    test_steps=150)
def build(config: GPENConfig) -> GPEN:
    return GPEN(config)
