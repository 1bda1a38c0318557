"""CoGAN: Liu & Tuzel, "Coupled Generative Adversarial Networks", NIPS 2016. arXiv:1606.07536.

Two GANs, one per image domain, learn the *joint* distribution of the domains from
unpaired samples of each. The coupling is weight sharing (Section 3): the two
generators share their first layers (which decode high-level semantics) and differ only
in their last ones (low-level rendering); the two discriminators differ in their first
layers and share their last ones. Trained with the ordinary GAN game, a latent z then
renders to a *corresponding* pair of images, e.g. a digit and its edge image, although
no training pair was ever shown.

The paper's digit experiment (Section 5, "Digits"; architecture in the supplement, and
the authors' PyTorch/Caffe code, mingyuliutw/CoGAN, for what the text leaves open):

* Domain 1: MNIST digits. Domain 2: their edge images (Task A; edge = 3 x 3 grey dilation
  minus the image, as the authors' data script computes it) or their negatives (Task B;
  ``domain2="negative"``). The training set is split into two halves without
  correspondence, one per GAN. Here each training batch of MNIST is split the same way:
  its first half are domain-1 images, the *other* half is turned into domain-2 images
  (:func:`to_domain2`), so the images of a pair never come from the same digit.
  The recipe's batch of 2 x 128 = 256 therefore gives the paper's 128 images per domain.
* G (both): z (100-d, U(-1, 1)) -> 4 x 4 x 1024 -> 7 x 7 x 512 -> 13 x 13 x 256 ->
  25 x 25 x 128 (fractionally strided convolutions, kernel 4 then 3 x 3 stride 2,
  BatchNorm, PReLU), then per domain a 6 x 6 transposed convolution to 28 x 28 and a
  sigmoid. ``g_shared_layers`` (4: all but the output layer) of the 5 are shared.
* D (both): a LeNet variant: 5 x 5 conv (20) + 2 x 2 max-pool, 5 x 5 conv (50) + max-pool,
  a fully connected layer of 500 PReLU units (dropout 0.5 in the authors' Caffe net),
  one logit. The last ``d_shared_layers`` (3: all but the first) are shared.
* Loss: the GAN game of each domain, summed (D: log D_i(x_i) + log(1 - D_i(G_i(z))); G:
  the non-saturating -log D_i(G_i(z))). Adam, lr 0.0002, betas (0.5, 0.999), mini-batch
  128 per domain, 25,000 iterations; weight decay 0.0005 and Xavier init as in the
  authors' code (not stated in the paper).

Pixels are in [0, 1] inside the networks as in the paper (sigmoid outputs); the
generator reports ganbench's [-1, 1]. ``generator.generate(z)`` renders domain 1 (what
evaluation samples), ``generator.generate_pair(z)`` both domains from the same z;
:func:`pair_error` measures how well the pair corresponds (the paper reports the
agreement of binarised pixels, :func:`pixel_agreement`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)

DOMAIN2 = ("edge", "negative")
G_LAYERS, D_LAYERS = 5, 4


@dataclass(frozen=True)
class CoGANConfig(ModelConfig):
    image_size: int = 28  # output height = width (the paper's digits: 28)
    z_dim: int = 100  # length of the noise vector z
    z_dist: str = "uniform"  # "uniform" U(-1, 1) (the paper's) or "normal"
    domain2: str = "edge"  # second domain made from the first: "edge" (Task A) or "negative" (Task B)
    g_channels: int = 128  # G: feature maps of its last hidden layer; x2, x4, x8 towards 4 x 4 (128..1024)
    d_channels: tuple[int, ...] = (20, 50)  # D: feature maps of its two LeNet conv layers
    d_hidden: int = 500  # D: PReLU units of its fully connected layer
    d_dropout: float = 0.5  # D: dropout on the fully connected layer (the authors' Caffe net)
    g_shared_layers: int = 4  # G: how many of its 5 layers (from the input) both domains share
    d_shared_layers: int = 3  # D: how many of its 4 layers (from the output) both domains share
    lr: float = 2e-4  # Adam learning rate, G and D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    weight_decay: float = 5e-4  # L2 weight decay, G and D (the authors' solvers)

    def __post_init__(self):
        if self.domain2 not in DOMAIN2:
            raise GanbenchError(f"cogan: domain2 must be one of {', '.join(DOMAIN2)}, got {self.domain2!r}")
        if self.z_dist not in ("uniform", "normal"):
            raise GanbenchError(f"cogan: z_dist must be 'uniform' or 'normal', got {self.z_dist!r}")
        if not 24 <= self.image_size <= 40:
            raise GanbenchError(f"cogan: the paper's digit networks make 24..40 px images (28 for MNIST), "
                                f"got image_size={self.image_size}")
        if self.channels not in (1, 3):
            raise GanbenchError(f"cogan: channels must be 1 or 3, got {self.channels}")
        if not 0 <= self.g_shared_layers < G_LAYERS:
            raise GanbenchError(f"cogan: g_shared_layers must lie in 0..{G_LAYERS - 1} (the output layer "
                                f"is never shared), got {self.g_shared_layers}")
        if not 0 <= self.d_shared_layers < D_LAYERS:
            raise GanbenchError(f"cogan: d_shared_layers must lie in 0..{D_LAYERS - 1} (the input layer "
                                f"is never shared), got {self.d_shared_layers}")
        if len(self.d_channels) != 2 or min(self.d_channels) < 1 or self.g_channels < 1 or self.d_hidden < 1:
            raise GanbenchError("cogan: d_channels needs two positive widths; g_channels, d_hidden must be >= 1")
        if not 0.0 <= self.d_dropout < 1.0:
            raise GanbenchError(f"cogan: d_dropout must lie in [0, 1), got {self.d_dropout}")


# ---------------------------------------------------------------------------------------
# The two domains
# ---------------------------------------------------------------------------------------
def edge_image(x01: torch.Tensor) -> torch.Tensor:
    """Edges of images in [0, 1]: grey dilation with a 3 x 3 square minus the image
    (the authors' ``cv2.dilate(img, ones(3, 3)) - img``); result in [0, 1]."""
    return F.max_pool2d(x01, 3, stride=1, padding=1) - x01


def to_domain2(x: torch.Tensor, domain2: str) -> torch.Tensor:
    """Domain-1 images in [-1, 1] -> their domain-2 version (edges or negatives) in [-1, 1]."""
    if domain2 == "negative":
        return -x
    if domain2 == "edge":
        return edge_image((x + 1) / 2) * 2 - 1
    raise GanbenchError(f"unknown domain2 {domain2!r}; valid: {', '.join(DOMAIN2)}")


def split_unpaired(images: torch.Tensor, domain2: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One shuffled batch -> (domain-1 images, domain-2 images made from the *other* half):
    the two halves hold different digits, so no corresponding pair is ever seen."""
    n = len(images) // 2
    if n < 1:
        raise InputError("cogan needs batches of at least 2 images (half per domain)")
    return images[:n], to_domain2(images[n:2 * n], domain2)


def pair_error(x1: torch.Tensor, x2: torch.Tensor, domain2: str) -> tuple[float, float]:
    """How well generated pairs correspond: mean |x2 - T(x1)| over pixels ([-1, 1] images)
    for the pairs as generated (same z) and for mismatched pairs (x1 rolled by one)."""
    target = to_domain2(x1, domain2)
    matched = (x2 - target).abs().mean().item()
    mismatched = (x2 - target.roll(1, dims=0)).abs().mean().item()
    return matched, mismatched


def pixel_agreement(x1: torch.Tensor, x2: torch.Tensor, domain2: str) -> float:
    """The paper's score: the fraction of pixels on which the binarised (at the middle of
    the range) domain-2 image agrees with the domain-2 transform of the domain-1 image."""
    return ((to_domain2(x1, domain2) > 0) == (x2 > 0)).float().mean().item()


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------
def generator_layers(c: CoGANConfig) -> list[nn.Module]:
    """The 5 layers of one domain's G (before sharing): 1 -> 4 -> 7 -> 13 -> 25 -> image_size."""
    w = [c.g_channels * 8, c.g_channels * 4, c.g_channels * 2, c.g_channels]
    layers = [nn.Sequential(nn.ConvTranspose2d(c.z_dim, w[0], 4, 1, 0), nn.BatchNorm2d(w[0]), nn.PReLU())]
    for cin, cout in zip(w, w[1:]):
        layers.append(nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.PReLU()))
    # 25 -> image_size: out = 25 - 1 - 2 + k
    layers.append(nn.Sequential(nn.ConvTranspose2d(w[-1], c.channels, c.image_size - 22, 1, 1), nn.Sigmoid()))
    return layers


