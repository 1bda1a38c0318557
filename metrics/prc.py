"""Improved precision and recall.

Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative
Models", NeurIPS 2019 (https://arxiv.org/abs/1904.06991). Each sample of a set gets a
ball whose radius is the distance to its k-th nearest neighbour in the same set (the
point itself excluded). Precision: the fraction of generated samples inside at least
one real ball; recall: the fraction of real samples inside at least one generated ball;
F-score ``2 p r / max(1e-5, p + r)``.

Reference code: torch-fidelity's ``metric_prc.py`` (Apache-2.0), whose conventions this
follows: radius = ``kthvalue(k + 1)`` of the distances including the point itself,
membership by ``<=``. Distances here are squared Euclidean in float64 (torch-fidelity:
float32 ``cdist``), computed in row blocks, so memory stays bounded for any N and the
result is exact. Two metrics are registered: ``"pr"`` on the run's extractor's pool
features and ``"pr-vgg16"``, torch-fidelity's configuration (VGG16 ``fc2_relu``).
"""
from __future__ import annotations

from typing import Any

import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, register_metric
from ganbench.metrics.stats import (MAX_CHUNK_ELEMENTS, at_least, get_features, kth_neighbour_sq_radii,
                                    map_row_chunks, same_dim)

__all__ = ["precision_recall", "f_score"]


def _fraction_inside(points: torch.Tensor, centres: torch.Tensor, sq_radii: torch.Tensor,
                     max_elements: int) -> float:
    """Fraction of ``points`` (N, D) within (``<=``) any ball (``centres`` (M, D), ``sq_radii`` (M,))."""
    hits = map_row_chunks(points, centres, lambda rows, d: (d <= sq_radii[None, :]).any(dim=1).sum().item(),
                          max_elements)
    return sum(hits) / points.shape[0]


def precision_recall(fake: torch.Tensor, real: torch.Tensor, k: int = 3, *,
                     max_elements: int = MAX_CHUNK_ELEMENTS) -> tuple[float, float]:
    """``(precision, recall)`` of generated features ``fake`` (N1, D) against ``real`` (N2, D).

    Needs N1, N2 >= k + 1. Computed on the features' device in float64.
    """
    fake, real = torch.as_tensor(fake), torch.as_tensor(real)
    if k < 1 or len(fake) < k + 1 or len(real) < k + 1:
        raise InputError(f"precision/recall with k={k} needs k >= 1 and at least {k + 1} samples per set "
                         f"(input: {len(fake)}, reference: {len(real)})")
    x = fake.double()
    y = real.to(fake.device).double()
    precision = _fraction_inside(x, y, kth_neighbour_sq_radii(y, k, max_elements), max_elements)
    recall = _fraction_inside(y, x, kth_neighbour_sq_radii(x, k, max_elements), max_elements)
    return precision, recall


def f_score(precision: float, recall: float) -> float:
    """torch-fidelity's F-score: ``2 p r / max(1e-5, p + r)``."""
    return 2 * precision * recall / max(1e-5, precision + recall)


# torch-fidelity's default: prc_neighborhood=3.
DEFAULTS: dict[str, Any] = {"k": 3}


def _k(options: dict[str, Any]) -> int:
    return at_least("pr", "k", options["k"], 1)


def _make_compute(name: str, feature: str, suffix: str):
    def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
                generator: torch.Generator | None = None, k: int = DEFAULTS["k"]) -> dict[str, float]:
        at_least(name, "k", k, 1)
        x = get_features(fake, feature, name, "input", k + 1)
        y = get_features(real, feature, name, "reference", k + 1)
        same_dim(name, x, y)
        p, r = precision_recall(x, y, k)
        return {f"precision{suffix}": p, f"recall{suffix}": r, f"f_score{suffix}": f_score(p, r)}

    compute.__name__ = f"compute_{name.replace('-', '_')}"
    return compute


PR = register_metric(Metric(
    name="pr",
    compute=_make_compute("pr", "pool", ""),
    features=("pool",),
    higher_is_better={"precision": True, "recall": True, "f_score": True},
    needs_reference=True,
    version=1,
    defaults=dict(DEFAULTS),
    min_samples=lambda options: _k(options) + 1,
    description="Improved precision/recall (Kynkäänniemi et al. 2019) on the run's extractor's pool features",
))

PR_VGG16 = register_metric(Metric(
    name="pr-vgg16",
    compute=_make_compute("pr-vgg16", "fc2_relu", "_vgg16"),
    features=("fc2_relu",),
    higher_is_better={"precision_vgg16": True, "recall_vgg16": True, "f_score_vgg16": True},
    needs_reference=True,
    extractor="vgg16",
    version=1,
    defaults=dict(DEFAULTS),
    min_samples=lambda options: _k(options) + 1,
    description="Improved precision/recall as torch-fidelity computes it: VGG16 fc2_relu features",
))
