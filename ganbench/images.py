"""The one image contract of ganbench: ``uint8`` tensors, NCHW, 3 channels, values 0..255.

Every input (folders, arrays, datasets, generators) is brought to this contract by the
helpers below, and nowhere else. Grayscale is expanded to RGB by repeating the channel,
which is what PIL's ``convert("RGB")`` does inside torch-fidelity, so features match.
"""
from __future__ import annotations

import numpy as np
import torch

from ganbench.errors import InputError


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


def to_rgb_uint8(images: torch.Tensor | np.ndarray, *, what: str = "images") -> torch.Tensor:
    """Bring a batch of uint8 images to the contract (N, 3, H, W) uint8.

    Accepts NCHW or NHWC with 1 or 3 channels, or (N, H, W) grayscale. Float input is
    refused here on purpose: its range is ambiguous (use :func:`float_to_uint8`).
    """
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise InputError(f"{what}: expected uint8 values 0..255, got dtype {images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype != torch.uint8:
        raise InputError(f"{what}: expected uint8 values 0..255, got dtype {images.dtype}")
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise InputError(f"{what}: expected a 4-d batch (N,C,H,W or N,H,W,C), got shape {tuple(images.shape)}")
    if images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3):
        images = images.permute(0, 3, 1, 2)  # NHWC -> NCHW
    channels = images.shape[1]
    if channels == 1:
        images = images.expand(-1, 3, -1, -1)
    elif channels != 3:
        raise InputError(f"{what}: expected 1 or 3 channels, got shape {tuple(images.shape)}")
    return images.contiguous()


def check_float_array(array: np.ndarray, *, what: str) -> np.ndarray:
    """Convert a float array in [0, 255] holding whole numbers to uint8, or refuse it."""
    if not np.isfinite(array).all():
        raise InputError(f"{what}: array contains NaN/Inf values")
    lo, hi = float(array.min(initial=0)), float(array.max(initial=0))
    if lo < 0 or hi > 255:
        raise InputError(f"{what}: values out of range [{lo:g}, {hi:g}]; expected uint8 images in 0..255")
    if not np.all(np.equal(np.mod(array, 1), 0)):
        raise InputError(f"{what}: float array with fractional values; save images as uint8 0..255")
    return array.astype(np.uint8)
