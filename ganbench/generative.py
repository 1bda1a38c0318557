"""The seam between generators and evaluation.

A generator -- a built-in model, a third-party checkpoint, a TorchScript or ONNX file --
is evaluated through :class:`GenerativeModel`: a latent description plus
``generate(z, labels)`` returning float images in ``latent.output_range``. Metrics that
walk the latent space (PPL) also use ``mapping``/``synthesis`` when a model has them.

Image-conditioned generators (translation, restoration) are
:class:`ConditionalImageGenerator`: ``translate(source, z)`` instead of ``generate``;
evaluation translates the source images of a paired dataset split (see
:class:`ganbench.sources.TranslationSource`).
"""
from __future__ import annotations

from dataclasses import dataclass, asdict
from typing import Any

import torch
from torch import nn

from ganbench.errors import GanbenchError, InputError


@dataclass(frozen=True)
class LatentSpec:
    """How to drive a generator."""

    z_dim: int  # length of the noise vector z
    z_dist: str = "normal"  # "normal" (N(0, I)) or "uniform" (U(-1, 1))
    num_classes: int = 0  # > 0 for class-conditional generators (labels 0..num_classes-1)
    output_range: tuple[float, float] = (-1.0, 1.0)  # value range of generate()'s output
    channels: int = 3  # image channels the generator produces (1 or 3)
    image_size: int | None = None  # output height = width, when fixed
    source_channels: int = 0  # > 0 for image-conditioned generators: channels of the source image

    def __post_init__(self):
        if self.z_dist not in ("normal", "uniform"):
            raise GanbenchError(f"z_dist must be 'normal' or 'uniform', got {self.z_dist!r}")
        # image-conditioned generators may take no z at all (pix2pix: dropout is the noise)
        if self.z_dim < 0 or (self.z_dim == 0 and self.source_channels <= 0):
            raise GanbenchError(f"z_dim must be positive, got {self.z_dim}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["output_range"] = list(self.output_range)
        if not self.source_channels:  # noise-driven generators serialise exactly as before the field existed
            del d["source_channels"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LatentSpec":
        d = dict(d)
        d["output_range"] = tuple(d.get("output_range", (-1.0, 1.0)))
        return cls(**d)


def sample_latents(latent: LatentSpec, n: int, generator: torch.Generator,
                   device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Draw ``n`` latents (and uniform class labels for conditional models), seeded.

    Sampling happens on the CPU so a seed gives the same latents on every device.
    """
    if latent.z_dist == "normal":
        z = torch.randn(n, latent.z_dim, generator=generator)
    else:
        z = torch.rand(n, latent.z_dim, generator=generator) * 2 - 1
    labels = None
    if latent.num_classes:
        labels = torch.randint(0, latent.num_classes, (n,), generator=generator)
        labels = labels.to(device)
    return z.to(device), labels


class GenerativeModel(nn.Module):
    """Base class for anything ganbench can sample images from.

    Subclasses implement :meth:`generate`. Models with a mapping network (StyleGAN-like)
    also implement :meth:`mapping` and :meth:`synthesis` so PPL can use w space.
    """

    latent: LatentSpec

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generate(z, labels)

    has_mapping: bool = False

    def mapping(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no mapping network")

    def synthesis(self, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no mapping network")


class ConditionalImageGenerator(GenerativeModel):
    """A generator driven by a source image: translation (pix2pix, CycleGAN) or restoration.

    Subclasses implement :meth:`translate`. ``latent`` describes the output (channels,
    size, range) and the input (``source_channels``); ``z_dim`` is 0 when the source is
    the only input. ``source_dataset`` names the paired dataset it translates from (set by
    the training loop and by :func:`ganbench.checkpoints.load_generator`); evaluation
    translates that dataset's test split unless told another source.
    """

    source_dataset: str | None = None

    def translate(self, source: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Float source images (N, source_channels, H, W) in ``output_range`` -> float
        images (N, channels, H, W) in ``output_range``."""
        raise NotImplementedError

    def forward(self, source: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return self.translate(source, z)

    def generate(self, z, labels=None):
        dataset = self.source_dataset or "DATASET"
        raise InputError(f"{type(self).__name__} translates source images and cannot sample from noise alone: "
                         f"evaluate it with a source (ganbench eval ... --source {dataset}:test) or call "
                         f"translate(source_images)")


class ModuleGenerator(GenerativeModel):
    """Wrap a plain ``nn.Module`` (``module(z)`` or ``module(z, labels)``) as a GenerativeModel."""

    def __init__(self, module: nn.Module | Any, latent: LatentSpec):
        super().__init__()
        self.module = module
        self.latent = latent

    def generate(self, z, labels=None):
        if self.latent.num_classes:
            if labels is None:
                raise InputError("this generator is class-conditional and needs labels")
            return self.module(z, labels)
        return self.module(z)


def check_generated(images: torch.Tensor, latent: LatentSpec, n: int, *, what: str = "generator") -> None:
    """One-line errors for generator outputs that cannot be evaluated."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{what} returned {type(images).__name__}, expected a tensor of images")
    if images.dim() != 4 or images.shape[0] != n:
        raise InputError(f"{what} returned shape {tuple(images.shape)}, expected ({n}, C, H, W)")
    if images.shape[1] != latent.channels:
        raise InputError(f"{what} returned {images.shape[1]} channels, declared {latent.channels}")
    if latent.image_size and tuple(images.shape[2:]) != (latent.image_size, latent.image_size):
        raise InputError(f"{what} returned {tuple(images.shape[2:])} images, declared "
                         f"{latent.image_size}x{latent.image_size}")
    if images.dtype == torch.uint8:
        return
    if not torch.isfinite(images).all():
        raise InputError(f"{what} produced NaN/Inf values")
    lo, hi = latent.output_range
    tol = 1e-3 * (hi - lo)
    mn, mx = images.min().item(), images.max().item()
    if mn < lo - tol or mx > hi + tol:
        raise InputError(f"{what} output range [{mn:.4g}, {mx:.4g}] lies outside the declared "
                         f"output range [{lo:g}, {hi:g}]")
