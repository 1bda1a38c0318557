"""Paired image datasets for image-conditioned models, built offline from real MNIST.

Each item is a *target* image (what ``DatasetSplit.item`` returns, so a paired split is also
an ordinary reference such as ``mnist-edges:test``) plus a *source* image of the same
index (:attr:`PairedSplit.sources`) that a translation model maps to the target.

========================  ==================================================================
name                      source -> target
========================  ==================================================================
``mnist-edges``           binary Sobel edge map of the digit -> the digit (the analogue of
                          pix2pix's edges2shoes)
``mnist-edges-unpaired``  the same two domains; training draws the sources in an order
                          independent of the targets (CycleGAN's unpaired setting); the test
                          split keeps the pairs so translations can be scored against them
``mnist-degraded``        blurred, down-sampled, noisy digit with a seeded per-image
                          degradation -> the clean digit (GPEN's blind restoration)
========================  ==================================================================

Everything here is a pure function of the MNIST files: the same split gives the same
bytes on every machine (degradation parameters come from a generator seeded per split).
The datasets registry imports this module on first use (:mod:`ganbench.registry`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ganbench.data import SPLITS, DatasetSplit, InMemorySplit, open_split, register_dataset
from ganbench.errors import GanbenchError, InputError

EDGE_THRESHOLD = 1.0  # Sobel gradient magnitude (images in [0, 1]) above which a pixel is an edge
_DEGRADE_SEEDS = {"train": 20210513, "test": 20210514}  # one seed per split (GPEN's arXiv date)
PAIRED_DATASETS = ("mnist-edges", "mnist-edges-unpaired", "mnist-degraded")


class PairedSplit(InMemorySplit):
    """Targets (the split's ``images``) with a source image per index.

    Attributes:
        sources: uint8 (N, C_src, H, W), aligned with the targets.
        paired: False when training must draw sources independently of targets (unpaired).
    """

    def __init__(self, name: str, sources: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None,
                 num_classes: int, *, paired: bool = True):
        super().__init__(name, targets, labels, num_classes)
        if sources.dtype != torch.uint8 or sources.dim() != 4 or len(sources) != len(targets):
            raise InputError(f"{name}: sources must be uint8 (N, C, H, W) aligned with {len(targets)} targets")
        self.sources = sources.contiguous()
        self.paired = paired


# ---------------------------------------------------------------------------------------
# The maths: uint8 in, uint8 out
# ---------------------------------------------------------------------------------------
def sobel_edges(images: torch.Tensor, threshold: float = EDGE_THRESHOLD) -> torch.Tensor:
    """Binary edge maps (0 / 255) of uint8 (N, 1, H, W) images: Sobel magnitude > threshold."""
    p = F.pad(images.float() / 255.0, (1, 1, 1, 1), mode="replicate")
    # separable Sobel ([1, 2, 1] smoothing x [-1, 0, 1] difference), as slices: fast on CPU
    dx = p[:, :, :, 2:] - p[:, :, :, :-2]
    dy = p[:, :, 2:, :] - p[:, :, :-2, :]
    gx = dx[:, :, :-2] + 2 * dx[:, :, 1:-1] + dx[:, :, 2:]
    gy = dy[:, :, :, :-2] + 2 * dy[:, :, :, 1:-1] + dy[:, :, :, 2:]
    magnitude = (gx * gx + gy * gy).sqrt()
    return ((magnitude > threshold).to(torch.uint8) * 255).contiguous()


def degrade(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """GPEN-style synthetic degradation of uint8 (N, C, H, W) images, random per image:
    Gaussian blur (sigma U(0.3, 1.5) px) -> down-sampling by 2, 3 or 4 (antialiased) ->
    bilinear up-sampling -> Gaussian noise (std U(0, 0.15) of the range) -> uint8."""
    n, c, h, w = images.shape
    blur_sigma = 0.3 + 1.2 * torch.rand(n, generator=generator)
    down_factor = torch.randint(2, 5, (n,), generator=generator)
    noise_std = 0.15 * torch.rand(n, generator=generator)
    x = images.float() / 255.0
    radius = 3
    grid = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-grid[None] ** 2 / (2 * blur_sigma[:, None] ** 2))  # (N, 7)
    g = g / g.sum(1, keepdim=True)
    kernels = (g[:, :, None] * g[:, None, :])[:, None].repeat_interleave(c, 0)  # (N*C, 1, 7, 7)
    x = F.conv2d(F.pad(x.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate"), kernels, groups=n * c)
    x = x.reshape(n, c, h, w)
    out = torch.empty_like(x)
    for factor in down_factor.unique().tolist():
        idx = (down_factor == factor).nonzero().flatten()
        small = F.interpolate(x[idx], size=(max(1, round(h / factor)),) * 2, mode="bilinear",
                              align_corners=False, antialias=True)
        out[idx] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    out += torch.randn(out.shape, generator=generator) * noise_std[:, None, None, None]
    return (out * 255.0).round_().clamp_(0, 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------
# Helpers for evaluation and tests
# ---------------------------------------------------------------------------------------
def open_paired(spec: str, split: str | None = None) -> PairedSplit:
    """The :class:`PairedSplit` of a paired dataset split (one-line error otherwise)."""
    data = open_split(spec, split)
    if not isinstance(data, PairedSplit):
        raise GanbenchError(f"dataset {spec!r} has no source images to translate; paired datasets: "
                            f"{', '.join(PAIRED_DATASETS)}")
    return data


def paired_errors(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """The ``l1`` (mean absolute error, pixels in [0, 1]) and ``psnr`` (dB, peak 1, per image
    then averaged, capped at 100 dB) metrics of uint8 outputs vs targets, both uint8
    (N, C, H, W) of the same shape; definitions in :mod:`ganbench.metrics.paired`."""
    from ganbench.metrics.paired import mean_absolute_error, psnr_per_image

    return {"l1": mean_absolute_error(outputs, targets), "psnr": psnr_per_image(outputs, targets).mean().item()}


# ---------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------
def _mnist(split: str) -> InMemorySplit:
    data = open_split("mnist", split)
    assert isinstance(data, InMemorySplit)
    return data


def _edges(name: str, paired: bool):
    def load(split: str, arg: str | None) -> DatasetSplit:
        mnist = _mnist(split)
        return PairedSplit(f"{name}:{split}", sobel_edges(mnist.images), mnist.images, mnist.labels, 10,
                              paired=paired or split != "train")

    return load


register_dataset("mnist-edges", channels=1, num_classes=10, image_size=28,
                 description="paired MNIST: Sobel edge map (source) -> digit (target); 60k/10k",
                 source="derived from MNIST (ganbench.translation)")(_edges("mnist-edges", True))
register_dataset("mnist-edges-unpaired", channels=1, num_classes=10, image_size=28,
                 description="unpaired MNIST edges <-> digits: training shuffles the two domains "
                             "independently; test keeps the pairs",
                 source="derived from MNIST (ganbench.translation)")(_edges("mnist-edges-unpaired", False))


@register_dataset("mnist-degraded", channels=1, num_classes=10, image_size=28,
                  description="MNIST restoration: blurred + down-sampled + noisy digit (source, seeded "
                              "per image) -> clean digit (target); 60k/10k",
                  source="derived from MNIST (ganbench.translation)")
def _degraded(split: str, arg: str | None) -> DatasetSplit:
    if split not in SPLITS:
        raise GanbenchError(f"unknown split {split!r}")
    mnist = _mnist(split)
    generator = torch.Generator().manual_seed(_DEGRADE_SEEDS[split])
    chunks = [degrade(mnist.images[i:i + 8192], generator) for i in range(0, len(mnist), 8192)]  # bounded memory
    return PairedSplit(f"mnist-degraded:{split}", torch.cat(chunks), mnist.images, mnist.labels, 10)

