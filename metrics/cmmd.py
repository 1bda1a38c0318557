"""CMMD: maximum mean discrepancy with a Gaussian RBF kernel, on (CLIP) embeddings.

Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image
Generation", CVPR 2024 (https://arxiv.org/abs/2401.09603)::

    CMMD = 1000 * ( mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j) - 2 mean_ij k(x_i, y_j) )
    k(a, b) = exp(-|a - b|^2 / (2 sigma^2)),  sigma = 10

Estimator: the *biased* (minimum-variance, V-statistic) MMD^2 of Gretton et al. 2012,
Eq. (5): every mean runs over all pairs, the diagonal ``i = j`` included, and the two
sets may differ in size. This is what the authors' reference code computes:
google-research/google-research ``cmmd/distance.py`` (``mmd``: ``jnp.mean`` of the full
kernel matrices, ``_SIGMA = 10``, ``_SCALE = 1000``; read with ganbench's code search,
commit 4c42994). So identical sets give exactly 0 and CMMD is symmetric in its arguments.

Features. The authors embed with CLIP ViT-L/14 at 336 px (``cmmd/embedding.py``:
``vit_l14_336px``, bicubic resize, CLIP normalisation) and their embeddings are unit
vectors (scenic's CLIP ``__call__`` normalises by default). So ``normalize=True`` (the
default) scales every feature vector to unit length first, which makes sigma = 10 mean
what it means in the paper whatever extractor gives the features. Paper-comparable CMMD
needs ``--extractor clip-vit-l14-336``; on any other extractor (ganbench accepts any, and
records it in the row's protocol) it is CMMD's maths in that feature space, not the
paper's number.

Here the kernel sums are float64, in row blocks of at most ``max_elements`` kernel
entries (memory O(block), so N = 30k fits), on the GPU when there is one (else where the
features are). Bootstrap replicates (:mod:`ganbench.metrics.bootstrap`) come from the
same blocks: a replicate's sum is ``w_a^T K w_b`` for the 0/1 indicator vectors of its
rows, so one pass over the kernel gives all of them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, register_metric
from ganbench.metrics.stats import MAX_CHUNK_ELEMENTS, finite, get_features, row_chunks, same_dim, sq_dists

__all__ = ["cmmd", "gaussian_kernel_sums", "PAPER_EXTRACTOR"]

SIGMA = 10.0  # the paper's RBF bandwidth, for unit-length CLIP embeddings
SCALE = 1000.0  # the paper's unit: MMD^2 x 1000
PAPER_EXTRACTOR = "clip-vit-l14-336"  # the features of the authors' definition


def _compute_device(x: torch.Tensor) -> torch.device:
    """Where the metric sums its kernels: the GPU when there is one, else the features' device."""
    if x.is_cuda or not torch.cuda.is_available():
        return x.device
    return torch.device("cuda")


def unit_rows(x: torch.Tensor, side: str) -> torch.Tensor:
    """Rows of ``x`` (N, D) scaled to unit length; a zero row has no direction and raises."""
    norms = x.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise InputError(f"cmmd: a {side} feature vector is all zeros and cannot be normalised "
                         f"(give cmmd.normalize=false to use the raw features)")
    return x / norms


def gaussian_kernel_sums(x: torch.Tensor, y: torch.Tensor, x_weights: torch.Tensor, y_weights: torch.Tensor,
                         sigma: float = SIGMA, max_elements: int = MAX_CHUNK_ELEMENTS) -> torch.Tensor:
    """``sum_ij x_weights[r, i] k(x_i, y_j) y_weights[r, j]`` for each row r: (R,) float64.

    ``x`` (N, D), ``y`` (M, D) float64 on one device; weights (R, N) and (R, M) float64 on it;
    ``k`` the Gaussian RBF kernel of bandwidth ``sigma``. Never holds more than a block of
    ``max_elements`` kernel entries (and its squared distances).
    """
    gamma = 1.0 / (2.0 * sigma * sigma)
    x_sq, y_sq = (x * x).sum(1), (y * y).sum(1)
    total = torch.zeros(len(x_weights), dtype=torch.float64, device=x.device)
    for rows in row_chunks(len(x), len(y), max_elements):
        kernel = sq_dists(x[rows], y, x_sq[rows], y_sq).mul_(-gamma).exp_()  # (block, M)
        total += ((kernel @ y_weights.T) * x_weights[:, rows].T).sum(0)
    return total


