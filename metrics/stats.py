"""Shared helpers for the metric maths: running feature statistics in float64, feature
and option validation, the two random-number conventions, chunked squared distances.
Options arrive already read as their types (:meth:`ganbench.metrics.base.Metric.read_options`);
the helpers here check their ranges.

Randomness (KID subsets, Inception Score shuffling) follows one of two conventions,
chosen by a metric's ``rng`` option:

* ``"generator"`` -- the ``torch.Generator`` the runner passes (seeded from its seed);
* ``"torch-fidelity"`` -- a fresh ``numpy.random.RandomState(seed)``, exactly as
  torch-fidelity draws (its ``rng_seed`` defaults to 2020), so that the same features
  give torch-fidelity's numbers.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ganbench.errors import InputError, UnknownNameError

RNG_CHOICES = ("generator", "torch-fidelity")
# Largest float64 block (elements) a chunked computation allocates: 2**25 = 256 MiB.
MAX_CHUNK_ELEMENTS = 2**25


class FeatureStats:
    """Running mean and covariance of features, accumulated in float64.

    Batches are merged with Chan et al.'s pairwise update (per-batch mean and centred
    scatter ``(x - m)^T (x - m)``), which is as accurate as ``np.cov`` on all rows at
    once, in O(D^2) memory whatever the number of rows.

    >>> stats = FeatureStats()
    >>> for batch in batches: stats.update(batch)          # (B, D) each
    >>> mu, sigma = stats.mean_cov()                       # (D,), (D, D) float64
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None  # (D,) float64
        self.scatter: torch.Tensor | None = None  # (D, D) float64, sum of centred outer products

    def update(self, features: torch.Tensor | np.ndarray) -> "FeatureStats":
        """Add a batch ``(B, D)`` (any float dtype; kept on its device)."""
        x = torch.as_tensor(features).to(torch.float64)
        if x.ndim != 2:
            raise InputError(f"features must be 2-D (N, D), got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            return self
        if self.mean is not None and x.shape[1] != self.mean.shape[0]:
            raise InputError(f"feature dimension changed from {self.mean.shape[0]} to {x.shape[1]}")
        x = x.to(self.mean.device) if self.mean is not None else x
        nb = x.shape[0]
        mb = x.mean(dim=0)
        xc = x - mb
        cb = xc.T @ xc
        if self.mean is None:
            self.n, self.mean, self.scatter = nb, mb, cb
            return self
        n = self.n + nb
        delta = mb - self.mean
        self.scatter = self.scatter + cb + torch.outer(delta, delta) * (self.n * nb / n)
        self.mean = self.mean + delta * (nb / n)
        self.n = n
        return self

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mu (D,), sigma (D, D))`` as float64 numpy; sigma unbiased (ddof=1), as ``np.cov``."""
        if self.n < 2:
            raise InputError(f"a covariance needs at least 2 samples, got {self.n}")
        mu = self.mean.cpu().numpy()
        sigma = (self.scatter / (self.n - 1)).cpu().numpy()
        return mu, sigma


def at_least(metric: str, name: str, value: int | float, minimum: int) -> int | float:
    """``value`` (an option already read as a number) checked to be >= ``minimum``."""
    if not value >= minimum:
        raise InputError(f"{metric}.{name} must be >= {minimum}, got {value!r}")
    return value


def finite(metric: str, name: str, value: float, *, positive: bool = False) -> float:
    """``value`` (an option already read as a float) checked to be finite (and > 0 if ``positive``)."""
    if not np.isfinite(value) or (positive and value <= 0):
        raise InputError(f"{metric}.{name} must be a {'positive' if positive else 'finite'} number, got {value!r}")
    return value


def rng_option(metric: str, value: Any) -> str:
    if value not in RNG_CHOICES:
        raise UnknownNameError(f"{metric} rng convention", str(value), RNG_CHOICES)
    return value


def get_features(features: dict[str, torch.Tensor] | None, name: str, metric: str, side: str,
                 min_rows: int = 1) -> torch.Tensor:
    """``features[name]`` checked to be a finite 2-D float tensor with >= ``min_rows`` rows."""
    if features is None:
        raise InputError(f"{metric} needs {side} features but none were given")
    if name not in features:
        raise InputError(f"{metric} needs the {name!r} feature of the {side}; "
                         f"got {sorted(features) or 'none'}")
    x = torch.as_tensor(features[name])
    if x.ndim != 2:
        raise InputError(f"{metric}: {side} feature {name!r} must be 2-D (N, D), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    if x.shape[0] < min_rows:
        raise InputError(f"{metric} needs at least {min_rows} {side} samples, got {x.shape[0]}")
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{metric}: {side} feature {name!r} contains NaN or infinity")
    return x


def same_dim(metric: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[1] != b.shape[1]:
        raise InputError(f"{metric}: input and reference features differ in dimension "
                         f"({a.shape[1]} vs {b.shape[1]})")


def random_permutation(n: int, *, rng: str, seed: int, generator: torch.Generator | None,
                       state: np.random.RandomState | None = None) -> torch.Tensor:
    """A permutation of ``range(n)`` (int64 CPU tensor) under the ``rng`` convention."""
    if rng == "torch-fidelity":
        state = state if state is not None else np.random.RandomState(seed)
        return torch.from_numpy(state.permutation(n).astype(np.int64))
    if generator is None:
        raise InputError("rng='generator' needs a torch.Generator (or use rng='torch-fidelity' with a seed)")
    return torch.randperm(n, generator=generator, device=generator.device).cpu()


def sq_dists(x: torch.Tensor, y: torch.Tensor, x_sq: torch.Tensor | None = None,
             y_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Squared Euclidean distances ``(N, M)`` between float64 rows of ``x`` (N, D) and ``y`` (M, D).

    Computed as ``|x|^2 + |y|^2 - 2 x.y`` in float64 (exact to ~1e-16 relative for
    float32 inputs) and clamped at 0.
    """
    x_sq = (x * x).sum(1) if x_sq is None else x_sq
    y_sq = (y * y).sum(1) if y_sq is None else y_sq
    d = x_sq[:, None] + y_sq[None, :] - 2.0 * (x @ y.T)
    return d.clamp_(min=0.0)


