"""Inception Score.

Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016
(https://arxiv.org/abs/1606.03498)::

    IS = exp( E_x KL( p(y|x) || p(y) ) ),  mean and std over ``splits`` disjoint splits

Reference code: torch-fidelity's ``metric_isc.py`` (Apache-2.0), whose convention this
follows exactly: optional shuffling of the samples, split ``i`` = rows
``[i*N//splits, (i+1)*N//splits)``, softmax in float64, population std (ddof=0).
With ``rng="torch-fidelity"`` the shuffle is torch-fidelity's
``np.random.RandomState(seed).permutation(N)``, so the same logits give its numbers.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, register_metric
from ganbench.metrics.stats import at_least, get_features, random_permutation, rng_option

__all__ = ["inception_score"]


def inception_score(logits: torch.Tensor | np.ndarray, splits: int = 10, *, shuffle: bool = True,
                    rng: str = "generator", seed: int = 2020,
                    generator: torch.Generator | None = None) -> tuple[float, float]:
    """Inception Score ``(mean, std)`` of class ``logits`` (N, C) over ``splits`` splits.

    Args:
        logits: unnormalised class scores, N >= splits rows (softmax taken here).
        splits: number of contiguous splits (after the optional shuffle).
        shuffle: permute the rows first (torch-fidelity's ``samples_shuffle``).
        rng: ``"generator"`` (permutation from ``generator``) or ``"torch-fidelity"``
            (``np.random.RandomState(seed).permutation(N)``).
    """
    x = torch.as_tensor(logits)
    if x.ndim != 2:
        raise InputError(f"isc: logits must be 2-D (N, C), got shape {tuple(x.shape)}")
    n = x.shape[0]
    if splits < 1 or n < splits:
        raise InputError(f"isc needs at least splits={splits} samples (and splits >= 1), got {n}")
    if shuffle:
        x = x[random_permutation(n, rng=rng, seed=seed, generator=generator).to(x.device)]
    x = x.double()
    p = x.softmax(dim=1)
    log_p = x.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        rows = slice(i * n // splits, (i + 1) * n // splits)
        p_i, log_p_i = p[rows], log_p[rows]
        log_q = p_i.mean(dim=0, keepdim=True).log()
        kl = (p_i * (log_p_i - log_q)).sum(dim=1).mean()
        scores.append(kl.exp().item())
    return float(np.mean(scores)), float(np.std(scores))


# torch-fidelity's defaults: isc_splits=10, samples_shuffle=True, rng_seed=2020.
DEFAULTS: dict[str, Any] = {"splits": 10, "shuffle": True, "rng": "generator", "seed": 2020}


def _splits(options: dict[str, Any]) -> int:
    return at_least("isc", "splits", options["splits"], 1)


def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None = None, *,
            generator: torch.Generator | None = None, splits: int = DEFAULTS["splits"],
            shuffle: bool = DEFAULTS["shuffle"], rng: str = DEFAULTS["rng"],
            seed: int = DEFAULTS["seed"]) -> dict[str, float]:
    at_least("isc", "splits", splits, 1)
    at_least("isc", "seed", seed, 0)
    rng_option("isc", rng)
    logits = get_features(fake, "logits", "isc", "input", splits)
    mean, std = inception_score(logits, splits, shuffle=shuffle, rng=rng, seed=seed, generator=generator)
    return {"isc": mean, "isc_std": std}


ISC = register_metric(Metric(
    name="isc",
    compute=compute,
    features=("logits",),
    higher_is_better={"isc": True},
    needs_reference=False,
    version=1,
    defaults=DEFAULTS,
    min_samples=_splits,
    description="Inception Score (Salimans et al. 2016): mean and std over splits of the input's logits",
))
