"""Perceptual path length (PPL).

Karras, Laine, Aila: "A Style-Based Generator Architecture for Generative Adversarial
Networks", CVPR 2019, section 3.2 (https://arxiv.org/abs/1812.04948).

PPL is the expected perceptual distance between images at two nearby points of a latent
interpolation path, divided by the squared step: ``d(G(e(t)), G(e(t + eps))) / eps**2``,
averaged over random paths after discarding distances below the 1st and above the 99th
percentile.

Reference code, read for its conventions (this file is written anew):

* NVlabs/stylegan ``metrics/perceptual_path_length.py`` and its torch port in
  NVlabs/stylegan3: epsilon 1e-4; ``full`` sampling draws t ~ U(0, 1), ``end`` samples
  path endpoints; slerp of z (directions on the unit sphere) or lerp of w from the mapping
  network; the optional face crop; percentiles with ``lower`` / ``higher`` interpolation.
* toshas/torch-fidelity ``metric_ppl.py``: the LPIPS-VGG16 sample similarity on uint8
  images resized to 64 px, which is ganbench's default distance (``lpips-vgg16-tf``).
  torch-fidelity itself always walks from t = 0 with plain lerp in z; ``z_interp="lerp"``
  with t = 0 reproduces it (see ``tests/test_ppl.py``).

Choices of ganbench where the references leave a gap:

* ``end`` draws t from {0, 1} with equal odds (the paper's "path endpoints"); the
  StyleGAN code draws t = 0 only, which has the same distribution of distances because
  z0 and z1 are exchangeable.
* ``slerp`` interpolates the *direction* of z exactly like StyleGAN and the *norm* of z
  linearly between the two endpoints. StyleGAN normalises z, so its numbers are unchanged;
  generators that do not normalise z stay at the radius they were trained on instead of
  being fed unit vectors.
* The path maths runs in float64; latents are cast back to float32 for the generator.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ganbench.errors import InputError, UnknownNameError
from ganbench.generative import GenerativeModel, check_generated, sample_latents
from ganbench.images import float_to_uint8, to_rgb_uint8
from ganbench.metrics.base import Metric, MetricResult, keyword_defaults, register_metric

SAMPLINGS = ("end", "full")
SPACES = ("auto", "z", "w")
Z_INTERPS = ("slerp", "lerp")
SIMILARITIES = ("lpips-vgg16-tf", "lpips-vgg", "lpips-alex", "lpips-squeeze", "l2")
_CHUNK = 1024  # paths drawn from the RNG at a time, so results do not depend on batch_size


# -- the path maths (pure functions) ------------------------------------------------------
def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``a + (b - a) * t`` with t of shape (N,) broadcast over a's trailing dims."""
    return a + (b - a) * t.reshape(-1, *([1] * (a.dim() - 1)))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of directions, linear interpolation of norms.

    The direction is StyleGAN's ``slerp`` (the great circle from a/|a| towards b/|b|, at
    angle ``t * acos(<a/|a|, b/|b|>)``); the norm is ``|a| + (|b| - |a|) t``.

    Args:
        a, b: (N, D) latents.
        t: (N,) path positions (values outside [0, 1] extrapolate along the circle).
    """
    t = t.reshape(-1, 1).to(a.dtype)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na, b / nb
    d = (ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    p = t * torch.acos(d)
    c = ub - d * ua
    c = c / c.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # (anti)parallel: c = 0, stay on a
    u = ua * torch.cos(p) + c * torch.sin(p)
    u = u / u.norm(dim=-1, keepdim=True)
    return u * (na + (nb - na) * t)


def path_endpoints(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, epsilon: float,
                   mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The two ends ``(e(t), e(t + epsilon))`` of each path's step, in float64.

    Args:
        a, b: (N, ...) path start and end latents.
        t: (N,) positions along the paths.
        mode: "slerp" (a, b must be (N, D)) or "lerp".
    """
    if mode not in Z_INTERPS:
        raise UnknownNameError("interpolation", mode, Z_INTERPS)
    fn = slerp if mode == "slerp" else lerp
    a, b, t = a.double(), b.double(), t.double()
    return fn(a, b, t), fn(a, b, t + epsilon)


def filter_percentiles(distances: np.ndarray, lower: float | None = 1.0,
                       upper: float | None = 99.0) -> np.ndarray:
    """Keep ``lo <= d <= hi``: lo/hi are the ``lower``-th percentile (rounded down to a
    sample) and the ``upper``-th (rounded up), as StyleGAN and torch-fidelity do."""
    distances = np.asarray(distances, dtype=np.float64)
    keep = np.ones(distances.shape, dtype=bool)
    if lower is not None:
        keep &= distances >= np.percentile(distances, lower, method="lower")
    if upper is not None:
        keep &= distances <= np.percentile(distances, upper, method="higher")
    return distances[keep]


