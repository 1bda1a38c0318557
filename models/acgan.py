"""AC-GAN: Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier
GANs", ICML 2017. arXiv:1610.09585.

G draws ``X_fake = G(c, z)`` for a class label c; D gives both a probability over sources
P(S | X) (real or fake) and over classes P(C | X). The objective (Section 3)::

    L_S = E[log P(S = real | X_real)] + E[log P(S = fake | X_fake)]
    L_C = E[log P(C = c | X_real)]    + E[log P(C = c | X_fake)]

D is trained to maximise L_S + L_C, G to maximise L_C - L_S. As usual (and in the
authors' practice) G maximises ``log P(S = real | X_fake)`` instead of minimising
``log P(S = fake | X_fake)`` (the non-saturating form); all terms are cross-entropies on
logits here.

Architecture (Appendix, the CIFAR-10 model):

* G: the one-hot class concatenated to z (100-d; 110 inputs for 10 classes, so the first
  linear layer holds a learned embedding of each class) -> linear to a 4 x 4 map of 384
  channels, ReLU; 5 x 5 stride-2 transposed convolutions to 192 and 96 channels (BatchNorm,
  ReLU) and to the image (tanh).
* D: 3 x 3 convolutions with strides 2, 1, 2, 1, 2, 1 and 16, 32, 64, 128, 256, 512
  channels, LeakyReLU(0.2), BatchNorm on all but the first, dropout 0.5 after each; a
  linear layer to 1 source logit + ``num_classes`` class logits.
* Adam, lr 0.0002, beta1 = 0.5, beta2 = 0.999, batch 100 (the recipe: each
  model trained for "50000 mini-batches of size 100"); weights N(0, 0.02), biases 0.

Other resolutions: G's doublings follow the image size (28 px: 7 x 7 projection, two
transposed convolutions; 64 px: four, widths doubling from 96 towards the projection);
D keeps its six layers (as the paper's ImageNet model does at 128 px) and the linear
layer reads the final map. Widths scale with ``g_channels`` (96) / ``d_channels`` (16).

Generated labels are drawn uniformly; ``classifier_accuracy`` (``ganbench.metrics.lenet``)
measures how recognisably the generator draws the class it was asked for.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.losses import gan_d_loss, gan_g_loss, init_normal_
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)


@dataclass(frozen=True)
class ACGANConfig(ModelConfig):
    num_classes: int = 10  # label classes (from the dataset)
    z_dim: int = 100  # length of the noise vector z (the class one-hot is appended)
    z_dist: str = "normal"  # "normal" N(0, I) or "uniform" U(-1, 1)
    g_channels: int = 96  # G's last hidden width; doubling towards the projection (384 at 32 px)
    d_channels: int = 16  # D's first width; doubling per layer (16 ... 512)
    d_dropout: float = 0.5  # dropout probability after each D layer
    class_weight: float = 1.0  # weight of L_C relative to L_S (1 = the paper's L_S + L_C)
    lr: float = 2e-4  # Adam learning rate, G and D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    init_std: float = 0.02  # std of the N(0, std) weight init

    def __post_init__(self):
        g_base(self.image_size)
        if self.num_classes < 2:
            raise GanbenchError("acgan is class-conditional: train it on a labelled dataset "
                                "(num_classes >= 2), e.g. --dataset mnist")
        if self.channels not in (1, 3):
            raise GanbenchError(f"acgan: channels must be 1 or 3, got {self.channels}")
        if not 0.0 <= self.d_dropout < 1.0 or self.class_weight < 0:
            raise GanbenchError("acgan: d_dropout must lie in [0, 1) and class_weight be >= 0")


def g_base(image_size: int) -> int:
    """The projection size, 4 or 7, with image_size = base * 2**k, k >= 2."""
    for base in (4, 7):
        k = math.log2(image_size / base) if image_size >= base else -1
        if k >= 2 and k == int(k):
            return base
    raise GanbenchError(f"acgan: image_size must be 4 * 2**k (16, 32, 64, 128...) or 28, got {image_size}")


class Generator(GenerativeModel):
    def __init__(self, c: ACGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist=c.z_dist, num_classes=c.num_classes,
                                 channels=c.channels, image_size=c.image_size)
        self.base = g_base(c.image_size)
        n_up = int(math.log2(c.image_size // self.base))
        widths = [c.g_channels * 2 ** (n_up - 1 - i) for i in range(n_up)]  # e.g. 384 192 96
        self.width0 = widths[0]
        self.project = nn.Sequential(nn.Linear(c.z_dim + c.num_classes, widths[0] * self.base ** 2), nn.ReLU(True))
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 5, 2, 2, output_padding=1), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], c.channels, 5, 2, 2, output_padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def generate(self, z, labels=None):
        if labels is None:
            raise GanbenchError("acgan's generator is class-conditional and needs labels")
        y = F.one_hot(labels.long(), self.latent.num_classes).to(z.dtype)
        h = self.project(torch.cat([z, y], 1)).view(len(z), self.width0, self.base, self.base)
        return self.net(h)


class Discriminator(nn.Module):
    """Images -> (source logits (N,), class logits (N, num_classes))."""

    def __init__(self, c: ACGANConfig):
        super().__init__()
        layers: list[nn.Module] = []
        cin, size = c.channels, c.image_size
        for i, stride in enumerate((2, 1, 2, 1, 2, 1)):
            cout = c.d_channels * 2 ** i
            layers.append(nn.Conv2d(cin, cout, 3, stride, 1))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers += [nn.LeakyReLU(0.2, True), nn.Dropout(c.d_dropout)]
            cin, size = cout, (size - 1) // stride + 1
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(cin * size * size, 1 + c.num_classes)

    def forward(self, x):
        out = self.out(self.net(x).flatten(1))
        return out[:, 0], out[:, 1:]


class ACGAN(GANModel):
    def __init__(self, config: ACGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        init_normal_(self.generator, config.init_std, batchnorm=False)
        init_normal_(self.discriminator, config.init_std, batchnorm=False)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        if batch.labels is None:
            raise GanbenchError("acgan needs labelled training data")
        c = self.config
        real, y_real = batch.images, batch.labels
        z, y_fake = ctx.latents(self.generator.latent, len(real))
        # D: maximise L_S + L_C
        with ctx.autocast():
            fake = ctx.images(self.generator(z, y_fake))
            s_real, c_real = self.discriminator(real)
            s_fake, c_fake = self.discriminator(fake.detach())
            loss_s = gan_d_loss(s_real, s_fake)
            loss_c = F.cross_entropy(c_real.float(), y_real) + F.cross_entropy(c_fake.float(), y_fake)
            loss_d = loss_s + c.class_weight * loss_c
        ctx.backward_step(loss_d, self.opt_d)
        # G: maximise L_C - L_S (non-saturating source term), same z and labels
        with frozen(self.discriminator):
            with ctx.autocast():
                s_gen, c_gen = self.discriminator(fake)
                loss_g = (gan_g_loss(s_gen) + c.class_weight * F.cross_entropy(c_gen.float(), y_fake))
            ctx.backward_step(loss_g, self.opt_g)
        acc_real = (c_real.detach().argmax(1) == y_real).float().mean()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "loss_c": loss_c.detach(),
                "acc_real": acc_real}


_MNIST_LIKE = {"image_size": 28}
_CIFAR = {"image_size": 32, "channels": 3}  # the paper's CIFAR-10 model


@register_model(
    "acgan", config=ACGANConfig, paper="Conditional Image Synthesis with Auxiliary Classifier GANs",
    authors="Odena, Olah, Shlens", arxiv="1610.09585", year=2017, task="class-conditional",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": _CIFAR},
    description="class-conditional G (one-hot into the first layer), D with source and auxiliary "
                "classifier heads; L_S + L_C",
    # Lucic et al. 2018's wide ranges; class_weight a decade either side of the paper's 1 (L_S + L_C; no range given)
    search_space={"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "class_weight": LogUniform(0.1, 10.0)},
    recipes={"default": TrainingRecipe(batch_size=100, source="Odena et al.: each AC-GAN trained for 50000 "
                                                              "mini-batches of size 100")},
    departures=[
        ("G maximises log P(S = real | X_fake) (non-saturating) instead of minimising log P(S = fake | X_fake)",
         "the usual practice, also the authors'; the paper writes the saturating L_C - L_S"),
        ("the CIFAR-10 networks at every resolution: 28 px for MNIST (7 x 7 projection, two up-samplings), "
         "D's six layers kept",
         "one architecture family across datasets; the paper's ImageNet models are 128 px"),
    ],
    # tests: narrow nets, a faster learning rate
    tiny={"g_channels": 16, "d_channels": 4, "z_dim": 32, "lr": 1e-3}, test_steps=150)
def build(config: ACGANConfig) -> ACGAN:
    return ACGAN(config)
