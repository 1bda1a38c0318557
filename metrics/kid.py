"""Kernel Inception Distance.

Bińkowski et al., "Demystifying MMD GANs", ICLR 2018 (https://arxiv.org/abs/1801.01401):
the unbiased MMD^2 estimate with the cubic polynomial kernel
``k(x, y) = (gamma x.y + coef0)^degree`` (gamma = 1/D by default), averaged over
``subsets`` random pairs of subsets of ``subset_size`` rows each (drawn without
replacement); the std is the population std (ddof=0) over subsets.

Reference code: mbinkowski/MMD-GAN ``compute_scores.py`` (BSD-3) via torch-fidelity's
``metric_kid.py`` (Apache-2.0). Subsets are drawn in torch-fidelity's order (input
subset, then reference subset, per round). With ``rng="torch-fidelity"`` the indices are
``np.random.RandomState(seed).choice(n, subset_size, replace=False)``, as torch-fidelity
draws them, so given the same features the numbers match torch-fidelity's (which
computes the kernels in float32; here float64, so they agree to ~1e-6 relative).
With ``rng="generator"`` (the default) the subsets come from the runner's generator.
Kernel matrices for several subsets are computed at once (batched matmuls).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, register_metric
from ganbench.metrics.stats import (MAX_CHUNK_ELEMENTS, at_least, finite, get_features, random_permutation,
                                    rng_option, same_dim)

__all__ = ["kid_subset_indices", "mmd2_polynomial", "kernel_inception_distance"]


def kid_subset_indices(n_fake: int, n_real: int, subsets: int, subset_size: int, *, rng: str = "generator",
                       seed: int = 2020, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices ``(subsets, subset_size)`` int64 for the input and the reference sets.

    Drawn round by round (input subset then reference subset), without replacement
    within a subset; ``rng="torch-fidelity"`` reproduces torch-fidelity's draws exactly.
    """
    if subset_size > n_fake or subset_size > n_real:
        raise InputError(f"kid.subset_size={subset_size} is larger than the number of samples "
                         f"(input: {n_fake}, reference: {n_real}); lower kid.subset_size")
    state = np.random.RandomState(seed) if rng == "torch-fidelity" else None
    idx_fake, idx_real = [], []
    for _ in range(subsets):
        if state is not None:  # RandomState.choice(n, m, replace=False) == permutation(n)[:m]
            idx_fake.append(torch.from_numpy(state.choice(n_fake, subset_size, replace=False).astype(np.int64)))
            idx_real.append(torch.from_numpy(state.choice(n_real, subset_size, replace=False).astype(np.int64)))
        else:
            idx_fake.append(random_permutation(n_fake, rng=rng, seed=seed, generator=generator)[:subset_size])
            idx_real.append(random_permutation(n_real, rng=rng, seed=seed, generator=generator)[:subset_size])
    return torch.stack(idx_fake), torch.stack(idx_real)


def mmd2_polynomial(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None,
                    coef0: float = 1.0) -> torch.Tensor:
    """Unbiased MMD^2 for batches of subset pairs ``x``, ``y`` (S, m, D), m >= 2 -> (S,), float64.

    ``(sum_{i!=j} k(x_i,x_j) + sum_{i!=j} k(y_i,y_j)) / (m(m-1)) - 2 sum_{i,j} k(x_i,y_j) / m^2``.
    """
    x, y = x.double(), y.double()
    m = x.shape[1]
    gamma = 1.0 / x.shape[2] if gamma is None else gamma

    def kernel_sum(a: torch.Tensor, b: torch.Tensor, off_diagonal: bool) -> torch.Tensor:
        k = (torch.bmm(a, b.transpose(1, 2)) * gamma + coef0) ** degree
        total = k.sum(dim=(1, 2))
        return total - k.diagonal(dim1=1, dim2=2).sum(dim=1) if off_diagonal else total

    return ((kernel_sum(x, x, True) + kernel_sum(y, y, True)) / (m * (m - 1))
            - 2.0 * kernel_sum(x, y, False) / (m * m))


def kernel_inception_distance(fake: torch.Tensor, real: torch.Tensor, subsets: int = 100,
                              subset_size: int = 1000, *, degree: int = 3, gamma: float | None = None,
                              coef0: float = 1.0, rng: str = "generator", seed: int = 2020,
                              generator: torch.Generator | None = None,
                              max_elements: int = MAX_CHUNK_ELEMENTS) -> tuple[float, float, np.ndarray]:
    """KID ``(mean, std, per-subset MMD^2 (subsets,))`` between features (N1, D) and (N2, D).

    Computed on the features' device in float64, ``max_elements`` bounding each batch.
    """
    fake, real = torch.as_tensor(fake), torch.as_tensor(real)
    if subset_size < 2:
        raise InputError(f"kid.subset_size must be >= 2, got {subset_size}")
    idx_fake, idx_real = kid_subset_indices(len(fake), len(real), subsets, subset_size, rng=rng, seed=seed,
                                            generator=generator)
    d = fake.shape[1]
    per_batch = max(1, max_elements // (subset_size * (2 * d + subset_size)))
    mmds = []
    for start in range(0, subsets, per_batch):
        rows = slice(start, start + per_batch)
        x = fake[idx_fake[rows].to(fake.device)].double()
        y = real[idx_real[rows].to(real.device)].to(fake.device).double()
        mmds.append(mmd2_polynomial(x, y, degree, gamma, coef0).cpu())
    values = torch.cat(mmds).numpy()
    return float(np.mean(values)), float(np.std(values)), values


# torch-fidelity's defaults: kid_subsets=100, kid_subset_size=1000, poly kernel of degree 3,
# gamma None (= 1 / D), coef0 1, rng_seed 2020.
DEFAULTS: dict[str, Any] = {"subsets": 100, "subset_size": 1000, "degree": 3, "gamma": None, "coef0": 1.0,
                            "rng": "generator", "seed": 2020}


def _subset_size(options: dict[str, Any]) -> int:
    return at_least("kid", "subset_size", options["subset_size"], 2)


def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
            generator: torch.Generator | None = None, subsets: int = DEFAULTS["subsets"],
            subset_size: int = DEFAULTS["subset_size"], degree: int = DEFAULTS["degree"],
            gamma: float | None = DEFAULTS["gamma"], coef0: float = DEFAULTS["coef0"], rng: str = DEFAULTS["rng"],
            seed: int = DEFAULTS["seed"]) -> dict[str, float]:
    at_least("kid", "subsets", subsets, 1)
    at_least("kid", "subset_size", subset_size, 2)
    at_least("kid", "degree", degree, 1)
    at_least("kid", "seed", seed, 0)
    if gamma is not None:
        finite("kid", "gamma", gamma, positive=True)
    finite("kid", "coef0", coef0)
    rng_option("kid", rng)
    x = get_features(fake, "pool", "kid", "input")
    y = get_features(real, "pool", "kid", "reference")
    same_dim("kid", x, y)
    mean, std, _ = kernel_inception_distance(x, y, subsets, subset_size, degree=degree, gamma=gamma,
                                             coef0=coef0, rng=rng, seed=seed, generator=generator)
    return {"kid": mean, "kid_std": std}


KID = register_metric(Metric(
    name="kid",
    compute=compute,
    features=("pool",),
    higher_is_better={"kid": False},
    needs_reference=True,
    version=1,
    defaults=DEFAULTS,
    min_samples=_subset_size,
    description="Kernel Inception Distance (Bińkowski et al. 2018): polynomial-kernel MMD^2 over random subsets",
))
