"""InfoGAN: Chen, Duan, Houthooft, Schulman, Sutskever & Abbeel, "InfoGAN: Interpretable
Representation Learning by Information Maximizing Generative Adversarial Nets",
NeurIPS 2016. arXiv:1606.03657.

G's input is split into incompressible noise z and a latent code c; the mutual
information I(c; G(z, c)) is maximised through its variational lower bound
L_I(G, Q) = E[log Q(c | G(z, c))] + H(c) (Section 5), with Q a head sharing D's trunk::

    min_{G, Q} max_D  V_GAN(D, G) - lambda L_I(G, Q)

The paper's MNIST setting (Section 6, Appendix C.1), followed here:

* codes: one 10-way categorical c1 and two continuous c2, c3 ~ U(-1, 1); 62-d noise z
  (uniform, as in the authors' code). Q outputs a softmax for c1 and a factored
  Gaussian with fixed unit variance for c2, c3 (so their term is a squared error).
* lambda = 1 for both terms, as the authors' MNIST launcher (``launchers/run_mnist_exp.py``:
  ``info_reg_coeff=1.0``, which ``infogan/algos/infogan_trainer.py`` applies to the discrete
  and the continuous MI estimates alike). The paper sets lambda = 1 for discrete codes and
  says "a smaller lambda is typically used" for continuous ones, without a number for
  MNIST; in the authors' code the continuous posterior is a Gaussian with fixed unit
  standard deviation (``Uniform(1, fix_std=True)``), so its term 0.5 (c - mu)^2 is small
  already (~0.17 per code for an uninformed Q).
* G: FC 1024 BN ReLU - FC 7x7x128 BN ReLU - 4x4 up-conv 64 stride 2 BN ReLU - 4x4
  up-conv C stride 2 (sigmoid in the paper; tanh here for the [-1, 1] contract).
* D trunk: 4x4 conv 64 stride 2 LeakyReLU(0.1) - 4x4 conv 128 stride 2 BN LeakyReLU -
  FC 1024 BN LeakyReLU; D head: FC 1 (logit); Q head: FC 128 BN LeakyReLU - FC codes.
* Adam, learning rate 1e-3 for G and 2e-4 for D (Appendix C and the authors'
  ``run_mnist_exp.py``), beta1 0.5 (``infogan_trainer.py``); batch 128 (``run_mnist_exp.py``:
  ``batch_size = 128``; the ``ganbench train`` recipe); no averaging of G's weights.
* L_I is added to both players' losses, as in the authors' code: Q's parameters are
  updated with D's optimiser (Q shares D's trunk), G receives L_I through Q.
* Real and generated images pass D's trunk as one batch in both updates, so its
  BatchNorm layers see shared statistics. (With separate batches the statistics of an
  all-generated batch normalise the real/fake difference away before the last layer;
  in our runs G then got no useful signal for hundreds of steps.)

Resolutions: 28 x 28 is the paper's; 32 x 32 (4 x 4 start) and 64 x 64 (one more
stride-2 layer each side, widths doubling) are built the same way.

The generator's latent: ``generator.latent`` is U(-1, 1)^(62 + 2 + 1); the last entry
u selects the categorical code c1 = floor((u + 1) / 2 * 10), which makes c1 exactly
uniform when u is, so harness sampling and evaluation draw (z, c) from the paper's
prior. :meth:`Generator.pack` builds such latents from an explicit (z, c1, c2), and
:func:`categorical_code_purity` measures how well c1 separates the classes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.losses import init_normal_
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  eval_mode, frozen, register_model)


@dataclass(frozen=True)
class InfoGANConfig(ModelConfig):
    image_size: int = 28  # output height = width: 28 (the paper's) or 4 * 2**k (16, 32, 64)
    noise_dim: int = 62  # incompressible noise z ~ U(-1, 1)
    cat_dim: int = 10  # values of the categorical code c1 (0: none)
    cont_dim: int = 2  # continuous codes c2.. ~ U(-1, 1)
    lambda_cat: float = 1.0  # weight of the categorical mutual-information term
    lambda_cont: float = 1.0  # weight of the continuous mutual-information term (authors' info_reg_coeff)
    g_channels: int = 64  # G's last up-conv feature maps (doubles per layer towards the start)
    d_channels: int = 64  # D's first conv feature maps (doubles per layer)
    fc_dim: int = 1024  # the fully connected layers of G and D's trunk
    q_dim: int = 128  # Q head's hidden layer
    lr_g: float = 1e-3  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D and Q
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # weights N(0, std), BatchNorm scale N(1, std)
    allow_zero = frozenset({"noise_dim", "cat_dim", "cont_dim"})  # may be 0 (see ModelConfig.allow_zero)

    def __post_init__(self):
        base_size(self.image_size)  # validates
        if self.channels not in (1, 3):
            raise GanbenchError(f"infogan: channels must be 1 or 3, got {self.channels}")
        if self.cat_dim == 1 or self.cat_dim < 0 or self.cont_dim < 0 or self.noise_dim < 0:
            raise GanbenchError("infogan: cat_dim must be 0 or >= 2; cont_dim, noise_dim >= 0")
        if self.cat_dim == 0 and self.cont_dim == 0:
            raise GanbenchError("infogan needs at least one latent code (cat_dim or cont_dim)")
        if self.noise_dim + self.cont_dim + (1 if self.cat_dim else 0) < 1:
            raise GanbenchError("infogan: the latent is empty")


def base_size(image_size: int) -> int:
    """The start resolution (7 for 28 px, else 4) with image_size = base * 2**k, k >= 2."""
    for base in (7, 4):
        k = math.log2(image_size / base) if image_size > base else 0
        if k >= 2 and k == int(k):
            return base
    raise GanbenchError(f"infogan: image_size must be 28 or 4 * 2**k (16, 32, 64...), got {image_size}")


def n_layers(image_size: int) -> int:
    return int(math.log2(image_size // base_size(image_size)))


class Generator(GenerativeModel):
    """G(z, c): latent U(-1, 1)^(noise + cont + 1) -> images in [-1, 1] (see the module doc)."""

    def __init__(self, c: InfoGANConfig):
        super().__init__()
        self.noise_dim, self.cat_dim, self.cont_dim = c.noise_dim, c.cat_dim, c.cont_dim
        z_dim = c.noise_dim + c.cont_dim + (1 if c.cat_dim else 0)
        self.latent = LatentSpec(z_dim=z_dim, z_dist="uniform", channels=c.channels, image_size=c.image_size)
        self.base, n = base_size(c.image_size), n_layers(c.image_size)
        widths = [c.g_channels * 2 ** (n - 1 - i) for i in range(n)]  # 128 64 at 28 px
        self.width0 = widths[0]
        in_dim = c.noise_dim + c.cat_dim + c.cont_dim
        self.fc = nn.Sequential(
            nn.Linear(in_dim, c.fc_dim, bias=False), nn.BatchNorm1d(c.fc_dim), nn.ReLU(True),
            nn.Linear(c.fc_dim, widths[0] * self.base ** 2, bias=False),
            nn.BatchNorm1d(widths[0] * self.base ** 2), nn.ReLU(True))
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], c.channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Latent (N, z_dim) -> (noise (N, noise_dim), c1 int64 (N,) or None, c2 (N, cont_dim))."""
        noise, cont = z[:, :self.noise_dim], z[:, self.noise_dim:self.noise_dim + self.cont_dim]
        cat = None
        if self.cat_dim:
            u = z[:, -1]
            cat = ((u + 1) * (self.cat_dim / 2)).floor().long().clamp_(0, self.cat_dim - 1)
        return noise, cat, cont

    def pack(self, noise: torch.Tensor, cat: torch.Tensor | None, cont: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`split`: a latent whose categorical entry selects ``cat`` (its bin centre)."""
        parts = [noise, cont]
        if self.cat_dim:
            if cat is None:
                raise InputError("infogan: this generator has a categorical code; pass cat")
            parts.append(((cat.to(noise.dtype) + 0.5) * (2 / self.cat_dim) - 1)[:, None])
        return torch.cat(parts, 1)

    def generate_codes(self, noise: torch.Tensor, cat: torch.Tensor | None, cont: torch.Tensor) -> torch.Tensor:
        """Images from explicit noise, categorical code (int64) and continuous codes."""
        parts = [noise, cont]
        if self.cat_dim:
            parts.insert(1, F.one_hot(cat.long(), self.cat_dim).to(noise.dtype))
        h = self.fc(torch.cat(parts, 1)).view(len(noise), self.width0, self.base, self.base)
        return self.net(h)

    def generate(self, z, labels=None):
        return self.generate_codes(*self.split(z))


class DiscriminatorQ(nn.Module):
    """Shared trunk; ``forward(x)`` -> (D logits (N,), Q categorical logits (N, cat_dim), Q means (N, cont_dim))."""

    def __init__(self, c: InfoGANConfig):
        super().__init__()
        base, n = base_size(c.image_size), n_layers(c.image_size)
        widths = [c.d_channels * 2 ** i for i in range(n)]  # 64 128 at 28 px
        layers: list[nn.Module] = [nn.Conv2d(c.channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.1, True)]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, True)]
        layers += [nn.Flatten(), nn.Linear(widths[-1] * base ** 2, c.fc_dim, bias=False),
                   nn.BatchNorm1d(c.fc_dim), nn.LeakyReLU(0.1, True)]
        self.trunk = nn.Sequential(*layers)
        self.d_head = nn.Linear(c.fc_dim, 1)
        self.cat_dim, self.cont_dim = c.cat_dim, c.cont_dim
        self.q_head = nn.Sequential(nn.Linear(c.fc_dim, c.q_dim, bias=False), nn.BatchNorm1d(c.q_dim),
                                    nn.LeakyReLU(0.1, True), nn.Linear(c.q_dim, c.cat_dim + c.cont_dim))

    def forward(self, x):
        h = self.trunk(x)
        q = self.q_head(h)
        return self.d_head(h).flatten(), q[:, :self.cat_dim], q[:, self.cat_dim:]


class InfoGAN(GANModel):
    def __init__(self, config: InfoGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = DiscriminatorQ(config)
        init_normal_(self.generator, config.init_std)
        init_normal_(self.discriminator, config.init_std)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas)

    def info_loss(self, q_cat: torch.Tensor, q_cont: torch.Tensor, cat: torch.Tensor | None,
                  cont: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(lambda-weighted -L_I up to the constant H(c), categorical NLL, continuous NLL).

        Categorical: cross-entropy of Q's softmax. Continuous: Gaussian NLL with unit
        variance without its constant, 0.5 (c - mu)^2 summed over codes.
        """
        c = self.config
        zero = q_cont.new_zeros(())
        nll_cat = F.cross_entropy(q_cat.float(), cat) if cat is not None else zero
        nll_cont = 0.5 * (cont.float() - q_cont.float()).pow(2).sum(1).mean() if c.cont_dim else zero
        return c.lambda_cat * nll_cat + c.lambda_cont * nll_cont, nll_cat, nll_cont

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        n = len(batch.images)
        z, _ = ctx.latents(self.generator.latent, n)
        noise, cat, cont = self.generator.split(z)
        # D and Q: maximise V_GAN + lambda L_I (Q learns to recover c from G(z, c))
        with ctx.autocast():
            fake = ctx.images(self.generator.generate_codes(noise, cat, cont))
            # real and fake in one batch: shared BatchNorm statistics (see the module doc)
            d_both, q_cat, q_cont = self.discriminator(torch.cat([batch.images, fake.detach()]))
            d_real, d_fake = d_both[:n], d_both[n:]
            q_cat, q_cont = q_cat[n:], q_cont[n:]
            info_d, _, _ = self.info_loss(q_cat, q_cont, cat, cont)
            loss_gan_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                          + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
            loss_d = loss_gan_d + info_d
        ctx.backward_step(loss_d, self.opt_d)
        # G: non-saturating GAN loss + lambda L_I through the (frozen) Q head
        with frozen(self.discriminator):
            with ctx.autocast():
                d_gen, q_cat, q_cont = self.discriminator(torch.cat([batch.images, fake]))
                d_gen, q_cat, q_cont = d_gen[n:], q_cat[n:], q_cont[n:]
                info_g, nll_cat, nll_cont = self.info_loss(q_cat, q_cont, cat, cont)
                loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen)) + info_g
            ctx.backward_step(loss_g, self.opt_g)
        out = {"loss_d": loss_gan_d.detach(), "loss_g": loss_g.detach(), "info_cont_nll": nll_cont.detach()}
        if cat is not None:
            out["info_cat_nll"] = nll_cat.detach()
            out["q_cat_acc"] = (q_cat.detach().argmax(1) == cat).float().mean()
        return out


