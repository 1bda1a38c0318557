"""Confidence intervals for feature-based metrics, from the features already in memory.

An evaluation's number is one draw: other samples of the generator and of the reference
would give another. The interval says how far: each of ``B`` replicates recomputes the
metric on a random half of the generated features and a random half of the reference
features (drawn without replacement, seeded), and the interval is the estimate plus the
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the replicates' deviations from
their mean::

    ci = estimate + quantiles(r_b - mean(r), [(1 - level) / 2, (1 + level) / 2])

Why half-samples and not the textbook resampling with replacement:

* A statistic of ``n / 2`` rows drawn without replacement from ``n`` has, to first order,
  the variance of the statistic of ``n`` independent rows (the finite-population
  correction ``1 - m / n`` is ``1 / 2`` at ``m = n / 2``, so ``sigma^2 / m * (1 - m / n)
  = sigma^2 / n``): "half-sampling" (McCarthy 1969; Efron & Tibshirani 1993, Sec. 6.9).
* Resampling with replacement repeats rows, and a repeated row is its own nearest
  neighbour: k-NN metrics (precision/recall, density/coverage) collapse. Half-samples
  have no duplicates, so one method serves every metric.
* FID is biased in N (Chong & Forsyth 2020): replicates at ``n / 2`` are biased more
  than the estimate at ``n``. Centring the replicates on their mean removes that shift,
  so the interval is about the estimate's own sampling spread, around the estimate: it
  covers the expected value of the metric at this N (which is what a row reports and
  what two models evaluated at the same N are compared on), not the N = infinity value
  (``fid-inf`` estimates that).

The coverage was measured on Gaussian features whose expected FID at N is known (see
``tests/test_bootstrap.py``). Replicates draw their own randomness (KID subsets, IS
shuffles) from the same seeded stream. A metric may give a fast path computing its
replicates itself (FID: float32 covariance products of centred features, then the
float64 trace term of :mod:`ganbench.metrics.fid`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ganbench.errors import InputError

DEFAULT_REPLICATES = 100  # see bench/bootstrap_speed.py for the cost
DEFAULT_LEVEL = 0.95
MIN_REPLICATES = 10
METHOD = "centred half-sample bootstrap"


@dataclass(frozen=True)
class Interval:
    """A metric's confidence interval per output key."""

    low: dict[str, float]
    high: dict[str, float]
    replicates: int
    level: float

    def describe(self) -> dict[str, Any]:
        """What the protocol records: the interval's method, B and level."""
        return {"method": METHOD, "replicates": self.replicates, "level": self.level}


def check_settings(replicates: int, level: float) -> None:
    """One-line errors for a bootstrap nobody can use."""
    if not isinstance(replicates, int) or replicates < MIN_REPLICATES:
        raise InputError(f"--bootstrap needs at least {MIN_REPLICATES} replicates (got {replicates}); "
                         f"use 0 for no interval")
    if not 0.0 < level < 1.0:
        raise InputError(f"--ci must lie strictly between 0 and 1 (e.g. 0.95), got {level}")


