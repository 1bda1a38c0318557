"""The one image contract of ganbench: ``uint8`` tensors, NCHW, 3 channels, values 0..255.

Every input (folders, arrays, datasets, generators) is brought to this contract by the
helpers below, and nowhere else: :func:`to_uint8_nchw` reads layouts (NHW, NHWC, NCHW),
:func:`to_rgb_uint8` gives the 3-channel contract, :func:`convert_uint8` resizes and
changes channels, :func:`float_to_uint8` / :func:`uint8_to_float` map to and from a
generator's float range. Grayscale is expanded to RGB by repeating the channel,
which is what PIL's ``convert("RGB")`` does inside torch-fidelity, so features match.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ganbench.errors import GanbenchError, InputError


def float_to_uint8(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Map float images in ``value_range`` to uint8 0..255 (round half up, clamp).

    Args:
        images: float tensor (N, C, H, W).
        value_range: the (low, high) the generator is declared to produce.
    Raises:
        InputError: on NaN or infinite values.
    """
    if not torch.isfinite(images).all():
        bad = (~torch.isfinite(images)).sum().item()
        raise InputError(f"images contain {bad} NaN/Inf values")
    lo, hi = value_range
    scaled = (images.float() - lo) * (255.0 / (hi - lo))
    return (scaled + 0.5).floor_().clamp_(0, 255).to(torch.uint8)


def uint8_to_float(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Inverse of :func:`float_to_uint8` (uint8 0..255 to float in ``value_range``)."""
    lo, hi = value_range
    return images.float() * ((hi - lo) / 255.0) + lo


def to_uint8_nchw(images: torch.Tensor | np.ndarray, *, what: str = "images",
                  whole_floats: bool = False) -> torch.Tensor:
    """A batch of images as uint8 (N, C, H, W) with C = 1 or 3: the one reader of layouts.

    Accepts (N, H, W) grayscale, NHWC or NCHW, as a tensor or a numpy array. Float input
    is refused (its range is ambiguous: use :func:`float_to_uint8`) unless
    ``whole_floats``: then whole numbers in 0..255, as array files hold them, are uint8.
    """
    if isinstance(images, torch.Tensor) and images.dtype.is_floating_point and whole_floats:
        images = images.detach().cpu().double().numpy()  # float64 holds every float exactly
    if isinstance(images, np.ndarray) and images.dtype.kind == "f" and whole_floats:
        images = _whole_floats_to_uint8(images, what=what)
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise InputError(f"{what}: expected uint8 values 0..255, got dtype {images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype != torch.uint8:
        raise InputError(f"{what}: expected uint8 values 0..255, got dtype {images.dtype}")
    if images.dim() == 3:
        images = images.unsqueeze(1)
    elif images.dim() == 4 and images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3):
        images = images.permute(0, 3, 1, 2)  # NHWC -> NCHW
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise InputError(f"{what}: expected images N x H x W, N x H x W x 1|3 or N x 1|3 x H x W, "
                         f"got shape {tuple(images.shape)}")
    return images.contiguous()


def to_rgb_uint8(images: torch.Tensor | np.ndarray, *, what: str = "images",
                 whole_floats: bool = False) -> torch.Tensor:
    """Bring a batch of uint8 images to the contract (N, 3, H, W) uint8.

    Layouts and floats as :func:`to_uint8_nchw`; grayscale repeats its channel.
    """
    images = to_uint8_nchw(images, what=what, whole_floats=whole_floats)
    return images.expand(-1, 3, -1, -1).contiguous() if images.shape[1] == 1 else images


def convert_uint8(images: torch.Tensor, size: int | None, channels: int | None) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) to ``size`` x ``size`` and to ``channels`` (None: keep).

    Upsampling is bilinear; downsampling is bilinear with antialiasing (area-like);
    non-square images are centre-cropped first. 3 -> 1 channels takes the channel mean,
    1 -> 3 repeats the channel.
    """
    if channels is not None and channels != images.shape[1]:
        if channels == 1:
            images = images.float().mean(1, keepdim=True).round_().to(torch.uint8)
        elif channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        else:
            raise GanbenchError(f"cannot convert {images.shape[1]} channels to {channels}")
    h, w = images.shape[2:]
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        images = images[:, :, top:top + s, left:left + s]
        h = w = s
    if size is not None and size != h:
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                          align_corners=False, antialias=size < h)
        images = x.round_().clamp_(0, 255).to(torch.uint8)
    return images.contiguous()


def _whole_floats_to_uint8(array: np.ndarray, *, what: str) -> np.ndarray:
    """Convert a float array in [0, 255] holding whole numbers to uint8, or refuse it."""
    if not np.isfinite(array).all():
        raise InputError(f"{what}: array contains NaN/Inf values")
    lo, hi = float(array.min(initial=0)), float(array.max(initial=0))
    if lo < 0 or hi > 255:
        raise InputError(f"{what}: values out of range [{lo:g}, {hi:g}]; expected uint8 images in 0..255")
    if not np.all(np.equal(np.mod(array, 1), 0)):
        raise InputError(f"{what}: float array with fractional values; save images as uint8 0..255")
    return array.astype(np.uint8)