def summarize(distances: np.ndarray, lower: float | None = 1.0, upper: float | None = 99.0) -> dict[str, float]:
    """``{"ppl": mean, "ppl_std": std}`` of the distances kept by :func:`filter_percentiles`."""
    kept = filter_percentiles(distances, lower, upper)
    return {"ppl": float(np.mean(kept)), "ppl_std": float(np.std(kept))}


# -- distances between images ---------------------------------------------------------------
class L2Similarity(nn.Module):
    """Mean squared difference of images scaled to [0, 1] (a closed-form test distance)."""

    def __init__(self, resize: int | None = None):
        super().__init__()
        self.resize = resize

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        from ganbench.metrics.lpips import resize_like_torch_fidelity

        x = torch.cat([img0, img1])
        x = resize_like_torch_fidelity(x.to(torch.promote_types(x.dtype, torch.float32)), self.resize) / 255
        n = img0.shape[0]
        return (x[:n] - x[n:]).square().flatten(1).mean(1)

    def describe(self) -> dict[str, Any]:
        """Provenance, as :meth:`ganbench.metrics.base.FeatureExtractor.describe`."""
        return {"extractor": "l2", "weights_sha256": None, "weights_standard": True,
                "input_size": self.resize, "resize": "area-down/bilinear-up" if self.resize else ""}


def build_similarity(name: str, *, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                     resize: int | None = 64) -> nn.Module:
    """A distance ``sim(img0, img1) -> (N,)`` on 0..255 images, with ``describe()``.

    ``lpips-vgg16-tf`` is torch-fidelity's PPL distance; ``lpips-<net>`` the lpips
    package's convention; ``l2`` a plain mean squared error (no weights).
    """
    from ganbench.metrics.lpips import build_lpips

    if name not in SIMILARITIES:
        raise UnknownNameError("PPL similarity", name, SIMILARITIES)
    if name == "l2":
        return L2Similarity(resize).to(device)
    if name == "lpips-vgg16-tf":
        return build_lpips("vgg", weights=weights, device=device, convention="torch-fidelity", resize=resize)
    return build_lpips(name.split("-", 1)[1], weights=weights, device=device, resize=resize)


# -- the sampling loop ------------------------------------------------------------------------
def _to_similarity_input(images: torch.Tensor, model: GenerativeModel, quantize: bool, crop: bool) -> torch.Tensor:
    """Generator output -> (N, 3, H, W) 0..255 (uint8 if ``quantize``), face-cropped if asked."""
    lo, hi = model.latent.output_range
    if images.dtype == torch.uint8:  # a generator that already follows the image contract
        x = to_rgb_uint8(images)
    elif quantize:
        x = to_rgb_uint8(float_to_uint8(images, (lo, hi)))
    else:  # StyleGAN feeds unquantised images (float64 stays float64, for exact tests)
        x = (images.to(torch.promote_types(images.dtype, torch.float32)) - lo) * (255.0 / (hi - lo))
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
    if crop:  # StyleGAN's FFHQ face region
        if x.shape[2] != x.shape[3]:
            raise InputError(f"crop=True needs square images, got {x.shape[2]}x{x.shape[3]}")
        c = x.shape[2] // 8
        x = x[:, :, c * 3: c * 7, c * 2: c * 6]
    return x