@torch.no_grad()
def categorical_code_purity(generator: Generator, extractor, *, per_code: int = 100, seed: int = 0,
                            batch_size: int = 250) -> dict:
    """How well InfoGAN's categorical code separates the classes a domain classifier sees.

    Draws ``per_code`` samples for every value of c1 (noise and continuous codes from
    the prior, seeded), classifies them with ``extractor`` (e.g. ``lenet_mnist()``,
    anything returning ``"logits"`` for uint8 images), and finds the one-to-one mapping
    from code values to classes that agrees with the classifier most often (Hungarian
    algorithm, ``scipy.optimize.linear_sum_assignment``).

    Returns:
        ``purity``: fraction of samples whose predicted class is the one their code value
        maps to (chance ~ 1 / cat_dim; the paper reports 95% accuracy for MNIST);
        ``mapping``: code value -> class; ``confusion``: counts (cat_dim, classes) as lists.
    """
    from scipy.optimize import linear_sum_assignment

    from ganbench.images import float_to_uint8

    if not isinstance(generator, Generator) or not generator.cat_dim:
        raise InputError("categorical_code_purity needs an InfoGAN generator with a categorical code")
    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    k = generator.cat_dim
    n = k * per_code
    noise = torch.rand(n, generator.noise_dim, generator=rng) * 2 - 1
    cont = torch.rand(n, generator.cont_dim, generator=rng) * 2 - 1
    cat = torch.arange(k).repeat_interleave(per_code)
    predicted = []
    with eval_mode(generator):
        for s in range(0, n, batch_size):
            sl = slice(s, s + batch_size)
            x = generator.generate_codes(noise[sl].to(device), cat[sl].to(device), cont[sl].to(device))
            logits = extractor(float_to_uint8(x.float().cpu(), generator.latent.output_range), ("logits",))["logits"]
            predicted.append(logits.argmax(1).cpu())
    pred = torch.cat(predicted)
    classes = max(k, int(pred.max()) + 1)
    confusion = np.zeros((k, classes), dtype=np.int64)
    np.add.at(confusion, (cat.numpy(), pred.numpy()), 1)
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    matched = int(confusion[rows, cols].sum())
    return {"purity": matched / n, "mapping": {int(r): int(c) for r, c in zip(rows, cols)},
            "confusion": confusion.tolist()}


