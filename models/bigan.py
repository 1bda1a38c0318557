"""BiGAN and ALI: a generator, an encoder, and a discriminator on (image, latent) pairs.

* BiGAN: Donahue, Krähenbühl & Darrell, "Adversarial Feature Learning", ICLR 2017.
  arXiv:1605.09782.
* ALI: Dumoulin, Belghazi, Poole, Mastropietro, Lamb, Arjovsky & Courville,
  "Adversarially Learned Inference", ICLR 2017. arXiv:1606.00704.

Both papers learn an encoder E (x -> z) jointly with the generator G (z -> x): the
discriminator sees pairs and tells (x, E(x)), x from the data, from (G(z), z), z from the
prior. At the optimum the two joint distributions match, so E inverts G. Objective
(BiGAN Eq. 3 / ALI Eq. 1), on logits::

    L_D   = -log D(x, E(x)) - log(1 - D(G(z), z))
    L_G,E = -log(1 - D(x, E(x))) - log D(G(z), z)     (labels inverted, as in both papers)

G and E share one Adam optimiser and step together after each D step.

``bigan`` follows BiGAN's permutation-invariant MNIST model (Appendix C.1, as we read it):

* z: 50-d, uniform U(-1, 1).
* G: z -> 1024 (BatchNorm, ReLU) -> 1024 (BatchNorm, ReLU) -> 784; the paper's sigmoid
  output is a tanh here (ganbench images live in [-1, 1]).
* E: x -> 1024 (LeakyReLU 0.2) -> 1024 (BatchNorm, LeakyReLU) -> 50, linear.
* D: x -> 1024 (LeakyReLU); [that, z] -> 1024 (BatchNorm, LeakyReLU) -> 1 logit.
* Adam, lr 2e-4, beta1 0.5, weight decay 2.5e-5, batch 128, 400 epochs; the learning
  rate is constant for the first half of training and decays linearly to 0 over the
  second (``lr_decay_start`` / ``lr_decay_steps``, in generator steps).

``ali`` follows ALI's convolutional models (Appendix A, SVHN / CIFAR-10 tables) scaled to
the dataset: z 64-d N(0, I); a *stochastic* encoder q(z|x) = N(mu(x), sigma(x)^2)
sampled with the reparameterisation trick; D without BatchNorm but with dropout 0.2 in
its x, z and joint branches; Adam lr 1e-4, beta1 0.5, beta2 0.999, batch 100. (The
tables print "beta2 = 10^-3": the authors trained with Blocks, whose Adam takes one minus
the decay rates -- its defaults beta1 = 0.1, beta2 = 0.001 are the usual 0.9, 0.999 --
so 10^-3 is PyTorch's 0.999; taken literally, v tracks only the last gradient and ALI
diverges within ~100 steps. beta1 = 0.5 reads the same either way.)
The convolutional networks (``arch="conv"``) are DCGAN-style stacks of 4 x 4 stride-2
(transposed) convolutions from/to a 4 x 4 (or 7 x 7 for 28 px) map, so 28, 32 and 64 px
all build; ALI's exact per-layer kernel tables are not reproduced.

Representation learning (the task): :func:`encode` gives E's features (the posterior
mean for ALI); :func:`linear_probe_accuracy` fits a multinomial logistic regression on
features of labelled training images and scores it on test images -- compare with the
same probe on a randomly initialised encoder. :func:`reconstruction_error` measures
G(E(x)) against x.
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
class BiGANConfig(ModelConfig):
    image_size: int = 28  # output height = width
    z_dim: int = 50  # length of z (E's output)
    z_dist: str = "uniform"  # prior of z: "uniform" U(-1, 1) (BiGAN) or "normal" (ALI)
    arch: str = "mlp"  # "mlp" (BiGAN's MNIST networks) or "conv" (DCGAN-style, ALI)
    encoder: str = "deterministic"  # "deterministic" E(x) (BiGAN) or "gaussian" q(z|x) (ALI)
    hidden: int = 1024  # mlp: units per hidden layer of G, E and D
    conv_channels: int = 64  # conv: width at the finest resolution; doubles per stage
    d_z_hidden: int = 512  # conv: units of D's z branch
    d_joint_hidden: int = 1024  # conv: units of D's joint layer
    d_dropout: float = 0.0  # dropout in D's branches (ALI: 0.2)
    lr: float = 2e-4  # Adam learning rate (D, and G+E)
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    weight_decay: float = 2.5e-5  # L2 weight decay of every network
    lr_decay_start: int | None = 93_750  # G step where linear lr decay starts (200 epochs at batch 128); None: constant
    lr_decay_steps: int = 93_750  # steps over which the lr decays to 0

    def __post_init__(self):
        name = "bigan/ali"
        if self.arch not in ("mlp", "conv"):
            raise GanbenchError(f"{name}: arch must be 'mlp' or 'conv', got {self.arch!r}")
        if self.encoder not in ("deterministic", "gaussian"):
            raise GanbenchError(f"{name}: encoder must be 'deterministic' or 'gaussian', got {self.encoder!r}")
        if self.arch == "conv":
            conv_base(self.image_size)
        if self.channels not in (1, 3):
            raise GanbenchError(f"{name}: channels must be 1 or 3, got {self.channels}")
        if not 0.0 <= self.d_dropout < 1.0:
            raise GanbenchError(f"{name}: d_dropout must lie in [0, 1)")
        if self.lr_decay_steps < 1:
            raise GanbenchError(f"{name}: lr_decay_steps must be >= 1")


def conv_base(image_size: int) -> tuple[int, int]:
    """(base, n) with image_size = base * 2**n, base 4 (or 7 for 28 px), n >= 1."""
    for base in (4, 7):
        n = math.log2(image_size / base) if image_size >= base else -1
        if n >= 1 and n == int(n):
            return base, int(n)
    raise GanbenchError(f"bigan/ali arch='conv': image_size must be 4 * 2**n (8, 16, 32, 64...) or 28, "
                        f"got {image_size}")


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------
def _conv_widths(c: BiGANConfig) -> tuple[int, list[int]]:
    base, n = conv_base(c.image_size)
    return base, [c.conv_channels * 2 ** i for i in range(n)]  # finest first: 64, 128, 256


class Generator(GenerativeModel):
    """z (and optionally a one-hot class, see BiCGAN) -> image in [-1, 1]."""

    def __init__(self, c: BiGANConfig, num_classes: int = 0):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist=c.z_dist, num_classes=num_classes,
                                 channels=c.channels, image_size=c.image_size)
        self.shape = (c.channels, c.image_size, c.image_size)
        zin = c.z_dim + num_classes
        if c.arch == "mlp":
            self.net = nn.Sequential(
                nn.Linear(zin, c.hidden), nn.BatchNorm1d(c.hidden), nn.ReLU(True),
                nn.Linear(c.hidden, c.hidden), nn.BatchNorm1d(c.hidden), nn.ReLU(True),
                nn.Linear(c.hidden, math.prod(self.shape)), nn.Tanh())
        else:
            base, widths = _conv_widths(c)
            widths = widths[::-1]  # coarsest first
            layers: list[nn.Module] = [nn.Unflatten(1, (zin, 1, 1)),
                                       nn.ConvTranspose2d(zin, widths[0], base, 1, 0, bias=False),
                                       nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
            for cin, cout in zip(widths, widths[1:]):
                layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
            layers += [nn.ConvTranspose2d(widths[-1], c.channels, 4, 2, 1), nn.Tanh()]
            self.net = nn.Sequential(*layers)

    def generate(self, z, labels=None):
        if self.latent.num_classes:
            if labels is None:
                raise GanbenchError("this generator is class-conditional and needs labels")
            z = torch.cat([z, F.one_hot(labels.long(), self.latent.num_classes).to(z.dtype)], 1)
        return self.net(z).view(len(z), *self.shape)


class Encoder(nn.Module):
    """x -> z (deterministic) or (mu, log sigma^2) of q(z|x) (gaussian); ``extra`` more
    outputs (BiCGAN's class logits)."""

    def __init__(self, c: BiGANConfig, extra: int = 0):
        super().__init__()
        self.z_dim, self.gaussian = c.z_dim, c.encoder == "gaussian"
        out = c.z_dim * (2 if self.gaussian else 1) + extra
        if c.arch == "mlp":
            self.net = nn.Sequential(
                nn.Flatten(), nn.Linear(c.channels * c.image_size ** 2, c.hidden), nn.LeakyReLU(0.2, True),
                nn.Linear(c.hidden, c.hidden), nn.BatchNorm1d(c.hidden), nn.LeakyReLU(0.2, True),
                nn.Linear(c.hidden, out))
        else:
            base, widths = _conv_widths(c)
            layers: list[nn.Module] = [nn.Conv2d(c.channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
            for cin, cout in zip(widths, widths[1:]):
                layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
            layers += [nn.Flatten(), nn.Linear(widths[-1] * base * base, out)]
            self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw outputs (N, out)."""
        return self.net(x)

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(mu, logvar or None, extra outputs) from :meth:`forward`'s output."""
        mu = out[:, :self.z_dim]
        if self.gaussian:
            return mu, out[:, self.z_dim:2 * self.z_dim], out[:, 2 * self.z_dim:]
        return mu, None, out[:, self.z_dim:]

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """z ~ q(z|x) (reparameterised; the identity for a deterministic E) and the extra outputs."""
        mu, logvar, extra = self.split(self(x))
        if logvar is None:
            return mu, extra
        eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
        return mu + eps * torch.exp(0.5 * logvar), extra


class Discriminator(nn.Module):
    """D(x, z): an x branch and the latent (z, or [z, class] for BiCGAN), joined."""

    def __init__(self, c: BiGANConfig, z_in: int | None = None):
        super().__init__()
        z_in = c.z_dim if z_in is None else z_in
        p = c.d_dropout
        if c.arch == "mlp":
            self.x_branch = nn.Sequential(nn.Flatten(), nn.Dropout(p),
                                          nn.Linear(c.channels * c.image_size ** 2, c.hidden), nn.LeakyReLU(0.2, True))
            self.z_branch = nn.Dropout(p)  # z enters the joint layer as it is
            joint_in, joint = c.hidden + z_in, c.hidden
            self.joint = nn.Sequential(nn.Linear(joint_in, joint), nn.BatchNorm1d(joint), nn.LeakyReLU(0.2, True),
                                       nn.Dropout(p), nn.Linear(joint, 1))
        else:
            base, widths = _conv_widths(c)
            layers: list[nn.Module] = [nn.Dropout(p), nn.Conv2d(c.channels, widths[0], 4, 2, 1),
                                       nn.LeakyReLU(0.2, True)]
            for cin, cout in zip(widths, widths[1:]):
                layers += [nn.Dropout(p), nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            self.x_branch = nn.Sequential(*layers, nn.Flatten())
            self.z_branch = nn.Sequential(nn.Dropout(p), nn.Linear(z_in, c.d_z_hidden), nn.LeakyReLU(0.2, True),
                                          nn.Dropout(p), nn.Linear(c.d_z_hidden, c.d_z_hidden), nn.LeakyReLU(0.2, True))
            joint_in = widths[-1] * base * base + c.d_z_hidden
            self.joint = nn.Sequential(nn.Dropout(p), nn.Linear(joint_in, c.d_joint_hidden), nn.LeakyReLU(0.2, True),
                                       nn.Dropout(p), nn.Linear(c.d_joint_hidden, 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.joint(torch.cat([self.x_branch(x), self.z_branch(z)], 1)).flatten()  # logits (N,)


def decayed_lr(c, step: int) -> float:
    """Constant until ``lr_decay_start``, then linear to 0 over ``lr_decay_steps``."""
    if c.lr_decay_start is None or step < c.lr_decay_start:
        return c.lr
    return c.lr * max(0.0, 1.0 - (step - c.lr_decay_start) / c.lr_decay_steps)


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------
class BiGAN(GANModel):
    def __init__(self, config: BiGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.encoder = Encoder(config)
        self.discriminator = Discriminator(config)
        for net in (self.generator, self.encoder, self.discriminator):
            init_normal_(net)
        betas = (config.beta1, config.beta2)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas,
                                      weight_decay=config.weight_decay)
        self.opt_ge = torch.optim.Adam([*self.generator.parameters(), *self.encoder.parameters()], lr=config.lr,
                                       betas=betas, weight_decay=config.weight_decay)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E's features of images ``x`` (float, [-1, 1]): E(x), or the posterior mean for ALI."""
        return self.encoder.split(self.encoder(x))[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)) (the posterior mean for ALI)."""
        return self.generator(self.encode(x))

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        lr = decayed_lr(self.config, step)
        for opt in (self.opt_d, self.opt_ge):
            for group in opt.param_groups:
                group["lr"] = lr
        real = batch.images
        z, _ = ctx.latents(self.generator.latent, len(real))
        with ctx.autocast():
            z_hat, _ = self.encoder.sample(real, ctx.generator)
            fake = ctx.images(self.generator(z))
        # D step on the detached pairs
        with ctx.autocast():
            d_enc = self.discriminator(real, z_hat.detach())
            d_gen = self.discriminator(fake.detach(), z)
            loss_d = bce(d_enc, 1.0) + bce(d_gen, 0.0)
        ctx.backward_step(loss_d, self.opt_d)
        # G and E step: inverted labels
        with frozen(self.discriminator):
            with ctx.autocast():
                loss_ge = bce(self.discriminator(real, z_hat), 0.0) + bce(self.discriminator(fake, z), 1.0)
            ctx.backward_step(loss_ge, self.opt_ge)
        return {"loss_d": loss_d.detach(), "loss_ge": loss_ge.detach(),
                "d_enc": torch.sigmoid(d_enc.detach().float()).mean(),
                "d_gen": torch.sigmoid(d_gen.detach().float()).mean()}


# ---------------------------------------------------------------------------------------
# Representation-learning evaluation
# ---------------------------------------------------------------------------------------
def _float_images(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        from ganbench.images import uint8_to_float

        return uint8_to_float(images)
    return images.float()


@torch.no_grad()
def encode(model: GANModel, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """E's features of ``images`` (uint8 0..255 or float in [-1, 1], (N, C, H, W)) in eval
    mode: float (N, D)."""
    with eval_mode(model):
        device = next(model.parameters()).device
        out = [model.encode(_float_images(images[i:i + batch_size]).to(device)).float().cpu()
               for i in range(0, len(images), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def reconstruction_error(model: GANModel, images: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    """Mean squared error per pixel (on [-1, 1] images) of G(E(x)) against x, and against
    a shuffled x (the error of an encoder that ignores its input, for scale)."""
    with eval_mode(model):
        device = next(model.parameters()).device
        x = _float_images(images)
        rec = torch.cat([model.reconstruct(x[i:i + batch_size].to(device)).float().cpu()
                         for i in range(0, len(x), batch_size)])
    shuffled = x.roll(1, 0)
    return {"mse": float(((rec - x) ** 2).mean()), "mse_shuffled": float(((rec - shuffled) ** 2).mean())}


def linear_probe_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                          test_labels: torch.Tensor, *, c: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy of a multinomial logistic regression (L2, inverse strength ``c``) fitted
    on standardised ``train_features`` (N, D); the standard linear-probe protocol."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(train_features) != len(train_labels) or len(test_features) != len(test_labels):
        raise InputError("features and labels differ in length")
    xtr = np.asarray(train_features, dtype=np.float64)
    xte = np.asarray(test_features, dtype=np.float64)
    if not (np.isfinite(xtr).all() and np.isfinite(xte).all()):
        raise InputError("features contain NaN/Inf values")
    scaler = StandardScaler().fit(xtr)
    clf = LogisticRegression(C=c, max_iter=max_iter)
    clf.fit(scaler.transform(xtr), np.asarray(train_labels))
    return float((clf.predict(scaler.transform(xte)) == np.asarray(test_labels)).mean())


def probe(model: GANModel, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Linear-probe accuracy of ``model``'s encoder: ``train``/``test`` are (images, labels)."""
    return linear_probe_accuracy(encode(model, train[0]), train[1], encode(model, test[0]), test[1])


_MLP_MNIST = {"image_size": 28}


@register_model(
    "bigan", config=BiGANConfig, paper="Adversarial Feature Learning",
    authors="Donahue, Krähenbühl, Darrell", arxiv="1605.09782", year=2016, task="representation learning",
    defaults={"mnist": _MLP_MNIST, "fashion-mnist": _MLP_MNIST, "digits": _MLP_MNIST,
              "cifar10": {"image_size": 32, "channels": 3, "arch": "conv", "z_dim": 64},
              "celeba": {"image_size": 64, "channels": 3, "arch": "conv", "z_dim": 64}},
    description="generator, encoder and a joint discriminator on (x, z); MLPs of BiGAN's MNIST model",
    reference_code="https://github.com/jeffdonahue/bigan (read; networks as in the paper's appendix)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=128, source="jeffdonahue/bigan train_gan.py --batch_size "
                                                              "default 128 (train_mnist.sh keeps it)")},
    departures=[
        ("G's output is tanh instead of sigmoid", "ganbench images live in [-1, 1]"),
        ("the learning-rate decay counts generator steps (constant for 93,750, then linear to 0 over 93,750)",
         "the paper's 200 + 200 epochs at batch 128 on 60,000 images; a function of the step"),
        ("CIFAR-10 and CelebA use DCGAN-style convolutional G, E and D with a 64-d z",
         "the paper's image model is AlexNet-based on ImageNet; MNIST keeps the paper's MLPs"),
    ],
    # 256-unit MLPs: lenet FID 893 -> 293 after 2000 steps (27 s on one CPU thread)
    tiny={"hidden": 256}, test_steps=2000)
def build_bigan(config: BiGANConfig) -> BiGAN:
    return BiGAN(config)


@dataclass(frozen=True)
class ALIConfig(BiGANConfig):
    """BiGANConfig with ALI's defaults (Appendix A of the ALI paper)."""

    image_size: int = 32  # output height = width
    z_dim: int = 64  # length of z
    z_dist: str = "normal"  # prior of z
    arch: str = "conv"  # convolutional G, E and D
    encoder: str = "gaussian"  # q(z|x) = N(mu(x), sigma(x)^2), reparameterised
    d_dropout: float = 0.2  # dropout in every D branch
    lr: float = 1e-4  # Adam learning rate
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2: the tables' "1e-3" in Blocks' convention (1 - beta2), see the docstring
    weight_decay: float = 0.0  # no weight decay
    lr_decay_start: int | None = None  # constant learning rate


_ALI_32 = {"image_size": 32}


@register_model(
    "ali", config=ALIConfig, paper="Adversarially Learned Inference",
    authors="Dumoulin, Belghazi, Poole, Mastropietro, Lamb, Arjovsky, Courville", arxiv="1606.00704", year=2016,
    task="representation learning",
    defaults={"mnist": _ALI_32, "fashion-mnist": _ALI_32, "digits": _ALI_32,
              "cifar10": {"image_size": 32, "channels": 3}, "celeba": {"image_size": 64, "channels": 3}},
    description="BiGAN with a stochastic Gaussian encoder, convolutional networks, dropout in D",
    reference_code="https://github.com/IshmaelBelghazi/ALI (read; hyperparameters from the paper's tables)",
    # Lucic et al. 2018's wide ranges (ganbench.search_space)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=100, source="Dumoulin et al. Appendix A tables (CIFAR-10, "
                                                              "SVHN, CelebA): batch size 100")},
    departures=[
        ("DCGAN-style 4 x 4 stride-2 stacks instead of the paper's per-layer tables (and no maxout layers in "
         "CIFAR-10's D)",
         "one network family that builds at 28, 32 and 64 px"),
        ("Adam beta2 = 0.999 where the tables print 10^-3",
         "the tables use Blocks' convention (one minus the decay rate); read literally, ALI diverges within "
         "~100 steps"),
        ("MNIST-like data at 32 x 32", "the paper has no MNIST model; 32 px reuses the CIFAR-10 networks"),
    ],
    # 16 px, narrow conv nets: lenet FID 893 -> 513 after 600 steps (20 s on one CPU thread)
    tiny={"image_size": 16, "conv_channels": 16, "d_z_hidden": 64, "d_joint_hidden": 128, "lr": 1e-3},
    test_steps=600)
def build_ali(config: ALIConfig) -> BiGAN:
    return BiGAN(config)
