"""Class accuracy: how recognisably a class-conditional generator draws the class it was
asked for, judged by the feature extractor's classifier (e.g. ``lenet-mnist``), as many
conditional-GAN papers report on MNIST. Computed from the logits of the one feature pass;
the labels are the ones the generator was conditioned on (or a labelled dataset's own
labels, which measures the classifier itself: ``-i mnist:test --extractor lenet-mnist``).
"""
from __future__ import annotations

import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, register_metric


def class_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows of ``logits`` (N, K) whose argmax is ``labels`` (N,)."""
    if logits.dim() != 2 or len(logits) != len(labels):
        raise InputError(f"class-accuracy: {tuple(logits.shape)} logits for {len(labels)} labels")
    if len(labels) and int(labels.max()) >= logits.shape[1]:
        raise InputError(f"class-accuracy: label {int(labels.max())} but the classifier has only "
                         f"{logits.shape[1]} classes")
    return (logits.argmax(1).cpu() == labels.cpu()).double().mean().item()


def compute(fake: dict[str, torch.Tensor], real, *, generator: torch.Generator,
            labels: torch.Tensor | None = None) -> dict[str, float]:
    if labels is None:
        raise InputError("class-accuracy needs labelled inputs: a class-conditional generator, or a labelled "
                         "dataset split such as mnist:test")
    return {"class_accuracy": class_accuracy(fake["logits"], labels)}


register_metric(Metric(
    name="class-accuracy",
    compute=compute,
    features=("logits",),
    needs_reference=False,
    needs_labels=True,
    higher_is_better={"class_accuracy": True},
    version=1,
    description="share of samples the extractor's classifier assigns to the class they were conditioned on",
))
