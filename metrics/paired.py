"""Paired errors of image-conditioned models: each output against its own ground truth.

pix2pix (Isola et al. 2017, Eq. 3) trains its generator with the L1 distance to the target
image; restoration papers such as GPEN (Yang et al. 2021, Sec. 4) report PSNR to the clean
image next to FID. Both need a *paired* source: the evaluation runner translates the
source images of a paired dataset split (``--source mnist-edges:test``) in its one pass and
hands each translation with its aligned target (``Metric.needs_targets``).

Definitions (images are uint8; channels are compared as evaluated, grayscale replicated
to RGB, which changes neither number):

* ``l1``   -- mean absolute error over all images, channels and pixels, with pixels
  scaled to [0, 1] (|output - target| / 255). On the [-1, 1] scale the models train on
  the same error is twice as large.
* ``psnr`` -- peak signal-to-noise ratio **per image**, then averaged over images:
  ``10 log10(1 / MSE_i)`` with pixels in [0, 1] and peak 1 (the same number as data range
  [0, 255] with peak 255). An image identical to its target has MSE 0 (PSNR infinite); it
  scores ``max_db`` (default 100 dB), and every image is capped there, so the mean stays
  finite. A 1-level error in one pixel of a 256x256 RGB image is 101 dB: the cap binds only
  at that precision.
"""
from __future__ import annotations

import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, MetricResult, keyword_defaults, register_metric

PSNR_MAX_DB = 100.0  # the score of an exact copy (infinite PSNR), and the cap of every image


def _check_pair(outputs: torch.Tensor, targets: torch.Tensor) -> None:
    if outputs.dtype != torch.uint8 or targets.dtype != torch.uint8:
        raise InputError(f"paired metrics compare uint8 images, got {outputs.dtype} and {targets.dtype}")
    if outputs.shape != targets.shape or outputs.dim() != 4:
        raise InputError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} must be aligned "
                         f"(N, C, H, W) batches of the same shape")
    if len(outputs) == 0:
        raise InputError("paired metrics need at least one image")


def mean_absolute_error(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean |output - target| of uint8 (N, C, H, W) images, pixels scaled to [0, 1]."""
    _check_pair(outputs, targets)
    return ((outputs.double() - targets.double()).abs().mean() / 255.0).item()


def psnr_per_image(outputs: torch.Tensor, targets: torch.Tensor, max_db: float = PSNR_MAX_DB) -> torch.Tensor:
    """PSNR in dB of each uint8 (N, C, H, W) output against its target: pixels in [0, 1],
    peak 1, capped at ``max_db`` (identical images: MSE 0 -> ``max_db``). float64 (N,)."""
    _check_pair(outputs, targets)
    mse = ((outputs.double() - targets.double()) / 255.0).pow(2).flatten(1).mean(1)
    return (-10.0 * torch.log10(mse)).clamp(max=max_db)  # log10(0) = -inf -> +inf -> max_db


# The conventions are recorded as options, so that a number computed otherwise never shares a column.
def _compute_l1(fake, real, *, generator, outputs: torch.Tensor, targets: torch.Tensor) -> MetricResult:
    return MetricResult({"l1": mean_absolute_error(outputs, targets)}, options={"pixel_range": "[0, 1]"})


def _compute_psnr(fake, real, *, generator, outputs: torch.Tensor, targets: torch.Tensor,
                  max_db: float = PSNR_MAX_DB) -> MetricResult:
    if not max_db > 0:
        raise InputError(f"psnr.max_db must be positive, got {max_db}")
    return MetricResult({"psnr": psnr_per_image(outputs, targets, max_db).mean().item()},
                        options={"pixel_range": "[0, 1]", "peak": 1.0, "average": "per image"})


register_metric(Metric(
    name="l1",
    compute=_compute_l1,
    features=(),
    needs_reference=False,
    needs_targets=True,
    higher_is_better={"l1": False},
    version=1,
    min_samples=lambda options: 1,
    description="mean absolute error of each translation to its ground truth, pixels in [0, 1] (paired sources)",
))

register_metric(Metric(
    name="psnr",
    compute=_compute_psnr,
    features=(),
    needs_reference=False,
    needs_targets=True,
    higher_is_better={"psnr": True},
    version=1,
    defaults=keyword_defaults(_compute_psnr),
    min_samples=lambda options: 1,
    description="PSNR (dB, pixels in [0, 1], peak 1) of each translation to its ground truth, averaged over "
                "images, capped at max_db (paired sources)",
))
