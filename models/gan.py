"""GAN: Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville & Bengio,
"Generative Adversarial Nets", NeurIPS 2014. arXiv:1406.2661.

Follows the authors' MNIST setup (github.com/goodfeli/adversarial, ``mnist.yaml``):

* G: an MLP z (100-d) -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid. Weights U(-0.05, 0.05);
  the output biases start at the logits of the pixel marginals (pylearn2's
  ``init_sigmoid_bias_from_marginals``), estimated here from the first training batch,
  so G starts from the mean image.
* Both networks work on pixels in [0, 1] as in the paper; the generator's ``generate``
  maps its sigmoid output to ganbench's [-1, 1] and D maps [-1, 1] inputs back, so the
  training dynamics (input scale, gradient sizes) are the paper's.
* D: an MLP 784 -> maxout 240 x 5 pieces -> maxout 240 x 5 -> 1 logit, with dropout
  (keep 0.8 on the input, 0.5 on the hidden layers). Weights U(-0.005, 0.005).
  ``d_maxout_pieces=1`` replaces maxout by LeakyReLU(0.2) units (a common simplification).
* Objective: D maximises log D(x) + log(1 - D(G(z))); G maximises log D(G(z)), the
  non-saturating variant the paper recommends in practice (Section 3). k = 1 D step per
  G step (Algorithm 1).
* D's weights are projected after every update so that each unit's incoming weight
  vector has L2 norm <= 1.9365 (pylearn2's ``max_col_norm`` with the value of the
  maxout networks' MNIST models; the authors' ``mnist.yaml`` itself sets none);
  ``d_max_col_norm=0`` turns it off.
* Optimiser: SGD, batch 100 (the recipe, ``mnist.yaml``'s ``batch_size``), learning rate
  0.1 divided by 1.000004 per update (down to 1e-6), momentum 0.5 rising linearly to 0.7
  between epochs 1 and 250 (steps 600 and 150,000 at batch 100 on ganbench's 60k training
  images; the yaml trains on the first 50k). ``optimizer="adam"`` (lr 2e-4, beta1 0.5) is
  a documented, non-paper alternative for short runs.

The differences from the yaml are listed in ``departures`` (``ganbench models show gan``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.losses import gan_d_loss, gan_g_loss
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)


@dataclass(frozen=True)
class GANConfig(ModelConfig):
    image_size: int = 28  # output height = width
    z_dim: int = 100  # length of the noise vector z
    z_dist: str = "normal"  # "normal" (the pylearn2 Generator's default) or "uniform"
    g_hidden: int = 1200  # units in each of G's two ReLU layers
    d_hidden: int = 240  # maxout units in each of D's two hidden layers
    d_maxout_pieces: int = 5  # pieces per maxout unit; 1 = LeakyReLU(0.2) units instead
    d_input_keep: float = 0.8  # dropout keep probability on D's input
    d_hidden_keep: float = 0.5  # dropout keep probability on D's hidden layers
    g_init: float = 0.05  # G weights U(-g_init, g_init)
    g_bias_from_data: bool = True  # G's output biases = logit(mean pixel) of the first batch
    d_init: float = 0.005  # D weights U(-d_init, d_init)
    d_max_col_norm: float = 1.9365  # max L2 norm of each D unit's incoming weights (0: off)
    optimizer: str = "sgd"  # "sgd" (the paper's) or "adam" (lr, beta1 below)
    lr: float = 0.1  # initial learning rate, G and D
    lr_decay: float = 1.000004  # SGD: lr is divided by this after every update
    min_lr: float = 1e-6  # SGD: floor of the decayed learning rate
    momentum: float = 0.5  # SGD: initial momentum
    final_momentum: float = 0.7  # SGD: momentum after momentum_saturate steps
    momentum_start: int = 600  # SGD: step at which momentum starts rising (epoch 1)
    momentum_saturate: int = 150_000  # SGD: step at which it reaches final_momentum (epoch 250)
    beta1: float = 0.5  # Adam beta1 (optimizer="adam" only)

    def __post_init__(self):
        check_common(self, "gan")


def check_common(c, name: str) -> None:
    if c.optimizer not in ("sgd", "adam"):
        raise GanbenchError(f"{name}: optimizer must be 'sgd' or 'adam', got {c.optimizer!r}")
    if c.d_maxout_pieces < 1:
        raise GanbenchError(f"{name}: d_maxout_pieces must be >= 1")
    for key in ("d_input_keep", "d_hidden_keep"):
        if not 0.0 < getattr(c, key) <= 1.0:
            raise GanbenchError(f"{name}: {key} must lie in (0, 1]")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """ganbench's [-1, 1] pixels -> the paper's [0, 1]."""
    return (x + 1) * 0.5


class Maxout(nn.Module):
    """``units`` maxout units of ``pieces`` linear pieces each (Goodfellow et al. 2013);
    ``pieces == 1``: a linear layer followed by LeakyReLU(0.2)."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x):
        y = self.linear(x)
        if self.pieces == 1:
            return F.leaky_relu(y, 0.2)
        return y.view(len(x), self.units, self.pieces).amax(-1)