def half_sample_indices(n: int, replicates: int, generator: torch.Generator) -> torch.Tensor:
    """(replicates, n // 2) row indices: each row a random half of ``range(n)``, no repeats."""
    if n < 4:
        raise InputError(f"a bootstrap interval needs at least 4 samples per side, got {n}")
    return torch.rand(replicates, n, generator=generator).argsort(dim=1)[:, : n // 2]


def centred_interval(estimate: float, replicates: np.ndarray, level: float) -> tuple[float, float]:
    """``estimate`` plus the two-sided ``level`` quantiles of the replicates' deviations from their mean."""
    values = np.asarray(replicates, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < MIN_REPLICATES:
        return float("nan"), float("nan")
    deviations = values - values.mean()
    low, high = np.quantile(deviations, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(estimate + low), float(estimate + high)


# replicate(fake, real, fake_indices, real_indices, generator, **options) -> {key: array (B,)}
ReplicateFn = Callable[..., dict[str, np.ndarray]]


def generic_replicates(compute: Callable, fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None,
                       fake_indices: torch.Tensor, real_indices: torch.Tensor | None, generator: torch.Generator,
                       *, labels: torch.Tensor | None = None, reference_labels: torch.Tensor | None = None,
                       **options: Any) -> dict[str, np.ndarray]:
    """The metric recomputed on each replicate's rows: ``compute(fake[rows], real[rows], ...)``;
    the class labels of each side (``labels``, ``reference_labels``) follow their side's rows."""
    from ganbench.metrics.base import MetricResult

    out: dict[str, list[float]] = {}
    for b in range(len(fake_indices)):
        rows = fake_indices[b]
        sub_fake = {k: v[rows.to(v.device)] for k, v in fake.items()}
        sub_real = None if real is None else {k: v[real_indices[b].to(v.device)] for k, v in real.items()}
        extra = {} if labels is None else {"labels": labels[rows.to(labels.device)]}
        if reference_labels is not None:
            extra["reference_labels"] = reference_labels[real_indices[b].to(reference_labels.device)]
        result = MetricResult.of(compute(sub_fake, sub_real, generator=generator, **extra, **options))
        for key, value in result.values.items():
            out.setdefault(key, []).append(value)
    return {k: np.asarray(v) for k, v in out.items()}


def rows(features: dict[str, torch.Tensor]) -> int:
    """The number of samples behind a {feature name: (N, D)} dict."""
    return len(next(iter(features.values())))


def replicate_values(replicate: ReplicateFn | None, compute: Callable, fake: dict[str, torch.Tensor],
                     real: dict[str, torch.Tensor] | None, fake_indices: torch.Tensor,
                     real_indices: torch.Tensor | None, generator: torch.Generator, *,
                     labels: torch.Tensor | None = None, reference_labels: torch.Tensor | None = None,
                     options: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The metric on each replicate's rows: the metric's fast path when it has one (and no
    labels to carry), else ``compute``."""
    if replicate is not None and labels is None and reference_labels is None:
        return replicate(fake, real, fake_indices, real_indices, generator, **(options or {}))
    return generic_replicates(compute, fake, real, fake_indices, real_indices, generator, labels=labels,
                              reference_labels=reference_labels, **(options or {}))


@dataclass(frozen=True)
class Difference:
    """A - B for one output key, with its paired-bootstrap interval and two-sided p-value."""

    key: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    level: float
    replicates: int


def paired_difference(key: str, a: float, b: float, replicates_a: np.ndarray, replicates_b: np.ndarray, *,
                      level: float) -> Difference:
    """The difference ``a - b`` with the centred interval of the replicate differences
    (both computed on the same reference half, and on the same latents' halves when A and
    B are generators sampled from the same latents), and the p-value of "no difference":
    the share of centred replicate differences at least as far from 0 as ``a - b``
    (``(1 + count) / (1 + B)``, so never 0)."""
    diffs = np.asarray(replicates_a, dtype=np.float64) - np.asarray(replicates_b, dtype=np.float64)
    diffs = diffs[np.isfinite(diffs)]
    observed = a - b
    low, high = centred_interval(observed, diffs, level)
    centred = diffs - diffs.mean()
    p_value = (1 + int(np.sum(np.abs(centred) >= abs(observed)))) / (1 + len(centred))
    return Difference(key, a, b, observed, low, high, p_value, level, len(diffs))


def bootstrap_interval(estimate: dict[str, float], replicate: ReplicateFn | None, compute: Callable,
                       fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
                       replicates: int = DEFAULT_REPLICATES, level: float = DEFAULT_LEVEL, seed: int = 0,
                       labels: torch.Tensor | None = None, reference_labels: torch.Tensor | None = None,
                       options: dict[str, Any] | None = None) -> Interval:
    """The interval of every key of ``estimate`` (see the module docstring).

    Args:
        estimate: the metric's values on all the features.
        replicate: the metric's fast path, or None to call ``compute`` per replicate.
        fake, real: {feature name: (N, D)} as the metric's ``compute`` takes them.
    """
    check_settings(replicates, level)
    generator = torch.Generator().manual_seed(seed)
    fake_indices = half_sample_indices(rows(fake), replicates, generator)
    real_indices = None if real is None else half_sample_indices(rows(real), replicates, generator)
    values = replicate_values(replicate, compute, fake, real, fake_indices, real_indices, generator, labels=labels,
                              reference_labels=reference_labels, options=options)
    low, high = {}, {}
    for key, value in estimate.items():
        if key in values:
            low[key], high[key] = centred_interval(value, values[key], level)
    return Interval(low, high, replicates, level)
