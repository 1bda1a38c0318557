"""The Vendi Score: the effective number of distinct samples.

Friedman & Dieng, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning",
TMLR 2023 (https://arxiv.org/abs/2210.02410)::

    VS = exp( -sum_i lambda_i log lambda_i ),  lambda_i the eigenvalues of K / n

with ``K_ij = k(x_i, x_j)`` a similarity with ``k(x, x) = 1`` (0 log 0 = 0). Here ``k`` is
the cosine similarity of feature vectors: rows scaled to unit length, ``K = X X^T``. Then
``K / n`` has trace 1, VS lies in [1, min(n, D)], n copies of one sample give 1 and k
mutually orthogonal, equally large clusters give k. No reference set is involved.

``X X^T / n`` (n x n) and ``X^T X / n`` (D x D) have the same nonzero eigenvalues, so the
smaller of the two is decomposed (float64), as the authors' ``vendi_score.vendi.score_dual``
(vertaix/Vendi-Score) and dgm-eval's ``compute_vendi_score`` (layer6ai-labs, linear kernel on
normalised features) do. Reference code read with ganbench's code search.

Features. The authors' image experiments embed with torchvision's ImageNet Inception-v3
pool features (``vendi_score/image_utils.py``: ``inception_v3(weights=DEFAULT)``,
``fc = Identity``), which are close to but not ganbench's FID Inception
(``inception-v3-compat``); dgm-eval (Stein et al. 2023) reports it on DINOv2 ViT-L/14
features. ganbench computes it on any extractor's ``pool`` features and records which in the
row's protocol: numbers on different extractors are different quantities.
"""
from __future__ import annotations

import numpy as np
import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, register_metric
from ganbench.metrics.stats import get_features

__all__ = ["vendi_score", "similarity_eigenvalues"]


def similarity_eigenvalues(features: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Eigenvalues of ``K / n``, ``K`` the cosine similarity of ``features`` (n, D): min(n, D) of
    them (the other n - min(n, D) are 0), float64, ascending, clamped at 0 (round-off); sum 1."""
    x = torch.as_tensor(features).to(torch.float64)
    norms = x.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise InputError("vendi: a feature vector is all zeros, so its cosine similarity is undefined")
    x = x / norms
    n, d = x.shape
    gram = x.T @ x if d <= n else x @ x.T
    return torch.linalg.eigvalsh(gram / n).clamp_min(0.0)


def vendi_score(features: torch.Tensor | np.ndarray) -> float:
    """The Vendi Score of ``features`` (n, D) under the cosine similarity (module docstring)."""
    eigenvalues = similarity_eigenvalues(features)
    positive = eigenvalues[eigenvalues > 0]
    return float(torch.exp(-(positive * positive.log()).sum()))


def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
            generator: torch.Generator | None = None) -> dict[str, float]:
    return {"vendi": vendi_score(get_features(fake, "pool", "vendi", "input"))}


VENDI = register_metric(Metric(
    name="vendi",
    compute=compute,
    features=("pool",),
    higher_is_better={"vendi": True},
    needs_reference=False,
    version=1,
    defaults={},
    min_samples=lambda options: 1,
    description="Vendi Score (Friedman & Dieng 2023): exp of the entropy of the eigenvalues of K/n, K the cosine "
                "similarity of the extractor's pool features; the authors embed images with torchvision's "
                "Inception-v3 pool, dgm-eval with dinov2-vit-l14",
))
