"""StackGAN: Zhang, Xu, Li, Zhang, Wang, Huang & Metaxas, "StackGAN: Text to Photo-realistic
Image Synthesis with Stacked Generative Adversarial Networks", ICCV 2017. arXiv:1612.03242.

Text-to-image synthesis in two stages (Section 3 and 4 of the paper; "implementation
details" for the layers):

* Conditioning Augmentation (CA, Section 3.2): the text embedding phi_t goes through a
  fully connected layer to mu(phi_t) and log sigma^2(phi_t); the condition is sampled,
  c = mu + sigma * eps (N_g = 128 numbers), and G's loss gets
  lambda * KL(N(mu, diag sigma^2) || N(0, I)) with lambda = 1 ("for all our experiments";
  the authors' configs use 2.0, ``kl_weight``). The KL is averaged over the condition's
  dimensions as in the authors' code (summed, it overwhelms the text signal: the
  condition collapses to the prior). Each stage has its own CA.
* Stage-I G: [c_0, z] (z: N_z = 100) -> fully connected to 4 x 4 x (8 N_gf), BatchNorm,
  ReLU -> up-sampling blocks (nearest-neighbour x2, 3 x 3 conv, BatchNorm, ReLU), halving
  the width -> 3 x 3 conv, tanh: the low-resolution image s_0 (64 px in the paper).
* Discriminators (both stages): down-sampling blocks (4 x 4 stride-2 conv, BatchNorm
  except on the first, LeakyReLU 0.2) to M_d x M_d = 4 x 4; the text embedding is
  compressed by a fully connected layer to N_d = 128 and replicated spatially, concatenated
  with the image features, a 1 x 1 conv (BatchNorm, LeakyReLU) and a final 4 x 4 conv give
  one logit. Matching-aware (as in GAN-CLS, Reed et al. 2016): real images with
  *mismatched* text are a third kind of negative,
  L_D = BCE(D(x, t), 1) + (BCE(D(G(.), t), 0) + BCE(D(x, t_wrong), 0)) / 2.
* Stage-II G: no noise; the Stage-I image s_0 is encoded (3 x 3 conv + ReLU, then 4 x 4
  stride-2 conv + BatchNorm + ReLU blocks) to M_g x M_g, concatenated with its own CA
  condition replicated spatially, a 3 x 3 conv (BatchNorm, ReLU), ``residual_blocks``
  residual blocks (two 3 x 3 convs with BatchNorm; 4 in the 256 px model), up-sampling
  blocks to the full resolution, 3 x 3 conv, tanh. Stage-II D has more down-sampling blocks.
* Training (Section 4): Stage-I (G_0, D_0) first with Stage-II fixed, then Stage-II (G, D)
  with Stage-I fixed, 600 epochs each; Adam, lr 0.0002 (beta1 0.5 as in the authors'
  code), batch 64 (the recipe), lr halved every 100 epochs. Here the phase is a pure function of the
  step (``stage1_steps``; lr halvings every ``lr_decay_steps`` within each phase), so a
  resumed run equals an uninterrupted one. During Stage-II, Stage-I runs frozen in eval
  mode (BatchNorm running statistics), exactly as it runs when sampling.

Scaled to MNIST: Stage-I at 16 px, Stage-II at 32 px (the paper: 64 -> 256), M_g = 8.

**Text embeddings are synthetic.** No caption data exists offline, so the char-CNN-RNN
sentence embeddings of the paper (1024-d, Reed et al. 2016) are replaced by *text-like*
stand-ins for a labelled dataset: every class has a fixed, seeded "sentence embedding"
(:func:`class_sentence_embeddings`: a component shared by all classes, as all captions of
a dataset share words, plus a class-specific one), and each training caption adds seeded
per-sample jitter (``embedding_jitter``), as different captions of one image differ.
The embedding table is a buffer of the generator (``generator.sentences``).

The generator (:class:`StackGenerator`, task "text-to-image") keeps every random input in
z so that sampling is seeded and batch-size independent: z = [noise (z_dim), eps of
Stage-I's CA (condition_dim), eps of Stage-II's CA (condition_dim), caption draw u (1)].
``generate(z, labels)`` takes the condition as class ids indexing the sentence table;
``generate(z)`` (what evaluation calls: its LatentSpec has ``num_classes`` 0, as it is not
a class-conditional model) draws the caption's class from u, uniformly, so FID measures
the model over the whole caption distribution; ``generate(z, embeddings=e)`` takes
arbitrary text embeddings (N, embedding_dim). ``generate_stages`` returns both stages.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.losses import init_normal_
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  frozen, register_model)


@dataclass(frozen=True)
class StackGANConfig(ModelConfig):
    image_size: int = 256  # Stage-II (final) resolution
    num_classes: int = 10  # classes of the labelled dataset, one synthetic sentence embedding each
    stage1_size: int = 64  # Stage-I resolution (W_0 = H_0)
    z_dim: int = 100  # N_z, noise of Stage-I
    embedding_dim: int = 1024  # length of a text embedding phi_t (char-CNN-RNN: 1024)
    embedding_seed: int = 0  # seed of the synthetic per-class sentence embeddings
    embedding_shared: float = 0.5  # share of an embedding's variance common to all classes
    embedding_jitter: float = 0.5  # std of the per-caption jitter added to the class embedding
    condition_dim: int = 128  # N_g, length of the CA condition c
    d_condition_dim: int = 128  # N_d, the text embedding compressed for D
    g1_channels: int = 1024  # Stage-I G: width at 4 x 4 (8 N_gf); halves with each up-sampling
    g2_channels: int = 128  # Stage-II G: N_gf, width of its first encoder conv; x2 per down-sampling
    d_channels: int = 64  # N_df, width of D's first conv; x2 per down-sampling (both stages)
    stage2_grid: int = 16  # M_g, side at which Stage-II joins image features and text
    residual_blocks: int = 4  # Stage-II G residual blocks (4 at 256 px, 2 at 128 px)
    kl_weight: float = 1.0  # lambda of the CA's KL term (paper: 1; the authors' configs: 2.0)
    lr_g: float = 2e-4  # Adam learning rate, both generators
    lr_d: float = 2e-4  # Adam learning rate, both discriminators
    beta1: float = 0.5  # Adam beta1 (authors' code)
    beta2: float = 0.999  # Adam beta2
    stage1_steps: int = 83_400  # steps of the Stage-I phase, then Stage-II: 600 epochs of CUB (8,855 / 64)
    lr_decay_steps: int = 13_900  # lr halved every this many steps of a phase (100 epochs); 0: never
    init_std: float = 0.02  # conv / linear weights N(0, std), BatchNorm scale N(1, std) (authors' code)

    def __post_init__(self):
        if self.num_classes < 2:
            raise GanbenchError("stackgan: needs a labelled dataset (num_classes >= 2): class ids select "
                                "the synthetic sentence embeddings")
        if self.channels not in (1, 3):
            raise GanbenchError(f"stackgan: channels must be 1 or 3, got {self.channels}")
        for what, size, base in (("stage1_size", self.stage1_size, 4), ("image_size", self.image_size, 4),
                                 ("stage2_grid", self.stage2_grid, 4)):
            if size < base or 2 ** round(math.log2(size)) != size:
                raise GanbenchError(f"stackgan: {what} must be a power of 2 >= {base}, got {size}")
        if not self.stage2_grid <= self.stage1_size < self.image_size:
            raise GanbenchError(f"stackgan: need stage2_grid <= stage1_size < image_size, got "
                                f"{self.stage2_grid}, {self.stage1_size}, {self.image_size}")
        if self.g1_channels >> int(math.log2(self.stage1_size // 4)) < 1:
            raise GanbenchError(f"stackgan: g1_channels={self.g1_channels} is too narrow to halve down to "
                                f"{self.stage1_size} px")
        if self.g2_channels << int(math.log2(self.stage1_size // self.stage2_grid)) >> \
                int(math.log2(self.image_size // self.stage2_grid)) < 1:
            raise GanbenchError(f"stackgan: g2_channels={self.g2_channels} is too narrow for its up-sampling")
        if min(self.z_dim, self.embedding_dim, self.condition_dim, self.d_condition_dim, self.d_channels) < 1:
            raise GanbenchError("stackgan: dimensions and widths must be >= 1")
        if self.residual_blocks < 0 or self.stage1_steps < 0 or self.lr_decay_steps < 0:
            raise GanbenchError("stackgan: residual_blocks, stage1_steps and lr_decay_steps must be >= 0")
        if not 0.0 <= self.embedding_shared < 1.0 or self.embedding_jitter < 0:
            raise GanbenchError("stackgan: embedding_shared must lie in [0, 1), embedding_jitter >= 0")


# ---------------------------------------------------------------------------------------
# The maths
# ---------------------------------------------------------------------------------------
def class_sentence_embeddings(num_classes: int, dim: int, seed: int, shared: float) -> torch.Tensor:
    """Fixed synthetic "sentence embeddings" (num_classes, dim), seeded: sqrt(shared) * a
    component common to all classes + sqrt(1 - shared) * a class-specific one, each N(0, I)
    (so embeddings have unit variance per coordinate and pairwise cosine ~ ``shared``).
    Stand-ins for the char-CNN-RNN embeddings of captions (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    common = torch.randn(1, dim, generator=g)
    specific = torch.randn(num_classes, dim, generator=g)
    return math.sqrt(shared) * common + math.sqrt(1.0 - shared) * specific


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per condition dimension: averaged over the
    dimensions and the batch, as the authors' code computes it (the summed KL is
    ``condition_dim`` times larger)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def matching_aware_d_loss(real: torch.Tensor, fake: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
    """GAN-CLS discriminator loss from logits: real image + its text -> 1; generated image
    + text -> 0 and real image + mismatched text -> 0, the two negatives weighted 1/2."""
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + 0.5 * (F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
                     + F.binary_cross_entropy_with_logits(wrong, torch.zeros_like(wrong))))