class CoupledGenerator(GenerativeModel):
    """G_1 and G_2: a shared trunk (the first ``g_shared_layers``) and two heads."""

    def __init__(self, c: CoGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist=c.z_dist, channels=c.channels, image_size=c.image_size)
        self.domain2 = c.domain2
        k = c.g_shared_layers
        self.shared = nn.Sequential(*generator_layers(c)[:k])
        self.heads = nn.ModuleList([nn.Sequential(*generator_layers(c)[k:]) for _ in range(2)])

    def generate_pair(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The corresponding images of both domains for latents z, each (N, C, H, W) in [-1, 1]."""
        h = self.shared(z[:, :, None, None])
        return self.heads[0](h) * 2 - 1, self.heads[1](h) * 2 - 1

    def generate_domain(self, z: torch.Tensor, domain: int) -> torch.Tensor:
        """Domain ``domain`` (0: digits, 1: edges/negatives) only, in [-1, 1]."""
        if domain not in (0, 1):
            raise InputError(f"cogan: domain must be 0 or 1, got {domain}")
        return self.heads[domain](self.shared(z[:, :, None, None])) * 2 - 1

    def generate(self, z, labels=None):
        return self.generate_domain(z, 0)


def discriminator_layers(c: CoGANConfig) -> list[nn.Module]:
    """The 4 layers of one domain's D (before sharing), ending in one logit."""
    s = ((c.image_size - 4) // 2 - 4) // 2  # side after the two conv + pool stages
    d1, d2 = c.d_channels
    return [nn.Sequential(nn.Conv2d(c.channels, d1, 5), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(d1, d2, 5), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(d2, c.d_hidden, s), nn.PReLU(), nn.Dropout(c.d_dropout)),  # fully connected
            nn.Sequential(nn.Conv2d(c.d_hidden, 1, 1), nn.Flatten())]


class CoupledDiscriminator(nn.Module):
    """D_1 and D_2: two stems (the first 4 - ``d_shared_layers``) and a shared tail."""

    def __init__(self, c: CoGANConfig):
        super().__init__()
        k = D_LAYERS - c.d_shared_layers
        self.stems = nn.ModuleList([nn.Sequential(*discriminator_layers(c)[:k]) for _ in range(2)])
        self.shared = nn.Sequential(*discriminator_layers(c)[k:])

    def forward(self, x: torch.Tensor, domain: int) -> torch.Tensor:
        """Logits (N,) that images x of domain ``domain`` (0 or 1) are real; x in [-1, 1]."""
        return self.shared(self.stems[domain]((x + 1) / 2)).flatten()


def xavier_init(module: nn.Module) -> None:
    """The authors' init: Xavier-uniform conv weights, zero biases (BatchNorm: 1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def gan_losses(d: CoupledDiscriminator, reals: list[torch.Tensor],
               fakes: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """D's loss summed over the domains, and the per-domain real / fake logits."""
    loss, real_logits, fake_logits = 0.0, [], []
    for domain, (real, fake) in enumerate(zip(reals, fakes)):
        on_real, on_fake = d(real, domain), d(fake, domain)
        loss = loss + (F.binary_cross_entropy_with_logits(on_real, torch.ones_like(on_real))
                       + F.binary_cross_entropy_with_logits(on_fake, torch.zeros_like(on_fake)))
        real_logits.append(on_real)
        fake_logits.append(on_fake)
    return loss, real_logits, fake_logits


class CoGAN(GANModel):
    def __init__(self, config: CoGANConfig):
        super().__init__(config)
        self.generator = CoupledGenerator(config)
        self.discriminator = CoupledDiscriminator(config)
        xavier_init(self.generator)
        xavier_init(self.discriminator)
        kw = dict(lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **kw)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), **kw)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        real1, real2 = split_unpaired(batch.images, self.config.domain2)
        z, _ = ctx.latents(self.generator.latent, len(real1))
        with ctx.autocast():
            fake1, fake2 = self.generator.generate_pair(z)
            fakes = [ctx.images(fake1), ctx.images(fake2)]
            loss_d, real_logits, fake_logits = gan_losses(self.discriminator, [real1, ctx.images(real2)],
                                                          [f.detach() for f in fakes])
        ctx.backward_step(loss_d, self.opt_d)
        with frozen(self.discriminator):
            with ctx.autocast():
                loss_g = 0.0
                for domain, fake in enumerate(fakes):
                    logits = self.discriminator(fake, domain)
                    loss_g = loss_g + F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            ctx.backward_step(loss_g, self.opt_g)
        with torch.no_grad():
            matched, mismatched = pair_error(fake1.float(), fake2.float(), self.config.domain2)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "d_real1": torch.sigmoid(real_logits[0].detach().float()).mean(),
                "d_real2": torch.sigmoid(real_logits[1].detach().float()).mean(),
                "d_fake1": torch.sigmoid(fake_logits[0].detach().float()).mean(),
                "d_fake2": torch.sigmoid(fake_logits[1].detach().float()).mean(),
                "pair_error": matched, "pair_error_mismatched": mismatched}


