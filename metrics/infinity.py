"""FID∞ and IS∞: FID and Inception Score extrapolated to infinitely many samples.

Chong & Forsyth, "Effectively Unbiased FID and Inception Score and where to find them",
CVPR 2020 (https://arxiv.org/abs/1911.07023). FID and IS computed from N samples are
biased, by an amount that depends on the model, so that ranking two models at one fixed
N can be wrong; to first order ``score_N = score_inf + slope / N``. The score is
therefore measured on subsets of N of the input's samples for several N (FID always
against the statistics of all reference features, held fixed), a least-squares line is
fitted against 1/N, and its intercept at 1/N = 0 is FID∞ (IS∞), reported with the slope
and the score at each N (keys ``fid_n<N>`` / ``isc_n<N>``, for ``ganbench eval --curve``).

As the authors' code (mchong6/FID_IS_infinity ``score_infinity.py``): N takes
``points = 15`` values ``np.linspace(5000, largest, 15)``, floored to integers; each
subset is the first N rows of a fresh shuffle of all samples (without replacement within
a subset, independent between sizes; the code's comment says "with replacement", its
shuffle does not); an unweighted least-squares fit of the score against 1/N (their
sklearn ``LinearRegression``); the Inception Score of a subset in one split.

In expectation the line is exact in a simple case, which the tests use: against
reference statistics of zero covariance at ``r``, FID_N = |mean_N - r|^2 + tr(S_N), and
for subsets of M samples of mean ``m`` and covariance ``S`` (ddof=1)
E[FID_N] = |m - r|^2 + tr(S) (1 - 1/M) + tr(S) / N, whose intercept is unbiased for
|mu - r|^2 + tr(Sigma) of the distribution the M samples come from.

Departures from the paper, and why:

* The largest N is all of the input's samples (the paper: a fixed 50,000 generated
  images), so ``-n`` sets it; ``min_n`` (5,000) is the smallest and ``points`` (15) the
  number of sizes, or ``sizes`` gives them explicitly. Sizes that coincide after flooring
  (fewer samples than ``min_n + points``) are fitted once.
* Subsets are drawn with the runner's seeded ``torch.Generator``, so a result can be
  repeated; the authors shuffle with numpy's unseeded global generator.
* No quasi-Monte Carlo latents. The authors sample the generator's latents from a
  scrambled Sobol sequence (the paper's second proposal, which lowers the variance of
  FID_N); metrics here see features only, from ganbench's one sampling loop of i.i.d.
  Gaussian latents.
* FID and IS are ganbench's own (metrics/fid.py, metrics/isc.py): float64 statistics and
  an exact trace term where the authors use float32 activations and ``sqrtm``.
* The runner asks the reference for at least as many samples as the smallest N too
  (``Metric.min_samples`` applies to both sides), although only its statistics are used.

:func:`samples_to_resolve` is a sample-size advisor on the same first-order model.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, MetricResult, keyword_defaults, register_metric
from ganbench.metrics.fid import feature_stats, fid_from_stats
from ganbench.metrics.isc import inception_score
from ganbench.metrics.stats import get_features, random_permutation, same_dim

__all__ = ["fit_sizes", "fit_inverse_n", "subset_scores", "fid_infinity", "isc_infinity", "samples_to_resolve"]

# score_infinity.py: calculate_FID_infinity(num_im=50000, num_points=15), N = linspace(5000, num_im, num_points)
PAPER_POINTS = 15
PAPER_MIN_N = 5000


def fit_sizes(available: int, *, points: int = PAPER_POINTS, min_n: int = PAPER_MIN_N,
              sizes: tuple[int, ...] | None = None, metric: str = "fid-inf") -> tuple[int, ...]:
    """The subset sizes N of the fit, ascending and distinct: ``sizes`` when given, else
    ``points`` values from ``min_n`` to ``available`` evenly spaced and floored (the paper's
    ``np.linspace(5000, 50000, 15).astype(int)`` for 50,000 samples).

    Raises a one-line ``InputError`` when there are fewer than the smallest N samples, or
    fewer than two distinct sizes to fit a line through.
    """
    if sizes:
        chosen = tuple(sorted({int(s) for s in sizes}))
        if chosen[0] < 2:
            raise InputError(f"{metric}.sizes must all be >= 2, got {sizes}")
    else:
        if points < 2 or min_n < 2:
            raise InputError(f"{metric} needs points >= 2 and min_n >= 2, got points={points}, min_n={min_n}")
        if available < min_n:
            raise InputError(f"{metric} fits subsets of {min_n} samples and more but the input has {available}; "
                             f"give more samples or lower the smallest: -o {metric}.min_n=N "
                             f"(or -o {metric}.sizes=N1,N2,...)")
        chosen = tuple(sorted({int(s) for s in np.linspace(min_n, available, points).astype(np.int64)}))
    if chosen[-1] > available:
        raise InputError(f"{metric} fits subsets of up to {chosen[-1]} samples but the input has {available}; "
                         f"give more samples or lower -o {metric}.sizes")
    if len(chosen) < 2:
        raise InputError(f"{metric} needs two different subset sizes to fit a line, got {list(chosen)}; give more "
                         f"than {chosen[0]} samples or lower -o {metric}.min_n (or set -o {metric}.sizes=N1,N2,...)")
    return chosen


def fit_inverse_n(sizes: tuple[int, ...], scores: list[float]) -> tuple[float, float]:
    """``(intercept, slope)`` of the least-squares line ``score = intercept + slope / N``."""
    slope, intercept = np.polyfit(1.0 / np.asarray(sizes, dtype=np.float64), np.asarray(scores, np.float64), 1)
    return float(intercept), float(slope)


def subset_scores(score: Callable[[torch.Tensor], float], features: torch.Tensor, sizes: tuple[int, ...],
                  generator: torch.Generator | None) -> list[float]:
    """``score`` of the first N rows of a fresh permutation of ``features`` (M, D), for each N."""
    m = features.shape[0]
    # seed: read under rng="torch-fidelity" only; here the permutations come from ``generator``
    return [score(features[random_permutation(m, rng="generator", seed=0, generator=generator)[:n]
                           .to(features.device)])
            for n in sizes]


def _extrapolated(name: str, sizes: tuple[int, ...], scores: list[float]) -> dict[str, float]:
    intercept, slope = fit_inverse_n(sizes, scores)
    return {f"{name}_inf": intercept, f"{name}_inf_slope": slope,
            **{f"{name}_n{n}": s for n, s in zip(sizes, scores)}}


def fid_infinity(fake: torch.Tensor, real: torch.Tensor, *, sizes: tuple[int, ...],
                 generator: torch.Generator | None) -> dict[str, float]:
    """FID∞ of features ``fake`` (M, D) against ``real`` (M', D): ``{"fid_inf": intercept,
    "fid_inf_slope": slope, "fid_n<N>": FID of a random N-subset of fake, ...}``.

    The reference statistics are those of all of ``real``; subsets come from ``generator``.
    """
    mu_ref, sigma_ref = feature_stats(real)
    scores = subset_scores(lambda x: fid_from_stats(*feature_stats(x), mu_ref, sigma_ref), fake, sizes, generator)
    return _extrapolated("fid", sizes, scores)


def isc_infinity(logits: torch.Tensor, *, sizes: tuple[int, ...],
                 generator: torch.Generator | None) -> dict[str, float]:
    """IS∞ of class ``logits`` (M, C): ``{"isc_inf", "isc_inf_slope", "isc_n<N>", ...}``,
    the Inception Score of each subset in one split (as the authors' code)."""
    scores = subset_scores(lambda x: inception_score(x, 1, shuffle=False)[0], logits, sizes, generator)
    return _extrapolated("isc", sizes, scores)


def samples_to_resolve(difference: float, slope: float, sd_at_n: float, n: int, *, z: float = 2.0) -> int:
    """How many samples N per model make a true score ``difference`` between two models
    exceed ``z`` standard deviations of the measured difference, net of its bias.

    Model (first order, as FID∞): each model's FID_N = FID∞ + k/N + noise, the noise of the
    two evaluations independent, each with standard deviation ``sd_at_n`` at ``n`` samples
    (e.g. a bootstrap over the samples; that of the score compared: FID∞ spreads more than
    FID_N at the same n) shrinking as 1/sqrt(N). The measured difference is
    then ``difference + (k_A - k_B)/N`` with standard deviation ``sqrt(2) sd_at_n sqrt(n/N)``.
    ``slope`` bounds ``|k_A - k_B|``: FID slopes are positive, so the larger of the two
    models' ``fid_inf_slope`` is a safe bound; 0 when comparing FID∞ (no bias). N is the
    smallest with ``difference - |slope|/N >= z sqrt(2 n) sd_at_n / sqrt(N)``, a quadratic in
    ``u = 1/sqrt(N)``: ``|slope| u^2 + c u - difference = 0`` with ``c = z sqrt(2 n) sd_at_n``.

    Returns N rounded up. Assumes the noise is Gaussian and the model's 1/N bias is the only
    one (higher orders of 1/N neglected), so extrapolating far beyond ``n`` is a guess.
    """
    if not difference > 0 or not sd_at_n >= 0 or n < 1 or not z > 0:
        raise InputError(f"samples_to_resolve needs difference > 0, sd_at_n >= 0, n >= 1 and z > 0, "
                         f"got difference={difference}, sd_at_n={sd_at_n}, n={n}, z={z}")
    k, c = abs(slope), z * math.sqrt(2 * n) * sd_at_n
    if k == 0:
        samples = (c / difference) ** 2
    else:
        u = (math.sqrt(c * c + 4 * k * difference) - c) / (2 * k)
        samples = 1.0 / (u * u)
    return max(1, math.ceil(round(samples, 9)))  # round: 2000.0000000000002 is 2000


def _smallest_size(options: dict) -> int:
    """The smallest N, for the runner's early check of the sample counts."""
    return min(options["sizes"]) if options["sizes"] else options["min_n"]


def compute_fid_inf(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
                    generator: torch.Generator | None = None, points: int = PAPER_POINTS,
                    min_n: int = PAPER_MIN_N, sizes: tuple[int, ...] | None = None) -> MetricResult:
    x = get_features(fake, "pool", "fid-inf", "input", 2)
    y = get_features(real, "pool", "fid-inf", "reference", 2)
    same_dim("fid-inf", x, y)
    chosen = fit_sizes(len(x), points=points, min_n=min_n, sizes=sizes, metric="fid-inf")
    return MetricResult(fid_infinity(x, y, sizes=chosen, generator=generator), options={"sizes": chosen})


def compute_isc_inf(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None = None, *,
                    generator: torch.Generator | None = None, points: int = PAPER_POINTS,
                    min_n: int = PAPER_MIN_N, sizes: tuple[int, ...] | None = None) -> MetricResult:
    logits = get_features(fake, "logits", "isc-inf", "input", 2)
    chosen = fit_sizes(len(logits), points=points, min_n=min_n, sizes=sizes, metric="isc-inf")
    return MetricResult(isc_infinity(logits, sizes=chosen, generator=generator), options={"sizes": chosen})


FID_INF = register_metric(Metric(
    name="fid-inf",
    compute=compute_fid_inf,
    features=("pool",),
    higher_is_better={"fid_inf": False},
    needs_reference=True,
    version=1,
    defaults=keyword_defaults(compute_fid_inf),
    min_samples=_smallest_size,
    interval=False,  # half-samples would fall below min_n, and each replicate costs a whole fit
    description="FID∞ (Chong & Forsyth 2020): FID of input subsets against 1/N, extrapolated to 1/N = 0",
))

ISC_INF = register_metric(Metric(
    name="isc-inf",
    compute=compute_isc_inf,
    features=("logits",),
    higher_is_better={"isc_inf": True},
    needs_reference=False,
    version=1,
    defaults=keyword_defaults(compute_isc_inf),
    min_samples=_smallest_size,
    interval=False,
    description="IS∞ (Chong & Forsyth 2020): Inception Score of input subsets against 1/N, extrapolated to 1/N = 0",
))
