"""cGAN with a projection discriminator: Miyato & Koyama, "cGANs with Projection
Discriminator", ICLR 2018. arXiv:1802.05637.

Follows the paper and the authors' code (pfnet-research/sngan_projection, Chainer;
CIFAR-10: ``configs/sn_cifar10.yml``, ``gen_models/resnet_32.py``,
``dis_models/snresnet_32.py``), whose ResNets are SNGAN's (Miyato et al., arXiv:1802.05957):

* G: z (128-d, N(0, I)) -> linear to a ``base`` x ``base`` map -> residual up-blocks
  (conditional BatchNorm, ReLU, nearest x2 up-sampling, 3 x 3 convolutions, a 1 x 1
  up-sampled shortcut) -> BatchNorm, ReLU, 3 x 3 convolution, tanh. Conditional batch
  normalisation: BatchNorm without affine parameters, then a class-specific scale
  (initialised to 1) and shift (initialised to 0) from two embeddings.
* D: residual down-blocks (ReLU, 3 x 3 convolutions, 2 x 2 average pooling; the first
  block is the "optimized" one without a leading ReLU), ReLU, global *sum* pooling to
  phi(x); every weight spectrally normalised (one power iteration per step). Output
  ``psi(phi(x)) + <embed(y), phi(x)>`` (Eq. 3 of the paper): a linear head without a bias
  (``snresnet_32.py``: ``l5 = SNLinear(ch, 1, nobias=True)``) plus the inner product of a
  spectrally normalised class embedding (``l_y = SNEmbedID``, no bias either) with phi(x).
* Loss: the hinge loss, D: E[relu(1 - D(x, y))] + E[relu(1 + D(G(z, y), y))],
  G: -E[D(G(z, y), y)].
* Optimiser: Adam, lr 2e-4, beta1 = 0, beta2 = 0.9, n_dis = 5 D updates per G update,
  each on a fresh batch of 64 real images (and 64 fakes); the G update on
  ``g_batch_multiple`` x 64 fakes (the updater's ``n_gen_samples``: 128 on CIFAR-10,
  set in its defaults); lr decayed linearly to 0 over 50k G updates (sn_cifar10.yml).

Widths: ``g_channels`` / ``d_channels``, 256 / 128 on CIFAR-10 as sn_cifar10.yml (D 1.06M
parameters; 256 would be 4.2M), 128 / 128 for MNIST-like data. Resolutions: the residual
stack is sized by ``image_size = base * 2**k`` (base 4, or 7 for 28 px): 32 px (3 up-blocks
in G; D: 2 down-blocks to 8 x 8, then 2 blocks without pooling, as ``snresnet_32.py``),
64 px (4 up-blocks, 3 down-blocks; not the authors' 64 px networks, see the departures).

The residual blocks, networks, conditional BatchNorm and the alternating update are
reused by SNGAN's ResNet (``num_classes`` 0), WGAN-GP's ResNet (no spectral norm, mean
pooling), SAGAN and BigGAN.
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


@dataclass(frozen=True)
class ProjectionConfig(ModelConfig):
    num_classes: int = 10  # label classes (from the dataset)
    z_dim: int = 128  # length of the noise vector z
    g_channels: int = 128  # G's residual-block width (256 on CIFAR-10, sn_cifar10.yml)
    d_channels: int = 128  # D's residual-block width (128 on CIFAR-10, sn_cifar10.yml)
    lr: float = 2e-4  # Adam learning rate, G and D
    beta1: float = 0.0  # Adam beta1
    beta2: float = 0.9  # Adam beta2
    n_dis: int = 5  # D updates per G update
    lr_decay_steps: int | None = 50_000  # lr decays linearly to 0 over this many G steps; None: constant
    g_batch_multiple: int = 1  # fakes per G update = this x the batch size (2 on CIFAR-10: n_gen_samples 128)

    def __post_init__(self):
        check_resnet_config(self, "cgan-pd", conditional_required=True)
        if self.g_batch_multiple < 1:
            raise GanbenchError(f"cgan-pd: g_batch_multiple must be >= 1, got {self.g_batch_multiple}")


def check_resnet_config(c, name: str, *, conditional_required: bool) -> None:
    base_and_blocks(c.image_size, name)
    if c.channels not in (1, 3):
        raise GanbenchError(f"{name}: channels must be 1 or 3, got {c.channels}")
    if conditional_required and c.num_classes < 2:
        raise GanbenchError(f"{name} is class-conditional: train it on a labelled dataset "
                            f"(num_classes >= 2), e.g. --dataset mnist")
    if c.n_dis < 1:
        raise GanbenchError(f"{name}: n_dis must be >= 1, got {c.n_dis}")
    if c.lr_decay_steps is not None and c.lr_decay_steps < 1:
        raise GanbenchError(f"{name}: lr_decay_steps must be positive or None")


def base_and_blocks(image_size: int, name: str = "model") -> tuple[int, int]:
    """(base, k) with image_size = base * 2**k, base 4 (or 7 for 28 px), k >= 2."""
    for base in (4, 7):
        k = math.log2(image_size / base) if image_size >= base else -1
        if k >= 2 and k == int(k):
            return base, int(k)
    raise GanbenchError(f"{name}: image_size must be 4 * 2**k (16, 32, 64, 128...) or 28, got {image_size}")


# ---------------------------------------------------------------------------------------
# Building blocks (shared with SAGAN)
# ---------------------------------------------------------------------------------------
class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without affine parameters, then a per-class scale and shift.

    ``num_classes == 0``: an ordinary affine BatchNorm (for unconditional use).
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            self.gamma = nn.Embedding(num_classes, channels)
            self.beta = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gamma.weight)
            nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = self.bn(x)
        if not self.num_classes:
            return h
        return h * self.gamma(labels)[:, :, None, None] + self.beta(labels)[:, :, None, None]


class GBlock(nn.Module):
    """Residual up-block of G: CBN-ReLU-up-conv3-CBN-ReLU-conv3 + up-conv1 shortcut."""

    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1, 1, 0)
        nn.init.xavier_uniform_(self.conv1.weight, math.sqrt(2))
        nn.init.xavier_uniform_(self.conv2.weight, math.sqrt(2))
        nn.init.xavier_uniform_(self.shortcut.weight)

    def forward(self, x, labels=None):
        h = F.interpolate(F.relu(self.bn1(x, labels)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """Residual block of D: [ReLU]-conv3-ReLU-conv3-[avgpool] + conv1-[avgpool] shortcut.
    ``first``: SNGAN's "optimized" block (no leading ReLU, shortcut pools before its 1 x 1
    convolution). Every convolution spectrally normalised unless ``power_iterations`` is 0
    (WGAN-GP's ResNet critic, whose blocks are otherwise these)."""

    def __init__(self, cin: int, cout: int, *, down: bool, first: bool = False, power_iterations: int = 1):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = glorot_conv(cin, cout, 3, gain=math.sqrt(2), power_iterations=power_iterations)
        self.conv2 = glorot_conv(cout, cout, 3, gain=math.sqrt(2), power_iterations=power_iterations)
        self.learn_shortcut = cin != cout or down
        if self.learn_shortcut:
            self.shortcut = glorot_conv(cin, cout, 1, power_iterations=power_iterations)

    def forward(self, x):
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.learn_shortcut:
            if self.first:
                s = self.shortcut(F.avg_pool2d(x, 2) if self.down else x)
            else:
                s = self.shortcut(x)
                s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


def glorot_conv(cin: int, cout: int, k: int, *, gain: float = 1.0, power_iterations: int = 1) -> nn.Module:
    """A k x k "same" convolution, Glorot-uniform weights (times ``gain``), zero bias;
    spectrally normalised with that many power iterations per training forward (0: not)."""
    conv = nn.Conv2d(cin, cout, k, 1, k // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)
    return spectral_norm(conv, n_power_iterations=power_iterations) if power_iterations else conv


def glorot_linear(cin: int, cout: int, *, bias: bool = True, power_iterations: int = 1) -> nn.Module:
    lin = nn.Linear(cin, cout, bias=bias)
    nn.init.xavier_uniform_(lin.weight)
    if bias:
        nn.init.zeros_(lin.bias)
    return spectral_norm(lin, n_power_iterations=power_iterations) if power_iterations else lin


def linear_decay(optimizers, base_lrs, step: int, decay_steps: int | None) -> None:
    """lr_t = lr_0 * max(0, 1 - step / decay_steps) (constant when decay_steps is None)."""
    scale = 1.0 if decay_steps is None else max(0.0, 1.0 - step / decay_steps)
    for opt, lr in zip(optimizers, base_lrs):
        for group in opt.param_groups:
            group["lr"] = lr * scale


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------
class Generator(GenerativeModel):
    """ResNet G with conditional BatchNorm (unconditional BatchNorm when num_classes == 0).

    ``attention``: optional ``(resolution, module_factory)``; the module (e.g. SAGAN's
    self-attention) is applied to the feature map after the up-block that reaches that
    resolution.
    """

    def __init__(self, c, *, attention: tuple[int, type] | None = None):
        super().__init__()
        conditional = c.num_classes if c.num_classes >= 2 else 0
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist="normal", num_classes=conditional,
                                 channels=c.channels, image_size=c.image_size)
        base, k = base_and_blocks(c.image_size)
        self.base, self.ch = base, c.g_channels
        self.linear = nn.Linear(c.z_dim, base * base * c.g_channels)
        nn.init.xavier_uniform_(self.linear.weight)
        self.blocks = nn.ModuleList(GBlock(c.g_channels, c.g_channels, conditional) for _ in range(k))
        self.attention_after, self.attention = -1, None
        if attention is not None:
            res, factory = attention
            self.attention_after = int(math.log2(res / base)) - 1  # index of the block reaching `res`
            if not 0 <= self.attention_after < k:
                raise GanbenchError(f"attention resolution {res} is not one of G's block outputs "
                                    f"{[base * 2 ** (i + 1) for i in range(k)]}")
            self.attention = factory(c.g_channels)
        self.bn = nn.BatchNorm2d(c.g_channels)
        self.conv = nn.Conv2d(c.g_channels, c.channels, 3, 1, 1)
        nn.init.xavier_uniform_(self.conv.weight)

    def generate(self, z, labels=None):
        if self.latent.num_classes and labels is None:
            raise GanbenchError("this generator is class-conditional and needs labels")
        labels = labels.long() if self.latent.num_classes else None
        h = self.linear(z).view(len(z), self.ch, self.base, self.base)
        for i, block in enumerate(self.blocks):
            h = block(h, labels)
            if i == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.conv(F.relu(self.bn(h))))