@torch.inference_mode()
def path_distances(model: GenerativeModel, z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor,
                   labels: torch.Tensor | None = None, *,
                   similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], epsilon: float = 1e-4,
                   space: str = "z", z_interp: str = "slerp", batch_size: int = 64, device: str | torch.device = "cpu",
                   quantize: bool = True, crop: bool = False) -> np.ndarray:
    """``similarity(G(e(t)), G(e(t + epsilon))) / epsilon**2`` for each given path.

    Args:
        z0, z1: (N, z_dim) latents at the path ends; t: (N,) positions;
        labels: (N,) classes of a conditional model (the same at both ends).
        space: "z" (interpolate z with ``z_interp``, images from ``generate``) or "w" (map
            z0, z1 with ``mapping``, lerp in w, images from ``synthesis``).
        batch_size: paths per batch (each gives two images).
        quantize: round images to uint8 first (torch-fidelity); False feeds floats (StyleGAN).
    Returns:
        float64 array (N,).
    """
    out = []
    for start in range(0, z0.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        a, b, tt = z0[sl].to(device), z1[sl].to(device), t[sl].to(device)
        y = labels[sl].to(device) if labels is not None else None
        y2 = torch.cat([y, y]) if y is not None else None
        n = a.shape[0]
        if space == "w":
            w0, w1 = model.mapping(torch.cat([a, b]), y2).chunk(2)
            e0, e1 = path_endpoints(w0, w1, tt, epsilon, "lerp")
            images = model.synthesis(torch.cat([e0, e1]).to(w0.dtype))
        else:
            e0, e1 = path_endpoints(a, b, tt, epsilon, z_interp)
            ends = torch.cat([e0, e1]).to(a.dtype)
            # a model with a mapping draws per-sample noise in generate() (StyleGAN: keyed by z, so
            # the two ends of a path would differ in noise); synthesis() shares one map per layer
            images = model.synthesis(model.mapping(ends, y2)) if model.has_mapping else model.generate(ends, y2)
        check_generated(images, model.latent, 2 * n)
        x = _to_similarity_input(images, model, quantize, crop)
        out.append(similarity(x[:n], x[n:]).double().cpu())
    return torch.cat(out).numpy() / epsilon ** 2


def compute_ppl(model: GenerativeModel, *, generator: torch.Generator, device: str | torch.device = "cpu",
                batch_size: int = 64, weights: str | os.PathLike | None = None, num_paths: int = 50_000,
                epsilon: float = 1e-4, sampling: str = "end", space: str = "auto", z_interp: str = "slerp",
                similarity: str = "lpips-vgg16-tf", resize: int | None = 64, quantize: bool = True,
                crop: bool = False, discard_lower: float | None = 1.0,
                discard_upper: float | None = 99.0) -> MetricResult:
    """PPL of ``model`` over ``num_paths`` random paths drawn from ``generator``.

    Returns ``ppl`` with its std, the similarity network's provenance as ``extractor``
    and the space walked (``space="auto"`` resolved) in ``options``.
    ``weights`` is the VGG16 (or other LPIPS trunk) file; see :func:`build_similarity`.
    """
    if sampling not in SAMPLINGS:
        raise UnknownNameError("PPL sampling", sampling, SAMPLINGS)
    if space not in SPACES:
        raise UnknownNameError("PPL space", space, SPACES)
    if z_interp not in Z_INTERPS:
        raise UnknownNameError("interpolation", z_interp, Z_INTERPS)
    if not (isinstance(num_paths, int) and num_paths >= 1):
        raise InputError(f"num_paths must be a positive integer, got {num_paths!r}")
    if not epsilon > 0:
        raise InputError(f"epsilon must be positive, got {epsilon!r}")
    lo = 0.0 if discard_lower is None else discard_lower
    hi = 100.0 if discard_upper is None else discard_upper
    if not 0 <= lo < hi <= 100:
        raise InputError(f"need 0 <= discard_lower < discard_upper <= 100, got {discard_lower}, {discard_upper}")
    if space == "auto":
        space = "w" if model.has_mapping else "z"
    if space == "w" and not model.has_mapping:
        raise InputError(f"space='w' needs a model with a mapping network; {type(model).__name__} has none "
                         f"(use space='z')")
    sim = build_similarity(similarity, weights=weights, device=device, resize=resize)
    was_training = model.training
    model.eval()
    try:
        distances = []
        for start in range(0, num_paths, _CHUNK):
            n = min(_CHUNK, num_paths - start)
            z, labels = sample_latents(model.latent, 2 * n, generator)
            if sampling == "full":
                t = torch.rand(n, generator=generator, dtype=torch.float64)
            else:
                t = torch.randint(0, 2, (n,), generator=generator).double()
            distances.append(path_distances(
                model, z[:n], z[n:], t, labels[:n] if labels is not None else None, similarity=sim,
                epsilon=epsilon, space=space, z_interp=z_interp, batch_size=batch_size, device=device,
                quantize=quantize, crop=crop))
    finally:
        model.train(was_training)
    summary = summarize(np.concatenate(distances), discard_lower, discard_upper)
    return MetricResult({"ppl": summary["ppl"]}, {"ppl": summary["ppl_std"]}, extractor=sim.describe(),
                        options={"space": space})


register_metric(Metric(
    name="ppl",
    compute=compute_ppl,
    features=(),
    needs_reference=False,
    needs_generator=True,
    higher_is_better={"ppl": False},
    defaults=keyword_defaults(compute_ppl),
    version=1,
    description="perceptual path length (StyleGAN): LPIPS-VGG16 distance per squared latent step",
))
