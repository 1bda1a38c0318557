"""Mean feature distance: the Euclidean distance between the mean features of the
generated and the real images (the first term of FID, without the covariances)."""
from __future__ import annotations

from typing import Any

import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, register_metric


def compute(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None, *,
            generator: torch.Generator | None = None, **options: Any) -> dict[str, float]:
    if real is None:
        raise InputError("example-mean-distance needs reference features")
    x, y = fake["pool"].double(), real["pool"].double()
    return {"mean_distance": float((x.mean(0) - y.mean(0)).norm())}


MEAN_DISTANCE = register_metric(Metric(
    name="example-mean-distance",
    compute=compute,
    features=("pool",),
    higher_is_better={"mean_distance": False},
    needs_reference=True,
    version=1,
    description="Example plug-in: distance between mean features of input and reference",
))