def mismatched_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each label, a uniformly drawn *different* class (the mismatched caption)."""
    shift = torch.randint(1, num_classes, labels.shape, generator=generator, device=generator.device)
    return (labels + shift.to(labels.device)) % num_classes


def caption_classes(u: torch.Tensor, num_classes: int) -> torch.Tensor:
    """u ~ N(0, 1) (N,) -> class ids uniform over 0..num_classes-1 (through the normal CDF)."""
    p = 0.5 * (1.0 + torch.erf(u / math.sqrt(2.0)))
    return (p * num_classes).long().clamp_(0, num_classes - 1)


def phase_lr(base: float, phase_step: int, decay_steps: int) -> float:
    """lr halved every ``decay_steps`` steps of a phase (0: constant)."""
    return base * 0.5 ** (phase_step // decay_steps) if decay_steps else base


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------
def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=False)


def up_block(cin: int, cout: int) -> nn.Sequential:
    """Nearest-neighbour x2, 3 x 3 conv, BatchNorm, ReLU."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(cin, cout),
                         nn.BatchNorm2d(cout), nn.ReLU(True))


def down_block(cin: int, cout: int, *, batchnorm: bool = True, slope: float | None = 0.2) -> nn.Sequential:
    """4 x 4 stride-2 conv, BatchNorm (optional), LeakyReLU(slope) (ReLU when slope is None)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(slope, True) if slope is not None else nn.ReLU(True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.block = nn.Sequential(conv3x3(width, width), nn.BatchNorm2d(width), nn.ReLU(True),
                                   conv3x3(width, width), nn.BatchNorm2d(width))

    def forward(self, x):
        return F.relu(x + self.block(x))


class ConditioningAugmentation(nn.Module):
    """phi_t -> (mu, logvar) by one fully connected layer; c = mu + exp(logvar / 2) * eps."""

    def __init__(self, embedding_dim: int, condition_dim: int):
        super().__init__()
        self.fc = nn.Linear(embedding_dim, 2 * condition_dim)

    def forward(self, embedding: torch.Tensor, eps: torch.Tensor):
        mu, logvar = self.fc(embedding).chunk(2, dim=1)
        return mu + torch.exp(0.5 * logvar) * eps, mu, logvar


class Stage1Generator(nn.Module):
    def __init__(self, c: StackGANConfig):
        super().__init__()
        self.ca = ConditioningAugmentation(c.embedding_dim, c.condition_dim)
        w = c.g1_channels
        self.width = w
        self.fc = nn.Sequential(nn.Linear(c.z_dim + c.condition_dim, w * 16, bias=False),
                                nn.BatchNorm1d(w * 16), nn.ReLU(True))
        n_up = int(math.log2(c.stage1_size // 4))
        self.up = nn.Sequential(*[up_block(w >> i, w >> (i + 1)) for i in range(n_up)])
        self.to_image = nn.Sequential(conv3x3(w >> n_up, c.channels), nn.Tanh())

    def forward(self, noise, embedding, eps):
        """-> (s_0 in [-1, 1], mu, logvar)."""
        cond, mu, logvar = self.ca(embedding, eps)
        h = self.fc(torch.cat([cond, noise], 1)).view(len(noise), self.width, 4, 4)
        return self.to_image(self.up(h)), mu, logvar


class Stage2Generator(nn.Module):
    def __init__(self, c: StackGANConfig):
        super().__init__()
        self.ca = ConditioningAugmentation(c.embedding_dim, c.condition_dim)
        self.grid = c.stage2_grid
        n_down = int(math.log2(c.stage1_size // c.stage2_grid))
        n_up = int(math.log2(c.image_size // c.stage2_grid))
        g = c.g2_channels
        self.encoder = nn.Sequential(conv3x3(c.channels, g), nn.ReLU(True),
                                     *[down_block(g << i, g << (i + 1), slope=None) for i in range(n_down)])
        w = g << n_down
        self.joint = nn.Sequential(conv3x3(w + c.condition_dim, w), nn.BatchNorm2d(w), nn.ReLU(True))
        self.residual = nn.Sequential(*[ResBlock(w) for _ in range(c.residual_blocks)])
        self.up = nn.Sequential(*[up_block(w >> i, w >> (i + 1)) for i in range(n_up)])
        self.to_image = nn.Sequential(conv3x3(w >> n_up, c.channels), nn.Tanh())

    def forward(self, stage1_image, embedding, eps):
        """-> (image in [-1, 1], mu, logvar)."""
        cond, mu, logvar = self.ca(embedding, eps)
        h = self.encoder(stage1_image)
        h = self.joint(torch.cat([h, cond[:, :, None, None].expand(-1, -1, self.grid, self.grid)], 1))
        return self.to_image(self.up(self.residual(h))), mu, logvar


class StackDiscriminator(nn.Module):
    """Image down to 4 x 4, text compressed to N_d and replicated, 1 x 1 conv, 4 x 4 conv -> logit."""

    def __init__(self, c: StackGANConfig, size: int):
        super().__init__()
        n_down = int(math.log2(size // 4))
        d = c.d_channels
        self.encode = nn.Sequential(down_block(c.channels, d, batchnorm=False),
                                    *[down_block(d << i, d << (i + 1)) for i in range(n_down - 1)])
        w = d << (n_down - 1)
        self.text = nn.Sequential(nn.Linear(c.embedding_dim, c.d_condition_dim), nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(nn.Conv2d(w + c.d_condition_dim, w, 1, bias=False), nn.BatchNorm2d(w),
                                   nn.LeakyReLU(0.2, True), nn.Conv2d(w, 1, 4))

    def logits(self, features, embedding):
        """Image features (from ``encode``) + text embeddings -> logits (N,)."""
        t = self.text(embedding)[:, :, None, None].expand(-1, -1, 4, 4)
        return self.joint(torch.cat([features, t], 1)).flatten()

    def forward(self, images, embedding):
        return self.logits(self.encode(images), embedding)


class StackGenerator(GenerativeModel):
    """Both stages and the sentence-embedding table; see the module docstring for z."""

    def __init__(self, c: StackGANConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim + 2 * c.condition_dim + 1, z_dist="normal",
                                 channels=c.channels, image_size=c.image_size)
        self.z_dim, self.condition_dim, self.num_classes = c.z_dim, c.condition_dim, c.num_classes
        self.embedding_dim = c.embedding_dim
        self.register_buffer("sentences", class_sentence_embeddings(c.num_classes, c.embedding_dim,
                                                                    c.embedding_seed, c.embedding_shared))
        self.stage1 = Stage1Generator(c)
        self.stage2 = Stage2Generator(c)

    def split_latent(self, z: torch.Tensor):
        """z -> (noise, eps of Stage-I's CA, eps of Stage-II's CA, caption draw u (N,))."""
        if z.dim() != 2 or z.shape[1] != self.latent.z_dim:
            raise InputError(f"stackgan: z must be (N, {self.latent.z_dim}), got {tuple(z.shape)}")
        noise, eps1, eps2, u = z.split([self.z_dim, self.condition_dim, self.condition_dim, 1], dim=1)
        return noise, eps1, eps2, u[:, 0]

    def embed(self, labels: torch.Tensor) -> torch.Tensor:
        """Class ids (N,) -> their sentence embeddings (N, embedding_dim)."""
        if labels.dim() != 1 or (labels < 0).any() or (labels >= self.num_classes).any():
            raise InputError(f"stackgan: labels must be class ids 0..{self.num_classes - 1} of shape (N,)")
        return self.sentences[labels.long()]

    def condition(self, z, labels=None, embeddings=None) -> torch.Tensor:
        if embeddings is not None:
            if embeddings.shape != (len(z), self.embedding_dim):
                raise InputError(f"stackgan: embeddings must be ({len(z)}, {self.embedding_dim}), "
                                 f"got {tuple(embeddings.shape)}")
            return embeddings
        if labels is None:
            labels = caption_classes(self.split_latent(z)[3], self.num_classes)
        return self.embed(labels)

    def generate_stages(self, z, labels=None, embeddings=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(Stage-I image at stage1_size, Stage-II image at image_size), both in [-1, 1]."""
        noise, eps1, eps2, _ = self.split_latent(z)
        text = self.condition(z, labels, embeddings)
        s0 = self.stage1(noise, text, eps1)[0]
        return s0, self.stage2(s0, text, eps2)[0]

    def generate(self, z, labels=None, embeddings=None):
        return self.generate_stages(z, labels, embeddings)[1]