def row_chunks(n_rows: int, n_cols: int, max_elements: int = MAX_CHUNK_ELEMENTS):
    """``slice`` objects covering ``range(n_rows)`` with at most ``max_elements`` per block."""
    step = max(1, max_elements // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def map_row_chunks(x: torch.Tensor, y: torch.Tensor, fn: Callable[[slice, torch.Tensor], Any],
                   max_elements: int = MAX_CHUNK_ELEMENTS) -> list[Any]:
    """Call ``fn(rows, sq_dists(x[rows], y))`` for row blocks of ``x``; never all N x M at once."""
    x_sq, y_sq = (x * x).sum(1), (y * y).sum(1)
    return [fn(rows, sq_dists(x[rows], y, x_sq[rows], y_sq))
            for rows in row_chunks(x.shape[0], y.shape[0], max_elements)]


def kth_neighbour_sq_radii(x: torch.Tensor, k: int, max_elements: int = MAX_CHUNK_ELEMENTS) -> torch.Tensor:
    """Squared distance from each row of ``x`` (N, D float64) to its k-th nearest other row.

    The (k+1)-th smallest distance counting the point itself, as torch-fidelity's
    ``kthvalue(k + 1)`` and prdc's ``np.partition(d, k)[:, k]``. Shape (N,).
    """
    assert 1 <= k < x.shape[0]
    return torch.cat(map_row_chunks(
        x, x, lambda rows, d: d.topk(k + 1, dim=1, largest=False).values[:, k], max_elements))