_DIGITS = {"image_size": 28, "channels": 1}


@register_model(
    "cogan", config=CoGANConfig, paper="Coupled Generative Adversarial Networks",
    authors="Liu, Tuzel", arxiv="1606.07536", year=2016, task="unconditional",
    defaults={"mnist": _DIGITS, "fashion-mnist": _DIGITS, "digits": _DIGITS},
    description="two GANs sharing G's first / D's last layers learn digits and their edges (or "
                "negatives) jointly from unpaired halves of each batch; .generator draws domain 1, "
                ".generator.generate_pair(z) both",
    reference_code="https://github.com/mingyuliutw/CoGAN (digit networks, edge images, weight decay, init)",
    # 128 images per domain (the Caffe data layers of mnist.edge.cogan) = a batch of 2 x 128, split in halves
    # Lucic et al. 2018's wide ranges (ganbench.search_space)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=256, source="mingyuliutw/CoGAN cogan/models/mnist.edge.cogan/"
                                                              "mnist.edge.cogan.data.ptt: batch_size 128 per "
                                                              "domain; Liu & Tuzel Sec. 5")},
    departures=[
        ("the two domains come from the two halves of each shuffled MNIST batch (2 x 128) instead of two fixed "
         "halves of the training set",
         "ganbench serves one image stream; splitting each batch keeps the domains unpaired"),
        ("evaluation samples domain 1 (digits) only",
         "sample-based metrics take one image per latent; generator.generate_pair(z) gives both domains"),
    ],
    # narrow nets with a larger step, no dropout; same layers, sharing and losses
    tiny={"g_channels": 16, "d_channels": (8, 16), "d_hidden": 64, "d_dropout": 0.0, "lr": 1e-3,
          "weight_decay": 0.0},
    test_steps=250)
def build(config: CoGANConfig) -> CoGAN:
    return CoGAN(config)
