"""sFID: Fréchet distance on Inception-v3's spatial features.

Nash et al., "Generating Images with Sparse Representations", ICML 2021
(https://arxiv.org/abs/2103.03841), as the ADM evaluator computes it (Dhariwal & Nichol
2021, openai/guided-diffusion ``evaluations/evaluator.py``): the Fréchet distance
between Gaussians fitted to the first 7 channels of the FID Inception graph's
``mixed_6/conv:0`` tensor, flattened (17 x 17 x 7 = 2023 dimensions).

``mixed_6`` is the graph's seventh inception block (``mixed``, ``mixed_1``, ... are
Mixed_5b, 5c, 5d, 6a, 6b, 6c, 6d), and its ``conv`` is the 1x1 branch: torch-fidelity's
converted weights name it ``Mixed_6d.branch1x1``. The ``conv`` scope's own output op is
the unit's ReLU (its convolution and batch norm are ``conv/Conv2D`` and ``conv/batchnorm``).
:mod:`ganbench.metrics.inception` provides it as the ``"spatial"`` feature, flattened in
TensorFlow's (H, W, C) order (the distance does not depend on the order).

The Fréchet distance itself is :func:`ganbench.metrics.fid.fid_from_features`.
"""
from __future__ import annotations

import torch

from ganbench.metrics.base import Metric, register_metric
from ganbench.metrics.fid import fid_from_features
from ganbench.metrics.stats import get_features, same_dim

FEATURE = "spatial"


def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
            generator: torch.Generator | None = None) -> dict[str, float]:
    """sFID of the input's ``"spatial"`` features (N1, 2023) against the reference's (N2, 2023)."""
    x = get_features(fake, FEATURE, "sfid", "input", 2)
    y = get_features(real, FEATURE, "sfid", "reference", 2)
    same_dim("sfid", x, y)
    return {"sfid": fid_from_features(x, y)}


SFID = register_metric(Metric(
    name="sfid",
    compute=compute,
    features=(FEATURE,),
    higher_is_better={"sfid": False},
    needs_reference=True,
    extractor="inception-v3-compat",
    version=1,
    min_samples=lambda options: 2,
    description="sFID (Nash et al. 2021; the ADM evaluator): Fréchet distance on Inception mixed_6/conv[..., :7]",
))
