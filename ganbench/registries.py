"""The registry instances of ganbench (the only module-level state besides caches).

=====================  ================================  =============================
registry               built-in module                   entry-point group (plug-ins)
=====================  ================================  =============================
models                 ganbench.models                   ganbench.models
metrics                ganbench.metrics                  ganbench.metrics
feature_extractors     ganbench.metrics.extractors       ganbench.feature_extractors
datasets               ganbench.data                     ganbench.datasets
checkpoints            ganbench.thirdparty (user file)   --
=====================  ================================  =============================
"""
from __future__ import annotations

from ganbench.registry import Registry

models: Registry = Registry("model", ("ganbench.models",), "ganbench.models")
metrics: Registry = Registry("metric", ("ganbench.metrics",), "ganbench.metrics")
feature_extractors: Registry = Registry(
    "feature extractor", ("ganbench.metrics.extractors",), "ganbench.feature_extractors")
datasets: Registry = Registry("dataset", ("ganbench.data.builtin", "ganbench.translation"), "ganbench.datasets")
# Third-party generators registered with `ganbench register` (a user registry file).
checkpoints: Registry = Registry("registered generator", on_first_use="ganbench.thirdparty:refresh")
