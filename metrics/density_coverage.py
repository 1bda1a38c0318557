"""Density and coverage.

Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative Models", ICML 2020
(https://arxiv.org/abs/2002.09797). Every real sample gets a ball whose radius is the
distance to its k-th nearest other real sample (k = 5)::

    density  = 1 / (k M) * sum_j sum_i [ |Y_j - X_i| < r_i ]     (M generated Y_j, N real X_i)
    coverage = 1 / N     * sum_i [ min_j |Y_j - X_i| < r_i ]

Reference code: clovaai/generative-evaluation-prdc (MIT), whose conventions this follows:
radius = ``np.partition(d, k)[:, k]`` of the distances including the point itself, and a
strict ``<``. Squared distances in float64, computed in row blocks (bounded memory).
Density is unbounded above (about 1 when the two sets are alike); coverage is in [0, 1].
"""
from __future__ import annotations

from typing import Any

import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, register_metric
from ganbench.metrics.stats import (MAX_CHUNK_ELEMENTS, at_least, get_features, kth_neighbour_sq_radii,
                                    map_row_chunks, same_dim)

__all__ = ["density_coverage"]


def density_coverage(fake: torch.Tensor, real: torch.Tensor, k: int = 5, *,
                     max_elements: int = MAX_CHUNK_ELEMENTS) -> tuple[float, float]:
    """``(density, coverage)`` of generated features ``fake`` (M, D) against ``real`` (N, D).

    Needs N >= k + 1 and M >= 1. Computed on the features' device in float64.
    """
    fake, real = torch.as_tensor(fake), torch.as_tensor(real)
    if k < 1 or len(real) < k + 1 or len(fake) < 1:
        raise InputError(f"density/coverage with k={k} needs k >= 1, at least {k + 1} reference samples "
                         f"and 1 input sample (input: {len(fake)}, reference: {len(real)})")
    y = fake.to(real.device).double()
    x = real.double()
    sq_radii = kth_neighbour_sq_radii(x, k, max_elements)

    def block(rows: slice, d: torch.Tensor) -> tuple[int, int]:
        inside = d < sq_radii[rows, None]  # real rows x fake columns
        return int(inside.sum().item()), int(inside.any(dim=1).sum().item())

    counts = map_row_chunks(x, y, block, max_elements)
    density = sum(c for c, _ in counts) / (k * len(y))
    coverage = sum(c for _, c in counts) / len(x)
    return density, coverage


# prdc's default nearest_k = 5.
DEFAULTS: dict[str, Any] = {"k": 5}


def _k(options: dict[str, Any]) -> int:
    return at_least("dc", "k", options["k"], 1)


def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
            generator: torch.Generator | None = None, k: int = DEFAULTS["k"]) -> dict[str, float]:
    at_least("dc", "k", k, 1)
    x = get_features(fake, "pool", "dc", "input", 1)
    y = get_features(real, "pool", "dc", "reference", k + 1)
    same_dim("dc", x, y)
    density, coverage = density_coverage(x, y, k)
    return {"density": density, "coverage": coverage}


DC = register_metric(Metric(
    name="dc",
    compute=compute,
    features=("pool",),
    higher_is_better={"density": True, "coverage": True},
    needs_reference=True,
    version=1,
    defaults=DEFAULTS,
    min_samples=lambda options: _k(options) + 1,
    description="Density and coverage (Naeem et al. 2020) on the run's extractor's pool features",
))
