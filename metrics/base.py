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
its outputs are better when higher (or lower), which are best at a value instead (C_T:
0, ranked by the distance to it), and a ``version`` bumped whenever its numbers could
change. The runner takes the union of what all requested metrics need, builds each
extractor once, and runs one pass over every input. A *paired* metric (``needs_targets``)
compares pixels instead: in the same pass the runner keeps the translated images and gives
them with their aligned ground-truth targets (paired translation / restoration datasets).
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ganbench.coercion import read_options
from ganbench.errors import GanbenchError
from ganbench.registry import feature_extractors, metrics
from ganbench.weights import WeightsFile


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


def register_extractor(name: str, *, provides: tuple[str, ...], description: str = "",
                       weights: WeightsFile | None = None):
    """Register a factory ``build(weights=None, device="cpu") -> FeatureExtractor``;
    ``weights``: the official file it resolves (``ganbench extractors`` lists it)."""
    extra = {} if weights is None else {"weights": weights}
    return feature_extractors.register(name, provides=provides, description=description, **extra)


def extractor_weights(name: str) -> WeightsFile | None:
    """The official weights file of the registered extractor ``name``, as given to
    :func:`register_extractor`; None when it has none (shipped weights, a plug-in that
    declares no file)."""
    feature_extractors.get(name)  # its module registers it, with its metadata
    return feature_extractors.metadata(name).get("weights")


@dataclass(frozen=True)
class MetricResult:
    """What one metric computed: its numbers and how it computed them.

    ``compute`` returns one of these, or, for a metric with nothing to add, a plain
    ``{output key: value}`` dict where a key ending in ``"_std"`` is the spread of the key
    before it (:meth:`of` reads both). ``result["kid"]`` and ``result["kid_std"]`` read
    the numbers back.
    """

    values: dict[str, float]  # output key -> value, e.g. {"kid": 0.01}
    stds: dict[str, float] = field(default_factory=dict)  # output key -> its spread (KID subsets, IS splits)
    # the network a metric ran itself (PPL's LPIPS), as FeatureExtractor.describe(); None: the run's extractor
    extractor: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # options it resolved itself (PPL space "auto" -> "w")
    interval: Any = None  # a ganbench.metrics.bootstrap.Interval when one was computed

    @classmethod
    def of(cls, output: "MetricResult | dict[str, float]") -> "MetricResult":
        if isinstance(output, MetricResult):
            return output
        stds = {k[:-4]: float(v) for k, v in output.items() if k.endswith("_std")}
        return cls({k: float(v) for k, v in output.items() if not k.endswith("_std")}, stds)

    def __getitem__(self, key: str) -> float:
        if key.endswith("_std") and key[:-4] in self.stds:
            return self.stds[key[:-4]]
        return self.values[key]


@dataclass(frozen=True)
class Metric:
    """A metric computed from features (see the module docstring)."""

    name: str
    compute: Callable[..., MetricResult | dict[str, float]]
    # compute(fake: {feature: Tensor (N, D)}, real: {feature: Tensor} | None,
    #         *, generator: torch.Generator, **options) -> MetricResult (or {output key: value})
    # Options arrive read as their types (see read_options).
    features: tuple[str, ...]  # feature names needed from the extractor
    higher_is_better: dict[str, bool]  # for every primary output key not in ``ideal``
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
    # a fast path for bootstrap intervals: replicates(fake, real, fake_indices, real_indices, generator,
    # **options) -> {output key: values (B,)}; None: compute() runs once per replicate
    # (ganbench.metrics.bootstrap)
    replicates: Callable[..., dict[str, Any]] | None = None
    interval: bool = True  # False: no bootstrap interval (fid-inf: a fit over subsets already)
    # output keys best at a value, neither higher nor lower (C_T: 0; < 0 copies, > 0 underfits):
    # ranked by |value - ideal|
    ideal: dict[str, float] = field(default_factory=dict)
    # the option naming the feature key compute reads instead of ``features`` (fd: "feature")
    feature_option: str | None = None

    def __post_init__(self):
        both = set(self.ideal) & set(self.higher_is_better)
        if both:
            raise GanbenchError(f"metric {self.name!r}: {sorted(both)} cannot both have an ideal value and "
                                f"be higher/lower-is-better")
        if self.feature_option is not None and self.feature_option not in self.defaults:
            raise GanbenchError(f"metric {self.name!r}: feature_option {self.feature_option!r} is not one of "
                                f"its options ({', '.join(self.defaults) or 'none'})")

    def direction(self, key: str) -> str:
        """How ``key`` ranks: "higher is better", "lower is better", "ideal 0" (best at 0,
        ranked by the distance to it), or "" for a key without a direction (a secondary output)."""
        if key in self.ideal:
            return f"ideal {self.ideal[key]:g}"
        if key in self.higher_is_better:
            return "higher is better" if self.higher_is_better[key] else "lower is better"
        return ""

    def features_for(self, options: dict[str, Any]) -> tuple[str, ...]:
        """The feature keys ``compute`` reads under ``options`` (as :meth:`read_options` gives
        them): ``features``, or the one key the ``feature_option`` option names."""
        if self.feature_option is None:
            return self.features
        return (str(options[self.feature_option]),)

    def read_options(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every option of this metric: ``defaults`` overridden by ``given`` (text from the
        command line or values), each read as the type ``compute`` annotates it with
        (else its default's type). Unknown names raise with the valid ones."""
        return read_options(f"metric {self.name!r}", given or {}, self.defaults, _option_hints(self.compute))


# what the runner passes to compute itself; every other keyword-only parameter is an option
# (ganbench.evaluation.compute_metric: inputs and features_of to computes that name them, reference_labels
# to those that name it, as intra-FID does)
RUNNER_ARGUMENTS = frozenset({"generator", "device", "batch_size", "weights", "labels", "outputs", "targets",
                              "inputs", "features_of", "reference_labels"})


def keyword_defaults(compute: Callable) -> dict[str, Any]:
    """The options of ``compute`` and their defaults, read off its keyword-only parameters
    (those the runner passes excepted), so that a metric declares them once:
    ``Metric(..., defaults=keyword_defaults(compute_ppl))``."""
    return {p.name: p.default for p in inspect.signature(compute).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.default is not p.empty and p.name not in RUNNER_ARGUMENTS}


def _option_hints(compute: Callable) -> dict[str, Any]:
    """The type annotations of ``compute``'s keyword-only parameters (its options)."""
    try:
        hints = typing.get_type_hints(compute)
    except Exception:  # noqa: BLE001 -- evaluating a plug-in's annotations can raise anything: use the defaults' types
        return {}
    keyword_only = [p.name for p in inspect.signature(compute).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return {name: hints[name] for name in keyword_only if name in hints}


def register_metric(metric: Metric) -> Metric:
    metrics.register(metric.name, metric, higher_is_better=metric.higher_is_better, ideal=metric.ideal,
                     description=metric.description)
    return metric