class StackGAN(GANModel):
    def __init__(self, config: StackGANConfig):
        super().__init__(config)
        self.generator = StackGenerator(config)
        self.discriminator1 = StackDiscriminator(config, config.stage1_size)
        self.discriminator2 = StackDiscriminator(config, config.image_size)
        for net in (self.generator, self.discriminator1, self.discriminator2):
            init_normal_(net, config.init_std)
        betas = (config.beta1, config.beta2)
        self.opt_g1 = torch.optim.Adam(self.generator.stage1.parameters(), config.lr_g, betas=betas)
        self.opt_d1 = torch.optim.Adam(self.discriminator1.parameters(), config.lr_d, betas=betas)
        self.opt_g2 = torch.optim.Adam(self.generator.stage2.parameters(), config.lr_g, betas=betas)
        self.opt_d2 = torch.optim.Adam(self.discriminator2.parameters(), config.lr_d, betas=betas)

    def stage(self, step: int) -> int:
        """The phase at ``step``: 1 (Stage-I GAN) or 2 (Stage-II GAN, Stage-I fixed)."""
        return 1 if step < self.config.stage1_steps else 2

    def captions(self, labels: torch.Tensor, ctx: TrainContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Synthetic captions of the batch: (matching, mismatched) embeddings with jitter."""
        c, g = self.config, self.generator
        wrong = mismatched_labels(labels, c.num_classes, ctx.generator)
        jitter = torch.randn(2, len(labels), c.embedding_dim, device=ctx.device, generator=ctx.generator)
        return g.embed(labels) + c.embedding_jitter * jitter[0], g.embed(wrong) + c.embedding_jitter * jitter[1]

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        if batch.labels is None:
            raise GanbenchError("stackgan trains on a labelled dataset (class ids select the synthetic "
                                "sentence embeddings); this dataset has no labels")
        c, g = self.config, self.generator
        stage = self.stage(step)
        phase_step = step if stage == 1 else step - c.stage1_steps
        if stage == 1:
            net_d, opt_g, opt_d = self.discriminator1, self.opt_g1, self.opt_d1
        else:
            net_d, opt_g, opt_d = self.discriminator2, self.opt_g2, self.opt_d2
        for opt, base in ((opt_g, c.lr_g), (opt_d, c.lr_d)):
            for group in opt.param_groups:
                group["lr"] = phase_lr(base, phase_step, c.lr_decay_steps)

        n = len(batch.images)
        text, wrong_text = self.captions(batch.labels, ctx)
        z, _ = ctx.latents(g.latent, n)
        noise, eps1, eps2, _ = g.split_latent(z)
        if stage == 1:
            real = F.interpolate(batch.images, size=(c.stage1_size,) * 2, mode="bilinear",
                                 align_corners=False, antialias=True)
            with ctx.autocast():
                fake, mu, logvar = g.stage1(noise, text, eps1)
        else:
            real = batch.images
            g.stage1.eval()  # fixed: frozen weights, running BatchNorm statistics (as when sampling)
            with torch.no_grad(), ctx.autocast():
                s0 = g.stage1(noise, text, eps1)[0]
            with ctx.autocast():
                fake, mu, logvar = g.stage2(ctx.images(s0), text, eps2)
        real, fake = ctx.images(real), ctx.images(fake)

        with ctx.autocast():
            features_real = net_d.encode(real)  # once for the matching and the mismatched text
            logits_real = net_d.logits(features_real, text)
            logits_wrong = net_d.logits(features_real, wrong_text)
            logits_fake = net_d(fake.detach(), text)
            loss_d = matching_aware_d_loss(logits_real, logits_fake, logits_wrong)
        ctx.backward_step(loss_d, opt_d)
        with frozen(net_d):
            with ctx.autocast():
                logits_gen = net_d(fake, text)
                kl = kl_to_standard_normal(mu.float(), logvar.float())
                loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen)) + c.kl_weight * kl
            ctx.backward_step(loss_g, opt_g)
        return {"stage": float(stage), "loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "kl": kl.detach(),
                "d_real": mean_probability(logits_real), "d_fake": mean_probability(logits_fake),
                "d_wrong": mean_probability(logits_wrong)}


def mean_probability(logits: torch.Tensor) -> torch.Tensor:
    """Mean of D's sigmoid outputs, for the log."""
    return torch.sigmoid(logits.detach().float()).mean()


_MNIST_LIKE = {"image_size": 32, "stage1_size": 16, "stage2_grid": 8, "residual_blocks": 2,
               # 600 / 100 epochs of 60,000 images at batch 64 (938 steps)
               "stage1_steps": 562_800, "lr_decay_steps": 93_800}


@register_model(
    "stackgan", config=StackGANConfig,
    paper="StackGAN: Text to Photo-realistic Image Synthesis with Stacked Generative Adversarial Networks",
    authors="Zhang, Xu, Li, Zhang, Wang, Huang, Metaxas", arxiv="1612.03242", year=2017, task="text-to-image",
    defaults={"mnist": _MNIST_LIKE, "fashion-mnist": _MNIST_LIKE, "digits": _MNIST_LIKE,
              "cifar10": {**_MNIST_LIKE, "channels": 3, "stage1_steps": 468_600, "lr_decay_steps": 78_100}},
    description="conditioning augmentation, Stage-I G/D at low resolution, Stage-II residual G/D at full "
                "resolution, matching-aware D; synthetic seeded per-class sentence embeddings stand in for "
                "char-CNN-RNN text embeddings (labelled datasets)",
    reference_code="https://github.com/hanzhanggit/StackGAN-Pytorch (init, Adam beta1, KL coefficient)",
    # Lucic et al. 2018's wide ranges; kl_weight a decade either side of the paper's lambda = 1 (no range given)
    search_space={"lr_g": LogUniform(1e-5, 1e-2), "lr_d": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0),
                  "kl_weight": LogUniform(0.1, 10.0)},
    recipes={"default": TrainingRecipe(batch_size=64, source="Zhang et al., implementation details: all "
                                                             "networks trained with ADAM, batch size 64")},
    departures=[
        ("synthetic seeded per-class sentence embeddings with per-caption jitter instead of char-CNN-RNN "
         "caption embeddings",
         "no caption data exists offline; labelled datasets stand in for captioned ones"),
        ("Stage-I at 16 px and Stage-II at 32 px (M_g = 8, 2 residual blocks); the paper goes 64 -> 256",
         "MNIST-sized data"),
        ("the CA's KL term is averaged over the condition's dimensions",
         "as the authors' code; summed, it overwhelms the text signal and the condition collapses to the prior"),
        ("the phases switch and the learning rate halves at fixed step counts (600 and 100 epochs of the "
         "dataset at batch 64)",
         "schedules are functions of the step, so resumed runs match uninterrupted ones"),
    ],
    # narrow nets, a larger step; Stage-I for 400 steps, then Stage-II (tests use batch 32)
    tiny={"embedding_dim": 64, "condition_dim": 16, "d_condition_dim": 16, "z_dim": 32, "g1_channels": 64,
          "g2_channels": 16, "d_channels": 16, "residual_blocks": 1, "lr_g": 1e-3, "lr_d": 1e-3,
          "stage1_steps": 400, "lr_decay_steps": 0},
    test_steps=650)
def build(config: StackGANConfig) -> StackGAN:
    return StackGAN(config)