class Discriminator(nn.Module):
    """ResNet D with spectral norm; projection output when num_classes > 0.

    Options for the papers that share it: ``power_iterations`` of every spectral norm (0:
    none, WGAN-GP's critic); ``psi_bias``: a bias in the linear head psi (none in the
    authors' 32 px D, ``dis_models/snresnet_32.py``'s ``l5``; BigGAN and SAGAN have one);
    ``mean_pool``: global mean instead of sum pooling (WGAN-GP's ``reduce_mean``)."""

    def __init__(self, c, *, attention: tuple[int, type] | None = None, power_iterations: int = 1,
                 psi_bias: bool = True, mean_pool: bool = False):
        super().__init__()
        _, k = base_and_blocks(c.image_size)
        n_down = k - 1  # 32 px -> 8, 64 -> 8, 28 -> 7
        ch, self.mean_pool = c.d_channels, mean_pool
        sn = {"power_iterations": power_iterations}
        blocks: list[nn.Module] = [DBlock(c.channels, ch, down=True, first=True, **sn)]
        blocks += [DBlock(ch, ch, down=True, **sn) for _ in range(n_down - 1)]
        blocks += [DBlock(ch, ch, down=False, **sn) for _ in range(2)]
        self.blocks = nn.ModuleList(blocks)
        self.attention_after, self.attention = -1, None
        if attention is not None:
            res, factory = attention
            sizes = [c.image_size // 2 ** min(i + 1, n_down) for i in range(len(blocks))]
            if res not in sizes[:n_down]:
                raise GanbenchError(f"attention resolution {res} is not one of D's down-block outputs "
                                    f"{sizes[:n_down]}")
            self.attention_after = sizes.index(res)
            self.attention = factory(ch)
        self.psi = glorot_linear(ch, 1, bias=psi_bias, **sn)
        self.num_classes = c.num_classes if c.num_classes >= 2 else 0
        if self.num_classes:
            self.embed = nn.Embedding(self.num_classes, ch)
            nn.init.xavier_uniform_(self.embed.weight)
            if power_iterations:
                self.embed = spectral_norm(self.embed, n_power_iterations=power_iterations)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): (N, d_channels), ReLU then global sum (or mean) pooling."""
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.attention_after:
                h = self.attention(h)
        h = F.relu(h)
        return h.mean(dim=(2, 3)) if self.mean_pool else h.sum(dim=(2, 3))

    def forward(self, x, labels=None):
        phi = self.features(x)
        out = self.psi(phi).flatten()
        if self.num_classes:
            if labels is None:
                raise GanbenchError("the projection discriminator needs labels")
            out = out + (self.embed(labels.long()) * phi).sum(1)
        return out  # (N,)


class ProjectionGAN(GANModel):
    def __init__(self, config: ProjectionConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config, psi_bias=False)  # snresnet_32.py: l5 has nobias=True
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)
        self.base_lrs = (config.lr, config.lr)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        if batch.labels is None and self.generator.latent.num_classes:
            raise GanbenchError(f"{self.name or 'cgan-pd'} needs labelled training data")
        return alternating_step(self, batch, step, ctx, c.n_dis, c.lr_decay_steps,
                                g_batch_multiple=c.g_batch_multiple)


def alternating_step(model: GANModel, batch: Batch, step: int, ctx: TrainContext, n_dis: int,
                     lr_decay_steps: int | None = None, *, g_batch_multiple: int = 1,
                     d_loss=hinge_d_loss, g_loss=hinge_g_loss) -> dict[str, torch.Tensor]:
    """The authors' updater (sngan_projection ``updater.py``): ``n_dis`` D updates, each on
    a fresh real batch and as many fakes, then one G update on ``g_batch_multiple`` times
    as many fakes (``n_gen_samples``); fake labels drawn uniformly, the paper's sampling of
    y for G. The learning rates of ``model.opt_g`` / ``opt_d`` (from ``model.base_lrs``)
    decay linearly to 0 over ``lr_decay_steps`` G steps. Losses: the hinge loss unless
    ``d_loss`` / ``g_loss`` say otherwise (SNGAN's non-saturating option)."""
    G, D = model.generator, model.discriminator
    linear_decay((model.opt_g, model.opt_d), model.base_lrs, step, lr_decay_steps)
    conditional = G.latent.num_classes > 0
    n = len(batch.images)
    for real_batch in ctx.real_batches(batch, n_dis):
        real, labels = real_batch.images, real_batch.labels
        z, y_fake = ctx.latents(G.latent, n)
        with ctx.autocast():
            with torch.no_grad():
                fake = ctx.images(G(z, y_fake))
            d_real = D(real, labels if conditional else None).float()
            d_fake = D(fake, y_fake).float()
            loss_d = d_loss(d_real, d_fake)
        ctx.backward_step(loss_d, model.opt_d)
    with frozen(D):
        z, y_fake = ctx.latents(G.latent, n * g_batch_multiple)
        with ctx.autocast():
            loss_g = g_loss(D(ctx.images(G(z, y_fake)), y_fake).float())
        ctx.backward_step(loss_g, model.opt_g)
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
            "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}


hinge_step = alternating_step  # SAGAN's name for it: the hinge loss is the default


_MNIST_LIKE = {"image_size": 32}
# sn_cifar10.yml: G resnet_32.py with ch 256, D snresnet_32.py with ch 128; n_gen_samples 128
_CIFAR = {"image_size": 32, "channels": 3, "g_channels": 256, "d_channels": 128, "g_batch_multiple": 2}
_RECIPE = TrainingRecipe(batch_size=64, source="sngan_projection configs/sn_cifar10.yml: batchsize 64 per D update, "
                                               "n_dis 5; G's n_gen_samples 128 is g_batch_multiple=2")
DEPARTURES = [
    ("MNIST-like data: the CIFAR-10 networks at 32 px with 1 channel, G 128 wide, G batch = D batch",
     "the paper has no MNIST experiment; half the CIFAR-10 G width suffices for digits, and the MNIST "
     "defaults stay what the learning tests measured (--set g_channels=256 g_batch_multiple=2 for CIFAR's)"),
    ("64 px and larger: the 32 px design scaled by resolution (one width throughout, D down to 8 x 8 "
     "then two plain blocks, psi without a bias)",
     "the authors' 64/128 px networks (gen_models/resnet_64.py, dis_models/snresnet_64.py, snresnet.py: "
     "widths doubling per block to 16 ch, D down to 2 or 4 px, psi with a bias) are not implemented"),
    ("lr decays linearly from step 0 over lr_decay_steps (50k) on every dataset",
     "sn_cifar10.yml's schedule; the ImageNet config (sn_projection.yml) decays only from 400k to 450k"),
    ("G's linear and output-convolution biases start at PyTorch's default uniform values; BatchNorm eps 1e-5",
     "Chainer starts them at 0 with eps 2e-5; this Generator is shared with SAGAN, whose tested "
     "initialisation would change"),
]


@register_model(
    "cgan-pd", config=ProjectionConfig, paper="cGANs with Projection Discriminator",
    authors="Miyato, Koyama", arxiv="1802.05637", year=2018, task="class-conditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "cifar10": _CIFAR},
    description="ResNet G with conditional BatchNorm, spectrally normalised ResNet D with a "
                "projection head <embed(y), phi(x)>; hinge loss, n_dis = 5",
    reference_code="https://github.com/pfnet-research/sngan_projection (networks, schedule)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "n_dis": IntRange(1, 5)},
    recipes={"default": _RECIPE, "cifar10": _RECIPE}, departures=DEPARTURES,
    # tests: since every D update takes a fresh batch of 64 (not a 13-image chunk), 800 steps cost 5x as much
    # and left margins of 0.64; 400 steps: 0.48 / 0.53 (seeds 0 / 1; class accuracy 0.61 / 0.68)
    tiny={"image_size": 16, "g_channels": 16, "d_channels": 32, "z_dim": 32, "lr": 2e-3, "lr_decay_steps": None},
    test_steps=400)
def build(config: ProjectionConfig) -> ProjectionGAN:
    return ProjectionGAN(config)
