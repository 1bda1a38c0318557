"""ganbench: fair, reproducible benchmarking of generative adversarial networks.

The Python API lives in :mod:`ganbench.api`; its functions are also reachable as
``ganbench.evaluate``, ``ganbench.train`` etc. (imported on first use, so ``import
ganbench`` stays light).
"""
from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    from ganbench import api

    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'ganbench' has no attribute {name!r}")
