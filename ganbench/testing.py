"""Helpers for tests: deterministic stand-ins for the official extractor weights.

The official FID Inception-v3 and VGG16 files cannot be shipped with ganbench and may not
be downloadable where tests run. These functions write files with the same keys and
shapes, filled from a seeded generator, so that ganbench and torch-fidelity can be
compared on identical (if meaningless) networks. They are never ``standard`` weights.

PyTorch's default initialisation would make Inception's deep features almost constant
(every image gives nearly the same pool3 vector); a variance-preserving initialisation
keeps them image-dependent: He-normal convolutions, identity batch-norm statistics
(mean 0, variance 1, scale 1, shift 0) and a small normal classifier.
"""
from __future__ import annotations

import math
import os

import torch


def _he_normal(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=generator).mul_(math.sqrt(2.0 / fan_in))


def seeded_inception_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A FID Inception-v3 state dict (official keys and shapes) drawn from ``seed``."""
    from ganbench.metrics.inception import InceptionV3Compat

    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in sorted(InceptionV3Compat.official_shapes().items()):
        if key.endswith("conv.weight"):
            state[key] = _he_normal(shape, generator)
        elif key.endswith(("bn.weight", "bn.running_var")):
            state[key] = torch.ones(shape)
        elif key.endswith(("bn.bias", "bn.running_mean")):
            state[key] = torch.zeros(shape)
        elif key == "fc.weight":
            state[key] = torch.randn(shape, generator=generator).mul_(0.05)
        elif key == "fc.bias":
            state[key] = torch.randn(shape, generator=generator).mul_(0.1)
        else:
            raise AssertionError(f"unexpected Inception key {key}")
    return state


def seeded_vgg16_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision VGG16 state dict (keys and shapes of ``vgg16-397923af.pth``)."""
    from ganbench.metrics.vgg16 import vgg16_official_shapes

    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in vgg16_official_shapes().items():
        if key.endswith("weight"):
            state[key] = _he_normal(shape, generator)
        else:
            state[key] = torch.randn(shape, generator=generator).mul_(0.01)
    return state


def make_seeded_inception_weights(path: str | os.PathLike, seed: int = 0) -> str:
    """Write :func:`seeded_inception_state_dict` to ``path`` (loadable with
    ``torch.load(weights_only=True)``); return the path."""
    torch.save(seeded_inception_state_dict(seed), str(path))
    return str(path)


def make_seeded_vgg16_weights(path: str | os.PathLike, seed: int = 0) -> str:
    """Write :func:`seeded_vgg16_state_dict` to ``path``; return the path."""
    torch.save(seeded_vgg16_state_dict(seed), str(path))
    return str(path)
