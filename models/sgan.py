"""SGAN: Odena, "Semi-Supervised Learning with Generative Adversarial Networks", ICML 2016
workshop on Data-Efficient Machine Learning. arXiv:1606.01583.

The discriminator is also the classifier (D/C): it outputs N + 1 logits, the N real
classes and one "generated" class (Section 2). It is trained on a small labelled subset
of the real data, on the rest of the real data without labels, and on generated images:

* labelled real (x, y): cross-entropy of class y among the N + 1 outputs;
* unlabelled real x: -log(1 - p(N+1 | x)), i.e. "one of the real classes" (the standard
  way to use unlabelled data in this model, Salimans et al. 2016, Section 5; weight
  ``unlabeled_weight``; 0 gives the paper's Algorithm 1, labelled reals and fakes only);
* generated G(z): cross-entropy of the generated class N + 1.

G minimises -log(1 - p(N+1 | G(z))) (the non-saturating form of "make D/C assign G's
samples to a real class"). One D/C step per G step.

The labelled subset: ``labels_per_class`` images of each class (10 x 10 = 100 labels by
default), the first ones of each class in the seeded training batches. They are kept
in model buffers (checkpointed with the run), so the subset is a deterministic function
of the training seed and a resumed run uses the same one. The training loop's labels of
every other image are never used.

Architecture: the paper uses DCGAN-like networks on MNIST. G is the DCGAN generator
(:class:`ganbench.models.dcgan.Generator`: BatchNorm, ReLU, tanh; 7 x 7 start at 28 px);
D/C is DCGAN's strided-convolution discriminator with LeakyReLU(0.2) and dropout instead
of BatchNorm (batch statistics would mix labelled, unlabelled and generated images and
differ between training and test-time classification; dropout also regularises the
100-label classifier), and a final linear layer to N + 1 logits.
Adam, learning rate 2e-4, beta1 = 0.5 (DCGAN's); batch 64 (the recipe; the paper gives no
batch size, see ``departures``).

:func:`semi_supervised_report` measures D/C's accuracy on a labelled test set against
the same architecture trained, with the same optimiser and number of updates, on the
labelled subset alone -- the comparison of the paper's Table 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe, Uniform,
                                  eval_mode, frozen, register_model)
from ganbench.models.dcgan import DCGANConfig, Generator as DCGANGenerator
from ganbench.models.losses import init_normal_


@dataclass(frozen=True)
class SGANConfig(ModelConfig):
    image_size: int = 28  # output height = width: 28 or 4 * 2**k (16, 32, 64)
    num_classes: int = 10  # N real classes (from the dataset)
    z_dim: int = 100  # length of the noise vector z
    g_channels: int = 64  # G's widest-resolution feature maps (DCGAN ngf)
    d_channels: int = 64  # D/C's first conv feature maps; doubles per layer
    d_dropout: float = 0.5  # dropout after every D/C conv layer
    labels_per_class: int = 10  # labelled images per class (10 x 10 = 100 labels on MNIST)
    labeled_batch_size: int = 64  # labelled images per D/C step (drawn from the subset)
    unlabeled_weight: float = 1.0  # weight of the unlabelled-real term; 0 = the paper's Algorithm 1
    lr_g: float = 2e-4  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D/C
    beta1: float = 0.5  # Adam beta1
    init_std: float = 0.02  # weights N(0, std)

    def __post_init__(self):
        d_layers(self.image_size)  # validates
        if self.num_classes < 2:
            raise GanbenchError("sgan is semi-supervised: train it on a labelled dataset "
                                "(num_classes >= 2), e.g. --dataset mnist")
        if self.channels not in (1, 3):
            raise GanbenchError(f"sgan: channels must be 1 or 3, got {self.channels}")
        if self.labels_per_class < 1 or self.labeled_batch_size < 1:
            raise GanbenchError("sgan: labels_per_class and labeled_batch_size must be >= 1")
        if not 0.0 <= self.d_dropout < 1.0 or self.unlabeled_weight < 0:
            raise GanbenchError("sgan: d_dropout must lie in [0, 1) and unlabeled_weight be >= 0")


def d_layers(image_size: int) -> tuple[int, int]:
    """(base, n): n stride-2 convolutions take image_size down to base (7 at 28 px, else 4)."""
    for base in (7, 4):
        k = math.log2(image_size / base) if image_size > base else 0
        if k >= 2 and k == int(k):
            return base, int(k)
    raise GanbenchError(f"sgan: image_size must be 28 or 4 * 2**k (16, 32, 64...), got {image_size}")


class Classifier(nn.Module):
    """D/C: images (N, C, H, W) in [-1, 1] -> logits (N, num_classes + 1); the last is "generated"."""

    def __init__(self, c: SGANConfig):
        super().__init__()
        base, n = d_layers(c.image_size)
        widths = [c.d_channels * 2 ** i for i in range(n)]
        layers: list[nn.Module] = []
        cin = c.channels
        for w in widths:
            layers += [nn.Conv2d(cin, w, 4, 2, 1), nn.LeakyReLU(0.2, True), nn.Dropout(c.d_dropout)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(widths[-1] * base ** 2, c.num_classes + 1)

    def forward(self, x):
        return self.out(self.features(x).flatten(1))


def log_p_real(logits: torch.Tensor) -> torch.Tensor:
    """log(1 - p(generated | x)) = log sum_{k <= N} p(k | x), per row."""
    return torch.logsumexp(logits[:, :-1], 1) - torch.logsumexp(logits, 1)


class SGAN(GANModel):
    def __init__(self, config: SGANConfig):
        super().__init__(config)
        self.generator = DCGANGenerator(DCGANConfig(
            image_size=config.image_size, channels=config.channels, z_dim=config.z_dim,
            g_channels=config.g_channels))
        self.discriminator = Classifier(config)
        init_normal_(self.generator, config.init_std)
        init_normal_(self.discriminator, config.init_std)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=(config.beta1, 0.999))
        self.opt_d = make_d_optimizer(config, self.discriminator)
        k, size = config.num_classes * config.labels_per_class, config.image_size
        # the labelled subset, slot class * labels_per_class + j (checkpointed with the run)
        self.register_buffer("labeled_images", torch.zeros(k, config.channels, size, size))
        self.register_buffer("labeled_targets",
                             torch.arange(config.num_classes).repeat_interleave(config.labels_per_class))
        self.register_buffer("class_counts", torch.zeros(config.num_classes, dtype=torch.long))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    # -- the labelled subset -----------------------------------------------------------
    def _collect_labels(self, batch: Batch) -> None:
        """Keep the first ``labels_per_class`` images of each class seen in training batches."""
        per = self.config.labels_per_class
        if int(self.class_counts.min()) >= per:
            return
        for x, y in zip(batch.images, batch.labels.tolist()):
            if not 0 <= y < self.config.num_classes:
                raise GanbenchError(f"sgan: label {y} outside 0..{self.config.num_classes - 1}")
            j = int(self.class_counts[y])
            if j < per:
                self.labeled_images[y * per + j] = x.detach().float()
                self.class_counts[y] += 1

    def labeled_mask(self) -> torch.Tensor:
        """(K,) bool: which slots of the labelled subset are filled."""
        per = self.config.labels_per_class
        slot = torch.arange(len(self.labeled_targets), device=self.class_counts.device) % per
        return slot < self.class_counts[self.labeled_targets]

    def labeled_subset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The labelled images (float, [-1, 1]) and their labels collected so far."""
        mask = self.labeled_mask()
        return self.labeled_images[mask], self.labeled_targets[mask]

    # -- training ----------------------------------------------------------------------
    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        c = self.config
        if batch.labels is None:
            raise GanbenchError("sgan needs a labelled dataset to draw its labelled subset from")
        self._collect_labels(batch)
        x_lab, y_lab = self.labeled_subset()
        pick = torch.randint(0, len(x_lab), (c.labeled_batch_size,), device=ctx.device, generator=ctx.generator)
        x_lab, y_lab = ctx.images(x_lab[pick.to(x_lab.device)]), y_lab[pick.to(y_lab.device)]
        n = len(batch.images)
        z, _ = ctx.latents(self.generator.latent, n)
        fake_class = torch.full((n,), c.num_classes, device=batch.images.device, dtype=torch.long)
        # D/C: labelled reals -> their class, unlabelled reals -> "real", G(z) -> "generated"
        with ctx.autocast():
            fake = ctx.images(self.generator(z))
            # one forward for the three kinds of input (D/C has no batch statistics)
            logits = self.discriminator(torch.cat([x_lab, batch.images, fake.detach()])).float()
            logits_lab, logits_unl, logits_fake = logits.split([len(x_lab), n, n])
            loss_sup = F.cross_entropy(logits_lab, y_lab)
            loss_unl = -log_p_real(logits_unl).mean()
            loss_fake = F.cross_entropy(logits_fake, fake_class)
            loss_d = loss_sup + c.unlabeled_weight * loss_unl + loss_fake
        ctx.backward_step(loss_d, self.opt_d)
        # G: make D/C put G(z) in a real class
        with frozen(self.discriminator):
            with ctx.autocast():
                loss_g = -log_p_real(self.discriminator(fake).float()).mean()
            ctx.backward_step(loss_g, self.opt_g)
        self.steps_done += 1
        acc = (logits_lab.detach()[:, :-1].argmax(1) == y_lab).float().mean()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "loss_sup": loss_sup.detach(),
                "loss_unl": loss_unl.detach(), "loss_fake": loss_fake.detach(), "labeled_acc": acc,
                "labeled": self.labeled_mask().sum().float()}