def _weighted_cmmd(x: torch.Tensor, y: torch.Tensor, x_weights: torch.Tensor, y_weights: torch.Tensor,
                   sigma: float, max_elements: int) -> torch.Tensor:
    """The biased MMD^2 x SCALE of the rows each pair of 0/1 weight rows picks: (R,) float64."""
    nx, ny = x_weights.sum(1), y_weights.sum(1)
    xx = gaussian_kernel_sums(x, x, x_weights, x_weights, sigma, max_elements)
    yy = gaussian_kernel_sums(y, y, y_weights, y_weights, sigma, max_elements)
    xy = gaussian_kernel_sums(x, y, x_weights, y_weights, sigma, max_elements)
    return SCALE * (xx / nx**2 + yy / ny**2 - 2.0 * xy / (nx * ny))


def _prepared(fake: torch.Tensor, real: torch.Tensor, normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets as float64 on ``fake``'s device, unit rows when ``normalize``."""
    x, y = fake.to(torch.float64), real.to(fake.device, torch.float64)
    return (unit_rows(x, "input"), unit_rows(y, "reference")) if normalize else (x, y)


def cmmd(fake: torch.Tensor | np.ndarray, real: torch.Tensor | np.ndarray, *, sigma: float = SIGMA,
         normalize: bool = True, max_elements: int = MAX_CHUNK_ELEMENTS) -> float:
    """CMMD between features ``fake`` (N, D) and ``real`` (M, D): the authors' biased
    estimator (module docstring), in float64 on ``fake``'s device. Symmetric; 0 for identical sets."""
    x, y = _prepared(torch.as_tensor(fake), torch.as_tensor(real), normalize)
    ones_x = torch.ones(1, len(x), dtype=torch.float64, device=x.device)
    ones_y = torch.ones(1, len(y), dtype=torch.float64, device=x.device)
    return float(_weighted_cmmd(x, y, ones_x, ones_y, sigma, max_elements)[0])


DEFAULTS: dict[str, Any] = {"sigma": SIGMA, "normalize": True}


def _features(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None,
              sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    finite("cmmd", "sigma", sigma, positive=True)
    x = get_features(fake, "pool", "cmmd", "input")
    y = get_features(real, "pool", "cmmd", "reference")
    same_dim("cmmd", x, y)
    return x, y


def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
            generator: torch.Generator | None = None, sigma: float = DEFAULTS["sigma"],
            normalize: bool = DEFAULTS["normalize"]) -> dict[str, float]:
    x, y = _features(fake, real, sigma)
    return {"cmmd": cmmd(x.to(_compute_device(x)), y, sigma=sigma, normalize=normalize)}


def _indicators(indices: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """(R, n) float64: 1 at each row's ``indices`` (R, m), else 0."""
    indices = indices.to(device)
    out = torch.zeros(len(indices), n, dtype=torch.float64, device=device)
    return out.scatter_(1, indices, 1.0)


def replicates(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor], fake_indices: torch.Tensor,
               real_indices: torch.Tensor, generator: torch.Generator | None = None, *,
               sigma: float = DEFAULTS["sigma"], normalize: bool = DEFAULTS["normalize"]) -> dict[str, np.ndarray]:
    """CMMD of each bootstrap replicate (rows ``fake_indices[b]`` vs ``real_indices[b]``),
    all from one blocked pass over the kernel matrices (module docstring)."""
    x, y = _features(fake, real, sigma)
    x, y = _prepared(x.to(_compute_device(x)), y, normalize)
    weights_x = _indicators(fake_indices, len(x), x.device)
    weights_y = _indicators(real_indices, len(y), x.device)
    return {"cmmd": _weighted_cmmd(x, y, weights_x, weights_y, sigma, MAX_CHUNK_ELEMENTS).cpu().numpy()}


CMMD = register_metric(Metric(
    name="cmmd",
    compute=compute,
    features=("pool",),
    higher_is_better={"cmmd": False},
    needs_reference=True,
    version=1,
    defaults=DEFAULTS,
    min_samples=lambda options: 1,
    replicates=replicates,
    description=(f"CMMD (Jayasumana et al. 2024): Gaussian-RBF MMD^2 x 1000 (sigma 10, the authors' biased "
                 f"estimator) on unit-length features; the paper's numbers need --extractor {PAPER_EXTRACTOR}, "
                 f"on other extractors it is CMMD's maths in their feature space"),
))
