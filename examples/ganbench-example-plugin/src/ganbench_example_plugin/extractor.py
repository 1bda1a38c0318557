"""``example-pixels``: colour layout features -- each image average-pooled to 4 x 4 RGB,
scaled to [0, 1] (48-d ``pool`` features). No weights, so nothing to download."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ganbench.metrics.base import FeatureExtractor, register_extractor


class PixelExtractor(FeatureExtractor):
    name = "example-pixels"
    provides = ("pool",)
    input_size = 4
    resize = "adaptive-avg"
    weights_sha256 = None  # no weights
    weights_standard = False

    def forward(self, images: torch.Tensor, features=None) -> dict[str, torch.Tensor]:
        x = F.adaptive_avg_pool2d(images.float() / 255.0, self.input_size)
        return {"pool": x.flatten(1)}


@register_extractor("example-pixels", provides=("pool",), description="Example plug-in: 4x4 average colours")
def build(weights=None, device="cpu") -> PixelExtractor:
    return PixelExtractor().to(device)
