"""ganbench: fair, reproducible benchmarking of generative adversarial networks.

The Python API lives in :mod:`ganbench.api`; its functions are also reachable as
``ganbench.evaluate``, ``ganbench.train`` etc. (imported on first use, so ``import
ganbench`` stays light).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = ("EvaluationResult", "evaluate", "list_models", "list_metrics", "list_datasets", "create_model", "train",
        "load_generator", "register_checkpoint", "unregister_checkpoint", "list_registered")


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module("ganbench.api"), name)
    raise AttributeError(f"module 'ganbench' has no attribute {name!r}")
