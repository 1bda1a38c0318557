"""What a metric and a feature extractor are, for the evaluation runner.

A **feature extractor** maps a batch of images (the image contract: uint8, N x 3 x H x W)
to named float32 feature tensors. Every extractor provides generic names so metrics do
not depend on a particular network:

* ``"pool"``   -- the embedding used for FID/KID/PR/density-coverage
                  (Inception-v3's 2048-d pool3, a LeNet's penultimate layer, ...)
* ``"logits"`` -- class logits used for the Inception Score (Inception: the
                  torch-fidelity ``logits_unbiased``)

Extractors may provide more names (e.g. VGG16's ``"fc2_relu"``).

A **metric** is a pure function of features. It declares the features it needs, from
which extractor (``None``: the run's extractor; a name: always that one, e.g. torch-
fidelity's precision/recall on VGG16), whether it needs reference features, which of
its outputs are better when higher, and a ``version`` bumped whenever its numbers could
change. The runner takes the union of what all requested metrics need, builds each
extractor once, and runs one pass over every input. A *paired* metric (``needs_targets``)
compares pixels instead: in the same pass the runner keeps the translated images and gives
them with their aligned ground-truth targets (paired translation / restoration datasets).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ganbench.registry import feature_extractors, metrics


class FeatureExtractor(nn.Module):
    """Base class: ``forward(images_uint8) -> {feature name: float32 (N, D)}``."""

    name: str = ""
    provides: tuple[str, ...] = ("pool",)
    input_size: int | None = None  # images are resized to this inside forward
    resize: str = ""  # how, for provenance ("tf1-bilinear", "bilinear", ...)
    weights_sha256: str | None = None  # sha256 of the weights file actually loaded
    weights_standard: bool = False  # True only for the official published weights

    def forward(self, images: torch.Tensor, features: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Provenance recorded with every number computed from these features."""
        return {
            "extractor": self.name,
            "weights_sha256": self.weights_sha256,
            "weights_standard": bool(self.weights_standard),
            "input_size": self.input_size,
            "resize": self.resize,
        }


def register_extractor(name: str, *, provides: tuple[str, ...], description: str = ""):
    """Register a factory ``build(weights=None, device="cpu") -> FeatureExtractor``."""
    return feature_extractors.register(name, provides=provides, description=description)


@dataclass(frozen=True)
class Metric:
    """A metric computed from features (see the module docstring)."""

    name: str
    compute: Callable[..., dict[str, float]]
    # compute(fake: {feature: Tensor (N, D)}, real: {feature: Tensor} | None,
    #         *, generator: torch.Generator, **options) -> {output key: value}
    # Output keys ending in "_std" are the standard deviation of the key before it.
    features: tuple[str, ...]  # feature names needed from the extractor
    higher_is_better: dict[str, bool]  # for every primary output key
    needs_reference: bool = True  # False for IS
    extractor: str | None = None  # None: the run's extractor; else always this one
    version: int = 1  # bump whenever the numbers could change
    defaults: dict[str, Any] = field(default_factory=dict)  # options and their defaults
    min_samples: Callable[[dict[str, Any]], int] = lambda options: 2  # per input
    description: str = ""
    needs_generator: bool = False  # PPL, LPIPS diversity: computed from the generator itself
    needs_labels: bool = False  # compute() also gets labels=: the class of each input image (or None)
    # paired metrics (L1, PSNR): compute() also gets outputs= and targets=, uint8 (N, 3, H, W): the
    # input's images (an image-conditioned generator's translations) and the ground truth of each
    needs_targets: bool = False


def register_metric(metric: Metric) -> Metric:
    metrics.register(metric.name, metric, higher_is_better=metric.higher_is_better,
                     description=metric.description)
    return metric