def make_d_optimizer(c: SGANConfig, d: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(d.parameters(), lr=c.lr_d, betas=(c.beta1, 0.999))


@torch.no_grad()
def classifier_accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                        batch_size: int = 1000) -> float:
    """Accuracy of D/C's real-class prediction (argmax over the N real logits).

    ``images``: float (N, C, H, W) in [-1, 1] or uint8 0..255 at the model's resolution.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise InputError(f"need as many labels as images (got {len(images)} and {len(labels)})")
    if images.dtype == torch.uint8:
        images = images.float() / 127.5 - 1
    device = next(classifier.parameters()).device
    correct = 0
    with eval_mode(classifier):
        for s in range(0, len(images), batch_size):
            logits = classifier(images[s:s + batch_size].to(device))
            correct += (logits[:, :-1].argmax(1).cpu() == labels[s:s + batch_size].cpu()).sum().item()
    return correct / len(images)


def train_supervised_baseline(config: SGANConfig, images: torch.Tensor, labels: torch.Tensor, steps: int, *,
                              seed: int = 0, device: torch.device | str = "cpu") -> Classifier:
    """The same D/C architecture, initialisation and optimiser trained on the labelled subset
    alone (cross-entropy over the real classes, ``config.labeled_batch_size`` per step)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = Classifier(config).to(device)
        init_normal_(net, config.init_std)
        opt = make_d_optimizer(config, net)
        net.train()
        for _ in range(steps):
            pick = torch.randint(0, len(images), (config.labeled_batch_size,), generator=gen)
            loss = F.cross_entropy(net(images[pick].to(device))[:, :-1], labels[pick].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net


def semi_supervised_report(model: SGAN, test_images: torch.Tensor, test_labels: torch.Tensor, *,
                           baseline_steps: int | None = None, seed: int = 0) -> dict[str, float]:
    """Test accuracy of SGAN's D/C and of the supervised-only baseline (same architecture,
    trained on the same labelled subset for ``baseline_steps`` updates, default: as many as
    D/C has made).

    Args:
        test_images: float (N, C, H, W) in [-1, 1] (or uint8) at the model's resolution,
            e.g. the MNIST test split.
        test_labels: int64 (N,).
    Returns:
        ``sgan_accuracy``, ``baseline_accuracy``, ``labeled`` (size of the labelled
        subset), ``baseline_steps``; chance is 1 / num_classes.
    """
    images, labels = model.labeled_subset()
    if len(images) == 0:
        raise InputError("the SGAN has not been trained yet: its labelled subset is empty")
    steps = int(model.steps_done) if baseline_steps is None else baseline_steps
    device = images.device
    baseline = train_supervised_baseline(model.config, images.detach().cpu(), labels.cpu(), steps,
                                         seed=seed, device=device)
    return {"sgan_accuracy": classifier_accuracy(model.discriminator, test_images, test_labels),
            "baseline_accuracy": classifier_accuracy(baseline, test_images, test_labels),
            "labeled": len(images), "baseline_steps": steps}


_MNIST = {"image_size": 28}


@register_model(
    "sgan", config=SGANConfig, paper="Semi-Supervised Learning with Generative Adversarial Networks",
    authors="Odena", arxiv="1606.01583", year=2016, task="unconditional",
    defaults={"mnist": _MNIST, "fashion-mnist": _MNIST, "digits": _MNIST,
              "cifar10": {"image_size": 32, "channels": 3}},
    description="D/C with N+1 outputs trained on 100 labels + unlabelled + generated data; DCGAN G",
    # Lucic et al. 2018's wide ranges; unlabeled_weight a decade either side of 1 (the term is Salimans et al.'s;
    # the paper's 0, Algorithm 1, is another model rather than a point of the search)
    search_space={"lr_g": LogUniform(1e-5, 1e-2), "lr_d": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0),
                  "unlabeled_weight": LogUniform(0.1, 10.0)},
    recipes={"default": TrainingRecipe(batch_size=64, source="unverified: ganbench's default 64 (we found no "
                                                             "batch size in the paper)")},
    departures=[
        ("batch 64 is not taken from the paper", "we could not verify the paper's batch size"),
        ("unlabelled real images also train D/C (weight 1)",
         "the standard use of unlabelled data in this model (Salimans et al. 2016); unlabeled_weight=0 gives "
         "the paper's Algorithm 1"),
        ("D/C uses dropout instead of BatchNorm",
         "batch statistics would mix labelled, unlabelled and generated images and differ at test time"),
        ("the labelled subset is the first 10 images of each class in the seeded training stream",
         "the paper does not say how it drew its labelled subset"),
    ],
    tiny={"g_channels": 16, "d_channels": 16, "z_dim": 32, "lr_g": 1e-3, "lr_d": 1e-3}, test_steps=200)
def build(config: SGANConfig) -> SGAN:
    return SGAN(config)
