"""Built-in GAN models. Each ``models/<paper>.py`` registers itself with
``@register_model`` (see :mod:`ganbench.models.base` for how to write one).

Every module in this package is imported when the model registry is first queried, so a
new model file needs no edit here.
"""
from __future__ import annotations

import importlib
import pkgutil

from ganbench.models.base import (  # noqa: F401  (the public model API)
    TASKS, Batch, GANModel, ModelConfig, ModelInfo, TrainContext, create_model, list_models,
    model_info, register_model, resolve_config,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base" and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")