def uniform_init(module: nn.Module, scale: float) -> None:
    """pylearn2's ``irange``: weights U(-scale, scale), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -scale, scale)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def constrain_norms(module: nn.Module, max_norm: float) -> None:
    """pylearn2's ``max_col_norm``: rescale each unit's incoming weights to norm <= max_norm."""
    if max_norm > 0:
        for m in module.modules():
            if isinstance(m, nn.Linear):
                m.weight.renorm_(2, 0, max_norm)


@torch.no_grad()
def init_bias_from_marginals(layer: nn.Linear, images: torch.Tensor, done: torch.Tensor) -> None:
    """Set a sigmoid output layer's biases to logit(mean pixel in [0, 1]) once (``done`` flag)."""
    if bool(done):
        return
    p = to_unit(images.float()).mean(0).flatten().clamp(1e-3, 1 - 1e-3)
    layer.bias.copy_(torch.log(p / (1 - p)).to(layer.bias))
    done.fill_(True)


def make_optimizers(c, generator: nn.Module, discriminator: nn.Module):
    if c.optimizer == "adam":
        make = lambda params: torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, 0.999))  # noqa: E731
    else:
        make = lambda params: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum)  # noqa: E731
    return make(generator.parameters()), make(discriminator.parameters())


def apply_sgd_schedule(c, step: int, *optimizers: torch.optim.Optimizer) -> None:
    """The pylearn2 schedule as a function of ``step``: exponential lr decay, linear momentum."""
    if c.optimizer != "sgd":
        return
    lr = max(c.lr / c.lr_decay ** step, c.min_lr)
    span = max(c.momentum_saturate - c.momentum_start, 1)
    t = min(max((step - c.momentum_start) / span, 0.0), 1.0)
    momentum = c.momentum + t * (c.final_momentum - c.momentum)
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"], group["momentum"] = lr, momentum


class Generator(GenerativeModel):
    def __init__(self, c: GANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist=c.z_dist, channels=c.channels, image_size=c.image_size)
        self.shape = (c.channels, c.image_size, c.image_size)
        self.net = nn.Sequential(
            nn.Linear(c.z_dim, c.g_hidden), nn.ReLU(),
            nn.Linear(c.g_hidden, c.g_hidden), nn.ReLU(),
            nn.Linear(c.g_hidden, c.channels * c.image_size ** 2), nn.Sigmoid())
        # set once from data (kept in checkpoints, so a resumed run does not redo it)
        self.register_buffer("bias_ready", torch.tensor(not c.g_bias_from_data))

    @property
    def output_layer(self) -> nn.Linear:
        return self.net[4]

    def generate(self, z, labels=None):
        return self.net(z).view(len(z), *self.shape) * 2 - 1  # [0, 1] -> ganbench's [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, c: GANConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(1 - c.d_input_keep),
            Maxout(c.channels * c.image_size ** 2, c.d_hidden, c.d_maxout_pieces),
            nn.Dropout(1 - c.d_hidden_keep),
            Maxout(c.d_hidden, c.d_hidden, c.d_maxout_pieces),
            nn.Dropout(1 - c.d_hidden_keep),
            nn.Linear(c.d_hidden, 1))

    def forward(self, x):
        return self.net(to_unit(x).flatten(1)).flatten()  # logits (N,)


