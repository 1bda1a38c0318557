"""Fréchet distance in any feature space.

The Fréchet distance between Gaussians fitted to two feature sets (Dowson & Landau 1982;
FID is this distance on Inception-v3 pool features, Heusel et al. 2017)::

    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^(1/2) )

on the ``pool`` features of the run's extractor (option ``feature``: any other feature the
extractor provides, e.g. ``-o fd.feature=logits``; the protocol records it): ``fd`` on
``inception-v3-compat`` is FID;
FD_DINOv2 (Stein et al., "Exposing flaws of generative model evaluation metrics", NeurIPS
2023) is ``fd --extractor dinov2-vit-l14``; the row's protocol records the extractor, so
distances in different feature spaces are never ranked together. The maths, its float64
statistics and its bootstrap fast path are :mod:`ganbench.metrics.fid`'s (one
implementation of the distance).
"""
from __future__ import annotations

import numpy as np
import torch

from ganbench.metrics import fid
from ganbench.metrics.base import Metric, keyword_defaults, register_metric
from ganbench.metrics.stats import get_features, same_dim


def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
            generator: torch.Generator | None = None, feature: str = "pool") -> dict[str, float]:
    """FD between the ``feature`` features (N, D) of the input and of the reference."""
    x = get_features(fake, feature, "fd", "input", 2)
    y = get_features(real, feature, "fd", "reference", 2)
    same_dim("fd", x, y)
    return {"fd": fid.fid_from_features(x, y)}


def replicates(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor], fake_indices: torch.Tensor,
               real_indices: torch.Tensor, generator: torch.Generator | None = None, *,
               feature: str = "pool") -> dict[str, np.ndarray]:
    """FD of each bootstrap replicate: FID's fast path (:func:`ganbench.metrics.fid.replicates`)
    on the ``feature`` features."""
    x = {"pool": get_features(fake, feature, "fd", "input", 2)}
    y = {"pool": get_features(real, feature, "fd", "reference", 2)}
    return {"fd": fid.replicates(x, y, fake_indices, real_indices, generator)["fid"]}


FD = register_metric(Metric(
    name="fd",
    compute=compute,
    features=("pool",),
    higher_is_better={"fd": False},
    needs_reference=True,
    version=1,
    defaults=keyword_defaults(compute),
    feature_option="feature",
    min_samples=lambda options: 2,
    replicates=replicates,
    description="Fréchet distance on the run's extractor's pool features, or -o fd.feature=KEY (FID on "
                "inception-v3-compat; FD_DINOv2, Stein et al. 2023, on dinov2-vit-l14)",
))
