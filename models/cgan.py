"""CGAN: Mirza & Osindero, "Conditional Generative Adversarial Nets", 2014. arXiv:1411.1784.

The paper's MNIST model (Section 4.1):

* G: z (100-d, uniform; U(-1, 1) here) -> 200 ReLU and the one-hot label y -> 1000 ReLU,
  concatenated -> 1200 ReLU -> 784 sigmoid outputs. Dropout 0.5. Both networks work on
  pixels in [0, 1] as in the paper (``generate`` maps to ganbench's [-1, 1]). As in the
  GAN code, G's output biases start at the logits of the pixel marginals.
* D: x -> maxout 240 units x 5 pieces and y -> maxout 50 x 5, concatenated -> maxout
  240 x 4 -> 1 logit. Dropout 0.5.
* Objective: the GAN minimax game with both players conditioned on y; G uses the
  non-saturating loss -log D(G(z|y)|y) as in the GAN paper's practice.
* Optimiser: SGD, batch 100 (the recipe: "mini-batches of size 100"), learning rate 0.1
  exponentially decreased (factor 1.00004 per update) to 1e-6, momentum 0.5 increased to
  0.7. The paper does not say over how long momentum rises; we use the GAN code's epochs
  1..250. As in pylearn2's maxout models, D's units keep incoming-weight norms <= 1.9365
  (``d_max_col_norm``; the paper does not mention it).

Generated labels are drawn uniformly; ``classifier_accuracy`` (``ganbench.metrics.lenet``)
measures how recognisably the generator draws the class it was asked for.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)
from ganbench.models.losses import gan_d_loss, gan_g_loss
from ganbench.models.gan import (Maxout, apply_sgd_schedule, check_common, constrain_norms,
                                 init_bias_from_marginals, make_optimizers, to_unit, uniform_init)


@dataclass(frozen=True)
class CGANConfig(ModelConfig):
    image_size: int = 28  # output height = width
    num_classes: int = 10  # label classes (from the dataset)
    z_dim: int = 100  # length of the noise vector z
    z_dist: str = "uniform"  # "uniform" U(-1, 1) (the paper's unit hypercube, rescaled) or "normal"
    g_z_hidden: int = 200  # G: ReLU units on z
    g_y_hidden: int = 1000  # G: ReLU units on the one-hot label
    g_hidden: int = 1200  # G: joint ReLU layer
    g_keep: float = 0.5  # G: dropout keep probability on its hidden layers
    d_x_hidden: int = 240  # D: maxout units on the image
    d_y_hidden: int = 50  # D: maxout units on the label
    d_hidden: int = 240  # D: joint maxout units
    d_maxout_pieces: int = 5  # D: pieces of the first maxout layers; 1 = LeakyReLU units
    d_joint_pieces: int = 4  # D: pieces of the joint maxout layer
    d_input_keep: float = 1.0  # D: dropout keep probability on its inputs
    d_hidden_keep: float = 0.5  # D: dropout keep probability on its hidden layers
    g_init: float = 0.05  # G weights U(-g_init, g_init)
    g_bias_from_data: bool = True  # G's output biases = logit(mean pixel) of the first batch
    d_init: float = 0.005  # D weights U(-d_init, d_init)
    d_max_col_norm: float = 1.9365  # max L2 norm of each D unit's incoming weights (0: off)
    optimizer: str = "sgd"  # "sgd" (the paper's) or "adam" (lr, beta1 below)
    lr: float = 0.1  # initial learning rate, G and D
    lr_decay: float = 1.00004  # SGD: lr is divided by this after every update
    min_lr: float = 1e-6  # SGD: floor of the decayed learning rate
    momentum: float = 0.5  # SGD: initial momentum
    final_momentum: float = 0.7  # SGD: final momentum
    momentum_start: int = 600  # SGD: step at which momentum starts rising
    momentum_saturate: int = 150_000  # SGD: step at which it reaches final_momentum
    beta1: float = 0.5  # Adam beta1 (optimizer="adam" only)

    def __post_init__(self):
        check_common(self, "cgan")
        if self.num_classes < 2:
            raise GanbenchError("cgan is class-conditional: train it on a labelled dataset "
                                "(num_classes >= 2), e.g. --dataset mnist")
        if not 0.0 < self.g_keep <= 1.0 or self.d_joint_pieces < 1:
            raise GanbenchError("cgan: g_keep must lie in (0, 1] and d_joint_pieces be >= 1")


class Generator(GenerativeModel):
    def __init__(self, c: CGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist=c.z_dist, num_classes=c.num_classes,
                                 channels=c.channels, image_size=c.image_size)
        self.shape = (c.channels, c.image_size, c.image_size)
        drop = 1 - c.g_keep
        self.z_branch = nn.Sequential(nn.Linear(c.z_dim, c.g_z_hidden), nn.ReLU(), nn.Dropout(drop))
        self.y_branch = nn.Sequential(nn.Linear(c.num_classes, c.g_y_hidden), nn.ReLU(), nn.Dropout(drop))
        self.joint = nn.Sequential(nn.Linear(c.g_z_hidden + c.g_y_hidden, c.g_hidden), nn.ReLU(), nn.Dropout(drop),
                                   nn.Linear(c.g_hidden, c.channels * c.image_size ** 2), nn.Sigmoid())
        self.register_buffer("bias_ready", torch.tensor(not c.g_bias_from_data))

    @property
    def output_layer(self) -> nn.Linear:
        return self.joint[3]

    def generate(self, z, labels=None):
        if labels is None:
            raise GanbenchError("cgan's generator is class-conditional and needs labels")
        y = F.one_hot(labels.long(), self.latent.num_classes).to(z.dtype)
        h = torch.cat([self.z_branch(z), self.y_branch(y)], 1)
        return self.joint(h).view(len(z), *self.shape) * 2 - 1  # [0, 1] -> [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, c: CGANConfig):
        super().__init__()
        self.num_classes = c.num_classes
        self.x_branch = nn.Sequential(nn.Dropout(1 - c.d_input_keep),
                                      Maxout(c.channels * c.image_size ** 2, c.d_x_hidden, c.d_maxout_pieces))
        self.y_branch = Maxout(c.num_classes, c.d_y_hidden, c.d_maxout_pieces)
        self.joint = nn.Sequential(nn.Dropout(1 - c.d_hidden_keep),
                                   Maxout(c.d_x_hidden + c.d_y_hidden, c.d_hidden, c.d_joint_pieces),
                                   nn.Dropout(1 - c.d_hidden_keep), nn.Linear(c.d_hidden, 1))

    def forward(self, x, labels):
        y = F.one_hot(labels.long(), self.num_classes).to(x.dtype)
        h = torch.cat([self.x_branch(to_unit(x).flatten(1)), self.y_branch(y)], 1)
        return self.joint(h).flatten()  # logits (N,)


class CGAN(GANModel):
    def __init__(self, config: CGANConfig):
        super().__init__(config)
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        uniform_init(self.generator, config.g_init)
        uniform_init(self.discriminator, config.d_init)
        self.opt_g, self.opt_d = make_optimizers(config, self.generator, self.discriminator)

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        if batch.labels is None:
            raise GanbenchError("cgan needs labelled training data")
        apply_sgd_schedule(self.config, step, self.opt_g, self.opt_d)
        init_bias_from_marginals(self.generator.output_layer, batch.images, self.generator.bias_ready)
        n = len(batch.images)
        z, y_fake = ctx.latents(self.generator.latent, n)
        with ctx.autocast():
            with torch.no_grad():
                fake = self.generator(z, y_fake)
            loss_d = gan_d_loss(self.discriminator(batch.images, batch.labels), self.discriminator(fake, y_fake))
        ctx.backward_step(loss_d, self.opt_d)
        constrain_norms(self.discriminator, self.config.d_max_col_norm)
        z, y_fake = ctx.latents(self.generator.latent, n)
        with frozen(self.discriminator):
            with ctx.autocast():
                loss_g = gan_g_loss(self.discriminator(self.generator(z, y_fake), y_fake))
            ctx.backward_step(loss_g, self.opt_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}


_MNIST = {"image_size": 28}


@register_model(
    "cgan", config=CGANConfig, paper="Conditional Generative Adversarial Nets",
    authors="Mirza, Osindero", arxiv="1411.1784", year=2014, task="class-conditional",
    defaults={"mnist": _MNIST, "fashion-mnist": _MNIST, "digits": _MNIST},
    description="MLP G and maxout D, both conditioned on the one-hot label",
    # searched draws train with Adam, as every model of Lucic et al. 2018; their wide ranges
    search_space={"optimizer": "adam", "lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0)},
    recipes={"default": TrainingRecipe(batch_size=100, source="Mirza & Osindero Sec. 4.1: SGD with mini-batches "
                                                              "of size 100")},
    departures=[
        ("z is uniform on [-1, 1]^100 instead of the paper's unit hypercube [0, 1]^100",
         "a centred prior; the same distribution up to an affine map that G's first layer absorbs"),
        ("G's output biases start at the logits of the first batch's pixel means",
         "borrowed from the GAN code (init_sigmoid_bias_from_marginals) for a faster start; the paper is silent"),
        ("D's incoming weight norms are capped at 1.9365",
         "pylearn2 maxout practice; the paper does not mention a norm constraint"),
        ("momentum rises from 0.5 to 0.7 between steps 600 and 150,000",
         "the paper does not say over how long; the GAN code's epochs 1..250 at batch 100 are used"),
        ("dropout 0.5 on the hidden layers of G and D, none on D's inputs",
         "the paper says only that dropout 0.5 was applied to both networks"),
        ("G minimises the non-saturating -log D(G(z|y)|y)",
         "the GAN paper's practical recommendation; the CGAN paper states only the minimax game"),
        ("no early stopping on the validation log-likelihood",
         "ganbench trains for a fixed number of steps and evaluates with sample-based metrics"),
    ],
    # narrow G, the paper's D; Adam, since SGD at lr 0.1 needs thousands of steps to get anywhere.
    # The one-hot label branch of G learns slowly (its ReLU units die easily): with narrower D or
    # fewer steps the samples ignore the label (class accuracy ~0.1 at 500 steps, 0.34 at 1000
    # against the test's 0.3, 0.27 on an AVX-512 machine; 0.56 at 1500, lenet-FID 281).
    tiny={"g_z_hidden": 64, "g_y_hidden": 128, "g_hidden": 256, "optimizer": "adam", "lr": 2e-3},
    test_steps=1500)
def build(config: CGANConfig) -> CGAN:
    return CGAN(config)
