"""Intra-class FID: the FID of each class, averaged over the classes.

Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018
(https://arxiv.org/abs/1802.05637), who report it on ImageNet: for a class-conditional
generator and a labelled reference, FID between the samples generated for class ``c``
and the reference images of class ``c``, then the mean over classes::

    intra-FID = (1 / C) sum_c FID(fake[labels == c], real[reference_labels == c])

on the run's extractor's ``pool`` features (FID's maths, :mod:`ganbench.metrics.fid`).
The classes are every class that occurs in either set; each needs at least 2 samples on
both sides (a covariance), so a class the generator was never asked for, or one missing
from the reference, is an error rather than a silently smaller average. With few samples
per class each FID is strongly biased upwards (Chong & Forsyth 2020): compare intra-FIDs
only at the same number of samples (the row's protocol records it).

The generated samples' classes are the labels the generator was conditioned on (the
runner's ``labels``, as for ``class-accuracy``); the reference's are its dataset labels
(``reference_labels``, e.g. of ``mnist:test``).
"""
from __future__ import annotations

import numpy as np
import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, register_metric
from ganbench.metrics.fid import fid_from_features
from ganbench.metrics.stats import get_features, same_dim

__all__ = ["per_class_fid", "intra_fid"]

MIN_PER_CLASS = 2


def _check_labels(labels: torch.Tensor, features: torch.Tensor, side: str) -> torch.Tensor:
    labels = torch.as_tensor(labels).reshape(-1).cpu()
    if len(labels) != len(features):
        raise InputError(f"intra-fid: {len(labels)} {side} labels for {len(features)} {side} samples")
    return labels.long()


def per_class_fid(fake: torch.Tensor, labels: torch.Tensor, real: torch.Tensor,
                  reference_labels: torch.Tensor) -> dict[int, float]:
    """{class: FID of its generated vs its reference features}, features (N, D) and (M, D),
    labels (N,) and (M,) int; every class of either set, each with >= 2 samples per side."""
    labels = _check_labels(labels, fake, "input")
    reference_labels = _check_labels(reference_labels, real, "reference")
    fids = {}
    for c in torch.unique(torch.cat([labels, reference_labels])).tolist():
        mine, theirs = labels == c, reference_labels == c
        counts = int(mine.sum()), int(theirs.sum())
        if min(counts) < MIN_PER_CLASS:
            raise InputError(f"intra-fid: class {c} has {counts[0]} generated and {counts[1]} reference samples; "
                             f"each class needs at least {MIN_PER_CLASS} of each (draw more samples)")
        fids[c] = fid_from_features(fake[mine.to(fake.device)], real[theirs.to(real.device)])
    return fids


def intra_fid(fake: torch.Tensor, labels: torch.Tensor, real: torch.Tensor, reference_labels: torch.Tensor) -> float:
    """The mean over classes of :func:`per_class_fid`."""
    return float(np.mean(list(per_class_fid(fake, labels, real, reference_labels).values())))


def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
            generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
            reference_labels: torch.Tensor | None = None) -> dict[str, float]:
    if labels is None:
        raise InputError("intra-fid needs labelled inputs: a class-conditional generator, or a labelled dataset "
                         "split such as mnist:test")
    if reference_labels is None:
        raise InputError("intra-fid needs the reference's labels (reference_labels), which this evaluation did not "
                         "give: the reference must be a labelled dataset split such as mnist:test")
    x = get_features(fake, "pool", "intra-fid", "input", 2)
    y = get_features(real, "pool", "intra-fid", "reference", 2)
    same_dim("intra-fid", x, y)
    return {"intra_fid": intra_fid(x, labels, y, reference_labels)}


INTRA_FID = register_metric(Metric(
    name="intra-fid",
    compute=compute,
    features=("pool",),
    higher_is_better={"intra_fid": False},
    needs_reference=True,
    needs_labels=True,
    version=1,
    defaults={},
    min_samples=lambda options: MIN_PER_CLASS,
    description="intra-class FID (Miyato & Koyama 2018): FID of each class's samples vs the reference images of "
                "that class, averaged over classes; a class-conditional generator and a labelled reference",
))