class GAN(GANModel):
    def __init__(self, config: GANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        uniform_init(self.generator, config.g_init)
        uniform_init(self.discriminator, config.d_init)
        self.opt_g, self.opt_d = make_optimizers(config, self.generator, self.discriminator)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        apply_sgd_schedule(self.config, step, self.opt_g, self.opt_d)
        init_bias_from_marginals(self.generator.output_layer, batch.images, self.generator.bias_ready)
        n = len(batch.images)
        # k = 1 discriminator step (Algorithm 1)
        z, _ = ctx.latents(self.generator.latent, n)
        with ctx.autocast():
            with torch.no_grad():
                fake = self.generator(z)
            loss_d = gan_d_loss(self.discriminator(batch.images), self.discriminator(fake))
        ctx.backward_step(loss_d, self.opt_d)
        constrain_norms(self.discriminator, self.config.d_max_col_norm)
        # generator step on fresh noise
        z, _ = ctx.latents(self.generator.latent, n)
        with frozen(self.discriminator):
            with ctx.autocast():
                loss_g = gan_g_loss(self.discriminator(self.generator(z)))
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}


_MNIST = {"image_size": 28}


@register_model(
    "gan", config=GANConfig, paper="Generative Adversarial Nets",
    authors="Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville, Bengio",
    arxiv="1406.2661", year=2014, task="unconditional",
    defaults={"mnist": _MNIST, "fashion-mnist": _MNIST, "digits": _MNIST},
    description="MLP generator and maxout MLP discriminator with dropout; non-saturating loss",
    reference_code="https://github.com/goodfeli/adversarial (mnist.yaml)",
    # searched draws train with Adam, as every model of Lucic et al. 2018; their wide ranges
    search_space={"optimizer": "adam", "lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=100, source="goodfeli/adversarial mnist.yaml: SGD batch_size 100")},
    departures=[
        ("trains on all 60,000 MNIST training images; mnist.yaml trains on the first 50,000 and keeps "
         "10,000 for validation",
         "ganbench trains on the whole train split; the momentum schedule counts epochs of 600 steps on it"),
        ("z ~ N(0, I) by default; the final mnist.yaml draws z uniformly from [-sqrt(3), sqrt(3)]",
         "the pylearn2 Generator's default, which the authors' commit says worked as well "
         "(z_dist='uniform' gives U(-1, 1))"),
        ("D's incoming weight norms are capped at 1.9365 (max_col_norm); mnist.yaml sets no such constraint",
         "taken from the maxout networks' MNIST models; d_max_col_norm=0 gives the yaml's unconstrained D"),
        ("G's output biases start at the logits of the first training batch's pixel means, not of the "
         "whole training set's",
         "the model sees data only through train_step"),
    ],
    # narrow layers; Adam, since SGD at lr 0.1 needs thousands of steps to get anywhere. G at 256 units
    # and 500 steps failed on seed 4 (lenet-FID 632 vs threshold 625; 1000 / 1500 steps: margins down to
    # 0.10); 512 units and 800 steps: margins 0.31-0.37 over seeds 0-3 (bench/learning_margins.py)
    tiny={"g_hidden": 512, "d_hidden": 128, "optimizer": "adam", "lr": 1e-3}, test_steps=800)
def build(config: GANConfig) -> GAN:
    return GAN(config)
