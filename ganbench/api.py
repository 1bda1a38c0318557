"""The public Python surface of ganbench. The CLI calls these and nothing else.

    >>> import ganbench.api as gb
    >>> gb.list_models()
    >>> result = gb.evaluate("samples/", "mnist:test", metrics=["fid", "kid"], extractor="lenet-mnist")
"""
from __future__ import annotations

from typing import Any

from ganbench.evaluation import EvaluationResult, evaluate  # noqa: F401  (re-exported)


def list_models(pattern: str | None = None) -> list[str]:
    """Names of registered models (built-in and plug-ins), optionally filtered (``"*gan*"``)."""
    from ganbench.registry import models

    return models.names(pattern)


def list_metrics() -> list[str]:
    from ganbench.registry import metrics

    return metrics.names()


def list_datasets() -> list[str]:
    from ganbench.registry import datasets

    return datasets.names()


def create_model(name: str, dataset: str = "mnist", **overrides: Any):
    """Build a registered model with its paper defaults for ``dataset`` (overrides win)."""
    from ganbench.models import create_model as _create

    return _create(name, dataset=dataset, **overrides)


def train(model: str, dataset: str, **kwargs: Any):
    """Train ``model`` on ``dataset`` with the one training loop (see ganbench.training)."""
    from ganbench.training import train as _train

    return _train(model, dataset, **kwargs)


def load_generator(path: str):
    """(GenerativeModel, metadata) from a ganbench checkpoint (safetensors + JSON sidecar)."""
    from ganbench.checkpoints import load_generator as _load

    return _load(path)


def register_checkpoint(name: str, **kwargs: Any):
    """Register a third-party generator (see ``ganbench register --help``)."""
    from ganbench.thirdparty import register_checkpoint as _register

    return _register(name, **kwargs)


def unregister_checkpoint(name: str) -> None:
    """Remove a registered third-party generator (its file is kept)."""
    from ganbench.thirdparty import unregister_checkpoint as _unregister

    _unregister(name)


def list_registered() -> list[dict[str, Any]]:
    """The registered third-party generators (name, format, dataset, z_dim, ..., third_party=True)."""
    from ganbench.thirdparty import list_registered as _list

    return _list()


def sample(input: Any, **options: Any) -> list:
    """Draw the samples ``evaluate`` would score for the same seed and write them as a grid,
    PNG files or an .npz (:func:`ganbench.sampling.sample`: grid=, out=, npz=, num_samples=,
    seed=, truncation=, interpolate=, classes=, ...); the paths written."""
    from ganbench.sampling import sample as _sample

    return _sample(input, **options)


def compare(a: Any, b: Any, reference: Any = None, metrics=("fid",), **options: Any):
    """Whether ``a`` and ``b`` differ on each metric, with paired-bootstrap intervals
    (:func:`ganbench.comparison.compare`)."""
    from ganbench.comparison import compare as _compare

    return _compare(a, b, reference, metrics, **options)


__all__ = ["EvaluationResult", "evaluate", "list_models", "list_metrics", "list_datasets", "create_model",
           "train", "load_generator", "register_checkpoint", "unregister_checkpoint", "list_registered", "sample",
           "compare"]
