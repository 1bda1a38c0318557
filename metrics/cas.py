"""CAS: Classification Accuracy Score (Ravuri & Vinyals 2019, "Classification Accuracy Score
for Conditional Generative Models", NeurIPS).

Train a classifier on the N labelled images of the input (a class-conditional generator's
samples with the classes it was asked for, or a labelled array file), then report its
accuracy on the real test split (the reference, labelled: ``-r mnist:test``). Next to it,
``cas_real``: the same classifier, same recipe, trained on N real images of the training
split (option ``train``; ``"auto"`` as in :func:`ganbench.metrics.memorization.training_split`),
a seeded random subset -- the score a perfect generator would approach. N is the input's
number of samples (``-n``); the paper trains on as many generated samples as the real
training set holds (``-n 60000`` on MNIST).

The classifier is ganbench's :class:`~ganbench.metrics.lenet.LeNet` (the architecture of the
``lenet-mnist`` extractor) trained from scratch on its input space (channel-mean gray,
28 x 28, [-1, 1]: :func:`ganbench.metrics.lenet.preprocess`), so CAS suits MNIST-like data.
The recipe is fixed and recorded in the protocol: Adam (lr 2e-3), cosine decay to 0 over
all steps, batch 128, 10 epochs, no augmentation, initialisation and batch order seeded by
``classifier_seed`` (not the evaluation seed: two checkpoints are compared under the same
initialisation). Where Ravuri & Vinyals train a ResNet-50 on ImageNet, this recipe is the
LeNet-size analogue the issue asks for; its numbers are only comparable with rows of the
same protocol.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, MetricResult, keyword_defaults, register_metric
from ganbench.metrics.lenet import INPUT_SIZE, LeNet, preprocess
from ganbench.metrics.memorization import split_provenance, training_split

# the classifier's provenance on every row: trained here, from nothing loaded
CLASSIFIER = {"extractor": "cas-lenet", "weights_sha256": None, "weights_standard": True,
              "input_size": INPUT_SIZE, "resize": "channel-mean gray, bilinear to 28"}
READ_BATCH = 500  # images read (or generated) at a time


def classifier_inputs(source, keep: torch.Tensor | None = None) -> torch.Tensor:
    """The images of ``source`` (those where ``keep``, bool (len(source),), is set), in order,
    as the classifier's float (n, 1, 28, 28) input; read ``READ_BATCH`` at a time."""
    keep = torch.ones(len(source), dtype=torch.bool) if keep is None else keep
    return torch.cat([preprocess(source.images(start, start + len(mask))[mask])
                      for start in range(0, len(source), READ_BATCH)
                      for mask in [keep[start:start + READ_BATCH]] if mask.any()])


def labelled_images(source, hint: str, keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's input and the labels of ``source`` (where ``keep``); ``hint`` says what to give."""
    labels = None if source is None else source.class_labels()
    if labels is None:
        raise InputError(f"cas needs {hint}" + ("" if source is None else f"; {source.descriptor!r} has no labels"))
    return classifier_inputs(source, keep), labels if keep is None else labels[keep]


def random_rows(total: int, n: int, seed: int) -> torch.Tensor:
    """A seeded random choice of ``n`` (at most ``total``) of ``total`` rows, as a bool mask."""
    keep = torch.zeros(total, dtype=torch.bool)
    keep[torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]] = True
    return keep


def train_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, epochs: int, train_batch: int,
                     lr: float, seed: int, device: str | torch.device = "cpu") -> LeNet:
    """A LeNet trained on ``x`` (N, 1, 28, 28) in [-1, 1] and ``y`` (N,) by the fixed recipe:
    Adam, cosine decay over all steps, seeded initialisation, dropout and batch order."""
    device = torch.device(device)
    order = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(x) / train_batch)
    total = steps_per_epoch * epochs
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # inside the fork: the caller's global generators are left as they were
        net = LeNet(num_classes).to(device).train()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=order)
            for k in range(steps_per_epoch):
                idx = perm[k * train_batch:(k + 1) * train_batch]
                loss = F.cross_entropy(net(x[idx].to(device)), y[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: LeNet, x: torch.Tensor, y: torch.Tensor, device: str | torch.device = "cpu") -> float:
    """Share of ``x`` that ``net`` assigns to ``y``."""
    correct = sum((net(x[i:i + READ_BATCH].to(device)).argmax(1).cpu() == y[i:i + READ_BATCH]).sum().item()
                  for i in range(0, len(x), READ_BATCH))
    return correct / len(x)


def compute_cas(fake, real, *, generator: torch.Generator, labels: torch.Tensor | None, inputs: Any,
                device: str = "cpu", train: str = "auto", epochs: int = 10, train_batch: int = 128,
                lr: float = 2e-3, classifier_seed: int = 0) -> MetricResult:
    if labels is None:
        raise InputError("cas needs labelled inputs: a class-conditional generator, or an .npz with labels")
    test_x, test_y = labelled_images(inputs.real, "the real test split as reference, e.g. -r mnist:test")
    split = training_split(train, inputs, "cas")
    rows = random_rows(len(split), len(inputs.fake), classifier_seed)
    real_x, real_y = labelled_images(split, "a labelled training split: -o cas.train=DATASET:train", rows)
    num_classes = int(max(test_y.max(), split.class_labels().max())) + 1
    if not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise InputError(f"cas: the input's labels span {int(labels.min())}..{int(labels.max())} but the real "
                         f"data has {num_classes} classes")
    recipe = dict(epochs=epochs, train_batch=train_batch, lr=lr, seed=classifier_seed, device=device)
    scores = {key: accuracy(train_classifier(x, y, num_classes, **recipe), test_x, test_y, device)
              for key, (x, y) in {"cas": (classifier_inputs(inputs.fake), labels),
                                  "cas_real": (real_x, real_y)}.items()}
    provenance = {**split_provenance(split), "num_real": int(rows.sum()), "num_classes": num_classes}
    return MetricResult(scores, extractor=CLASSIFIER, options=provenance)


register_metric(Metric(
    name="cas",
    compute=compute_cas,
    features=(),  # trains on the images themselves
    needs_reference=True,  # the labelled real test split
    needs_labels=True,
    higher_is_better={"cas": True, "cas_real": True},
    version=1,
    defaults=keyword_defaults(compute_cas),
    min_samples=lambda options: 1,
    description="Ravuri & Vinyals 2019: test accuracy of a LeNet trained on the labelled input (cas) "
                "and on as many real training images (cas_real)",
))