_MNIST = {"image_size": 28}


@register_model(
    "infogan", config=InfoGANConfig,
    paper="InfoGAN: Interpretable Representation Learning by Information Maximizing Generative Adversarial Nets",
    authors="Chen, Duan, Houthooft, Schulman, Sutskever, Abbeel", arxiv="1606.03657", year=2016,
    task="unconditional",
    defaults={"mnist": _MNIST, "fashion-mnist": _MNIST, "digits": _MNIST,
              "cifar10": {"image_size": 32, "channels": 3}, "celeba": {"image_size": 64, "channels": 3}},
    description="10-way categorical + 2 continuous codes, Q head on D's trunk, MI lower bound (lambda 1)",
    reference_code="https://github.com/openai/InfoGAN (latent spec, L_I in both players' losses)",
    # Lucic et al. 2018's wide ranges; lambda_cat, lambda_cont a decade either side of the paper's lambda = 1
    # (it gives no range, only "smaller" for continuous codes)
    search_space={"lr_g": LogUniform(1e-5, 1e-2), "lr_d": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0),
                  "lambda_cat": LogUniform(0.1, 10.0), "lambda_cont": LogUniform(0.1, 10.0)},
    recipes={"default": TrainingRecipe(batch_size=128, source="openai/InfoGAN launchers/run_mnist_exp.py: "
                                                              "batch_size = 128")},
    departures=[
        ("tanh output in [-1, 1] instead of the sigmoid (Bernoulli mean) of the paper's MNIST G",
         "ganbench's image contract is [-1, 1]"),
        ("real and generated images pass D's trunk as one batch (shared BatchNorm statistics); the authors' "
         "code runs them separately",
         "with separate batches G got no useful signal for hundreds of steps in our runs (module docstring)"),
        ("cifar10 and celeba reuse the MNIST codes and networks at 32 / 64 px; the paper's SVHN and CelebA "
         "models (Appendix C) have other codes and networks",
         "only the MNIST setting is in the authors' released code; the others are not implemented"),
    ],
    tiny={"g_channels": 16, "d_channels": 16, "fc_dim": 128, "q_dim": 32}, test_steps=200)
def build(config: InfoGANConfig) -> InfoGAN:
    return InfoGAN(config)
