"""LPIPS diversity: the mean LPIPS distance between samples from different latents.

Used as a diversity score by BicycleGAN (Zhu et al., NeurIPS 2017), DRIT (Lee et al.,
ECCV 2018) and, for class-conditional GANs, MSGAN (Mao et al., "Mode Seeking Generative
Adversarial Networks for Diverse Image Synthesis", CVPR 2019,
https://arxiv.org/abs/1903.05628), which pairs two samples of the *same* class drawn
with different noise. Distances are LPIPS v0.1 (see :mod:`ganbench.metrics.lpips`) on
the uint8 images of the image contract, at the generator's resolution unless ``resize``.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from ganbench.errors import InputError
from ganbench.generative import GenerativeModel, check_generated, sample_latents
from ganbench.images import float_to_uint8, to_rgb_uint8
from ganbench.metrics.base import Metric, MetricResult, keyword_defaults, register_metric

_CHUNK = 1024  # pairs drawn from the RNG at a time, so results do not depend on batch_size


@torch.inference_mode()
def pair_distances(model: GenerativeModel, lpips: torch.nn.Module, za: torch.Tensor, zb: torch.Tensor,
                   labels: torch.Tensor | None = None, *, batch_size: int = 64,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """LPIPS between ``G(za[i], y[i])`` and ``G(zb[i], y[i])`` for each i; float64 (N,)."""
    out = []
    for start in range(0, za.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        a, b = za[sl].to(device), zb[sl].to(device)
        n = a.shape[0]
        y = labels[sl].to(device) if labels is not None else None
        images = model.generate(torch.cat([a, b]), torch.cat([y, y]) if y is not None else None)
        check_generated(images, model.latent, 2 * n)
        if images.dtype != torch.uint8:
            images = float_to_uint8(images, model.latent.output_range)
        x = to_rgb_uint8(images)
        out.append(lpips(x[:n], x[n:]).double().cpu())
    return torch.cat(out).numpy()


def compute_lpips_diversity(model: GenerativeModel, *, generator: torch.Generator,
                            device: str | torch.device = "cpu", batch_size: int = 64,
                            weights: str | os.PathLike | None = None, num_pairs: int = 2000, net: str = "alex",
                            resize: int | None = None) -> MetricResult:
    """Mean and std of LPIPS over ``num_pairs`` pairs of samples.

    Unconditional models: pairs of independent latents. Class-conditional models: one
    uniformly drawn class per pair, the same for both samples, different noise (MSGAN).
    ``weights`` is the LPIPS trunk's torchvision file (see :func:`build_lpips`).
    """
    from ganbench.metrics.lpips import build_lpips
    if not (isinstance(num_pairs, int) and num_pairs >= 1):
        raise InputError(f"num_pairs must be a positive integer, got {num_pairs!r}")
    lpips = build_lpips(net, weights=weights, device=device, resize=resize)
    was_training = model.training
    model.eval()
    try:
        distances = []
        for start in range(0, num_pairs, _CHUNK):
            n = min(_CHUNK, num_pairs - start)
            z, labels = sample_latents(model.latent, 2 * n, generator)
            distances.append(pair_distances(model, lpips, z[:n], z[n:], labels[:n] if labels is not None else None,
                                            batch_size=batch_size, device=device))
    finally:
        model.train(was_training)
    d = np.concatenate(distances)
    return MetricResult({"lpips_diversity": float(d.mean())}, {"lpips_diversity": float(d.std())},
                        extractor=lpips.describe())


register_metric(Metric(
    name="lpips-diversity",
    compute=compute_lpips_diversity,
    features=(),
    needs_reference=False,
    needs_generator=True,
    higher_is_better={"lpips_diversity": True},
    defaults=keyword_defaults(compute_lpips_diversity),
    version=1,
    description="mean LPIPS between samples from different latents (same class for conditional models)",
))
