"""The evaluation runner: plan, one feature pass, every metric, rows.

    >>> from ganbench.evaluation import evaluate
    >>> result = evaluate("runs/dcgan/checkpoint.safetensors", "mnist:test",
    ...                   metrics=["fid", "kid", "pr"], extractor="lenet-mnist", num_samples=10_000)
    >>> result.value("fid")

:func:`evaluate` reads top to bottom: :func:`make_plan` validates the metrics, their options
and the extractors they need before any image is read; :func:`build_extractors` builds each
extractor once; :func:`extract_features` reads each input once (every batch goes through every
extractor, :func:`ganbench.features.extract`); :func:`compute_metric` gives each metric's
:class:`MetricResult`; :func:`metric_rows` turns it into result-store rows carrying their
protocol (extractor, weights sha256,
preprocessing, sample counts, reference, metric version and options; a bf16 feature pass),
so numbers computed under different protocols are never ranked together.

Under ``torchrun`` the caller starts the process group (the CLI does, with
:func:`ganbench.features.join_process_group`); the feature pass then shards its batches.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import subprocess
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import torch

import ganbench
from ganbench.errors import GanbenchError, InputError
from ganbench.features import STANDARD_PRECISION, Extractors, check_precision, distributed, extract
from ganbench.leaderboards.store import canonical_json, make_protocol, new_run_id, utc_now
from ganbench.metrics.base import Metric, MetricResult
from ganbench.metrics.bootstrap import DEFAULT_LEVEL, DEFAULT_REPLICATES, bootstrap_interval
from ganbench.metrics.bootstrap import check_settings as check_bootstrap
from ganbench.registry import feature_extractors, metrics as metric_registry
from ganbench.sources import ImageSource, limit, resolve_source

DEFAULT_EXTRACTOR = "inception-v3-compat"
DEFAULT_GENERATOR_SAMPLES = 10_000
# provenance of a metric computed on pixels (L1, PSNR): no network, no weights to be non-standard
PIXEL_EXTRACTOR = {"extractor": "pixels", "weights_sha256": None, "weights_standard": True, "resize": ""}


@dataclass
class EvaluationResult:
    """All numbers of one evaluation, as result-store rows (one per output key)."""

    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def value(self, key: str) -> float:
        for row in self.rows:
            if row["key"] == key:
                return row["value"]
        raise KeyError(f"no result {key!r}; have {[r['key'] for r in self.rows]}")

    def std(self, key: str) -> float | None:
        return next(r["std"] for r in self.rows if r["key"] == key)

    @property
    def values(self) -> dict[str, float]:
        return {r["key"]: r["value"] for r in self.rows}

    @property
    def standard(self) -> bool:
        """True when every number was computed with official weights."""
        return all(r["weights_standard"] for r in self.rows)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def record(self, store=None) -> None:
        """Append the rows to the results store (default: ``$GANBENCH_RESULTS``)."""
        from ganbench.leaderboards.store import open_store

        open_store(store).append(self.rows)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# -- the plan --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedMetric:
    """One requested metric with its options read and the extractor whose features it uses."""

    metric: Metric
    options: dict[str, Any]  # every option, read as its type (Metric.read_options)
    extractor: str | None  # None: it needs no extractor (pixels, or the generator itself)

    @property
    def name(self) -> str:
        return self.metric.name


@dataclass(frozen=True)
class Plan:
    """What one evaluation computes, validated before any image is read."""

    metrics: tuple[PlannedMetric, ...]

    @property
    def needs_reference(self) -> bool:
        return any(m.metric.needs_reference for m in self.metrics)

    @property
    def needs_targets(self) -> bool:
        return any(m.metric.needs_targets for m in self.metrics)

    def features(self, *, reference: bool = False) -> dict[str, set[str]]:
        """{extractor: the union of the features its metrics need} (of the reference: only
        those of metrics that compare with it)."""
        wanted: dict[str, set[str]] = {}
        for m in self.metrics:
            if m.extractor and (m.metric.needs_reference or not reference):
                wanted.setdefault(m.extractor, set()).update(m.metric.features_for(m.options))
        return wanted


def make_plan(names: Iterable[str], options: dict[str, dict[str, Any]] | None,
              extractor: str = DEFAULT_EXTRACTOR) -> Plan:
    """The requested metrics (duplicates dropped), each with its options read and the
    extractor it reads; unknown metrics or extractors, options for metrics not requested
    and unknown options raise."""
    names, options = list(dict.fromkeys(names)), options or {}
    if not names:
        raise GanbenchError("no metric requested; choose from: " + ", ".join(metric_registry.names()))
    for unknown in set(options) - set(names):
        raise GanbenchError(f"options given for metric {unknown!r}, which was not requested")
    planned = []
    for name in names:
        metric = metric_registry.get(name)
        uses = (metric.extractor or extractor) if metric.features else None
        if uses is not None:
            feature_extractors.get(uses)  # an unknown name fails here, before any image is read
        planned.append(PlannedMetric(metric, metric.read_options(options.get(name)), uses))
    return Plan(tuple(planned))


# -- the inputs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    """The images of one evaluation."""

    fake: ImageSource  # what is evaluated
    real: ImageSource | None  # the reference, when a metric needs one
    targets: torch.Tensor | None  # uint8 (N, 3, H, W) ground truth of each translation (paired metrics)


def resolve_inputs(plan: Plan, input: Any, reference: Any, *, num_samples: int | None,
                   num_reference: int | None, seed: int, device: str, source: str | None) -> Inputs:
    fake = resolve_source(input, num_samples=DEFAULT_GENERATOR_SAMPLES if num_samples is None else num_samples,
                          seed=seed, device=device, source=source)
    fake = limit(fake, num_samples)
    real = None
    if plan.needs_reference:
        if reference is None:
            which = ", ".join(m.name for m in plan.metrics if m.metric.needs_reference)
            raise InputError(f"{which} need(s) a reference: pass --reference (e.g. mnist:test)")
        real = limit(resolve_source(reference, num_samples=num_reference, seed=seed + 1, device=device),
                     num_reference)
    return Inputs(fake, real, fake.paired_targets() if plan.needs_targets else None)


def check_inputs(plan: Plan, inputs: Inputs) -> None:
    """Refuse inputs a metric cannot use: too few samples, no generator, no ground truth."""
    for m in plan.metrics:
        _check_sample_counts(m, inputs)
        _check_input_kind(m.metric, inputs)


def _check_sample_counts(m: PlannedMetric, inputs: Inputs) -> None:
    need = m.metric.min_samples(m.options)
    sides = ([] if m.metric.needs_generator else [("input", inputs.fake)]) + (
        [("reference", inputs.real)] if m.metric.needs_reference else [])
    for side, src in sides:
        if src is not None and len(src) < need:
            raise InputError(f"{m.name} needs at least {need} samples per input but the {side} "
                             f"has {len(src)}; give more samples or lower its options ({_opts_text(m.options)})")


def _check_input_kind(metric: Metric, inputs: Inputs) -> None:
    fake, translated = inputs.fake, inputs.fake.provenance().get("translation_source")
    if metric.needs_generator and translated is not None:
        raise InputError(f"{metric.name} samples a generator from noise; an image-conditioned generator is "
                         f"evaluated on its translations (fid, kid, pr, ...)")
    if metric.needs_generator and not fake.is_generator:
        raise InputError(f"{metric.name} samples the generator itself: the input must be a generator "
                         f"(checkpoint or registered name), not {fake.descriptor!r}")
    if takes_reference_labels(metric) and inputs.real is not None and inputs.real.class_labels() is None:
        raise InputError(f"{metric.name} needs the class of every reference image: the reference "
                         f"{inputs.real.descriptor!r} has none; use a labelled dataset split such as mnist:test")
    if metric.needs_targets and inputs.targets is None and translated is None:
        raise InputError(f"{metric.name} compares each output with its ground truth: the input must be an "
                         f"image-conditioned generator (pix2pix, CycleGAN, GPEN) translating a paired "
                         f"dataset split, not {fake.descriptor!r}")
    if metric.needs_targets and inputs.targets is None:
        raise InputError(f"{metric.name} compares each translation with its ground truth, but the source "
                         f"{translated!r} has none: use a paired split, e.g. --source mnist-edges:test")


# -- the one feature pass ----------------------------------------------------------------------
def build_extractors(plan: Plan, *, extractor: str, weights: Any, extra_weights: dict[str, Any],
                     device: str) -> Extractors:
    """Each extractor the plan needs, built once, checked to give the features asked of it."""
    modules: Extractors = {}
    for name, feats in plan.features().items():
        path = weights if name == extractor else extra_weights.get(name)
        module = feature_extractors.get(name)(weights=path, device=device)
        missing = set(feats) - set(module.provides)
        if missing:
            users = [m.name for m in plan.metrics
                     if m.extractor == name and set(m.metric.features_for(m.options)) & missing]
            raise GanbenchError(f"extractor {name!r} does not provide {sorted(missing)} needed by "
                                f"{', '.join(users)} (it provides {list(module.provides)})")
        modules[name] = (module, tuple(sorted(feats)))
    return modules


@dataclass(frozen=True)
class Features:
    """What the one pass gave: {extractor: {feature: float32 (N, D)}} per input, and the
    input's own images when paired metrics compare them with their targets."""

    fake: dict[str, dict[str, torch.Tensor]]
    real: dict[str, dict[str, torch.Tensor]]
    outputs: torch.Tensor | None  # uint8 (N, 3, H, W), aligned with Inputs.targets


def extract_features(plan: Plan, inputs: Inputs, modules: Extractors, *, batch_size: int, device: str,
                     use_cache: bool, progress: bool, precision: str = STANDARD_PRECISION) -> Features:
    real_modules = {name: modules[name] for name in plan.features(reference=True)}
    keep = plan.needs_targets
    _check_memory([(inputs.fake, modules, keep), (inputs.real, real_modules, False)], device)
    if not (modules or keep):
        return Features({}, {}, None)
    common = dict(batch_size=batch_size, device=device, use_cache=use_cache, progress=progress, precision=precision)
    fake = extract(inputs.fake, modules, label="input", keep_images=keep, **common)
    real = {} if inputs.real is None else extract(inputs.real, real_modules, label="reference", **common).features
    return Features(fake.features, real, fake.images)


# -- the metrics --------------------------------------------------------------------------------
def compute_metric(m: PlannedMetric, inputs: Inputs, features: Features, modules: Extractors, *, seed: int,
                   device: str, batch_size: int, extra_weights: dict[str, Any], use_cache: bool = True,
                   progress: bool = True, precision: str = STANDARD_PRECISION) -> MetricResult:
    """One metric's result, its ``extractor`` provenance filled in."""
    metric, generator = m.metric, torch.Generator().manual_seed(seed)
    if metric.needs_generator:
        out = MetricResult.of(metric.compute(inputs.fake.model, generator=generator, device=device,
                                             batch_size=batch_size, weights=extra_weights.get(m.name), **m.options))
        unknown = {"extractor": m.name, "weights_sha256": None, "weights_standard": False, "input_size": None,
                   "resize": ""}  # a metric that does not say which network it ran
        return out if out.extractor else replace(out, extractor=unknown)
    extra: dict[str, Any] = class_label_arguments(metric, inputs)
    if metric.needs_targets:
        extra.update(outputs=features.outputs, targets=inputs.targets)
    extra.update(_asked_for(m, inputs, modules, device=device, batch_size=batch_size, use_cache=use_cache,
                            progress=progress, precision=precision))
    if m.extractor is None:  # pixel-space metrics (or CAS, which trains its own classifier and says so)
        out = MetricResult.of(metric.compute({}, None, generator=generator, **extra, **m.options))
        pixels = {**PIXEL_EXTRACTOR, "input_size": _size(inputs.targets)}
        return out if out.extractor else replace(out, extractor=pixels)
    real = features.real.get(m.extractor) if metric.needs_reference else None
    out = MetricResult.of(metric.compute(features.fake[m.extractor], real, generator=generator, **extra,
                                         **m.options))
    return replace(out, extractor=modules[m.extractor][0].describe())


def takes_reference_labels(metric: Metric) -> bool:
    """Whether a metric's ``compute`` names ``reference_labels`` (intra-FID: the class of
    each reference image)."""
    return "reference_labels" in inspect.signature(metric.compute).parameters


def class_label_arguments(metric: Metric, inputs: Inputs) -> dict[str, torch.Tensor | None]:
    """The class labels a metric takes: ``labels`` (of the input's images) when it needs
    them, ``reference_labels`` (of the reference's) when its ``compute`` names them."""
    given = {"labels": inputs.fake.class_labels()} if metric.needs_labels else {}
    if takes_reference_labels(metric):
        given["reference_labels"] = None if inputs.real is None else inputs.real.class_labels()
    return given


def _asked_for(m: PlannedMetric, inputs: Inputs, modules: Extractors, *, device: str, batch_size: int,
               use_cache: bool, progress: bool, precision: str = STANDARD_PRECISION) -> dict[str, Any]:
    """What a metric reading more than the pass's features names in its ``compute``: ``inputs``
    (the Inputs: CAS trains on the input's images), ``features_of`` (a source's features through
    the metric's extractor: C_T's training split) and ``device``."""
    asked = inspect.signature(m.metric.compute).parameters
    given: dict[str, Any] = {"device": device} if "device" in asked else {}
    if "inputs" in asked:
        given["inputs"] = inputs
    if "features_of" in asked:
        module = {m.extractor: modules[m.extractor]}
        given["features_of"] = lambda source: extract(source, module, batch_size=batch_size, device=device,
                                                      use_cache=use_cache, progress=progress, precision=precision,
                                                      label=source.descriptor).features[m.extractor]
    return given


def _size(images: torch.Tensor | None) -> int | None:
    return None if images is None else images.shape[-1]


def bootstrap_metric(m: PlannedMetric, result: MetricResult, inputs: Inputs, features: Features, *,
                     replicates: int, level: float, seed: int) -> MetricResult:
    """``result`` with its confidence interval (:mod:`ganbench.metrics.bootstrap`) when the
    metric is a function of the one pass's features; the others (PPL, LPIPS diversity,
    pixel metrics) are returned as they are. A replicate that cannot be computed (too few
    samples in a half for the metric's options) leaves the metric without an interval,
    with a warning."""
    metric = m.metric
    if not (replicates and metric.interval) or m.extractor is None or metric.needs_generator or metric.needs_targets:
        return result
    real = features.real.get(m.extractor) if metric.needs_reference else None
    try:
        interval = bootstrap_interval(result.values, metric.replicates, metric.compute, features.fake[m.extractor],
                                      real, replicates=replicates, level=level, seed=seed + 7919,
                                      options=m.options, **class_label_arguments(metric, inputs))
    except InputError as exc:
        warnings.warn(f"no confidence interval for {m.name}: {exc}", stacklevel=2)
        return result
    return replace(result, interval=interval)


# -- the rows ---------------------------------------------------------------------------------
def metric_rows(m: PlannedMetric, result: MetricResult, inputs: Inputs, common: dict[str, Any],
                precision: str = STANDARD_PRECISION) -> list[dict]:
    """One result-store row per output key of ``result``."""
    ext, metric = result.extractor, m.metric
    reference = _reference_fields(metric, inputs, common)
    interval = result.interval
    protocol, protocol_id = make_protocol(
        metric=m.name, metric_version=metric.version, options={**m.options, **result.options},
        **({"interval": interval.describe()} if interval is not None else {}),
        **({"ideal": metric.ideal} if metric.ideal else {}),
        extractor=ext["extractor"], weights_sha256=ext["weights_sha256"], input_size=ext.get("input_size"),
        resize=ext.get("resize"), num_samples=len(inputs.fake), **reference, **_source_fields(metric, inputs),
        **_precision_fields(m, precision))
    row_dataset = _targets_dataset(inputs) if metric.needs_targets else {}
    return [{**common, **row_dataset, "metric": m.name, "key": key, "value": float(value),
             "std": result.stds.get(key), "higher_is_better": bool(metric.higher_is_better.get(key, False)),
             "ci_low": None if interval is None else interval.low.get(key),
             "ci_high": None if interval is None else interval.high.get(key),
             "num_reference": reference["num_reference"], "extractor": ext["extractor"],
             "weights_sha256": ext["weights_sha256"], "weights_standard": bool(ext["weights_standard"]),
             "protocol": protocol, "protocol_id": protocol_id}
            for key, value in result.values.items()]


def _precision_fields(m: PlannedMetric, precision: str) -> dict[str, Any]:
    """A bf16 feature pass, in the protocol of the metrics that read its features: marked
    non-standard (``weights_standard`` stays a fact about the weights). The standard pass
    (float32, TF32 off) adds nothing, so its protocol ids stay those of every float32 number
    recorded before there was a choice."""
    if precision == STANDARD_PRECISION or m.extractor is None or m.metric.needs_generator:
        return {}
    return {"precision": precision, "tf32": False, "precision_standard": False}


def _reference_fields(metric: Metric, inputs: Inputs, common: dict[str, Any]) -> dict[str, Any]:
    real = inputs.real if metric.needs_reference else None
    return {"reference": common["dataset"] if metric.needs_reference else None,
            "reference_content": None if real is None else (real.content_key() or "")[:16],
            "num_reference": None if real is None else len(real)}


def _source_fields(metric: Metric, inputs: Inputs) -> dict[str, Any]:
    """What an image-conditioned generator translated, and the ground truth paired metrics used."""
    prov = inputs.fake.provenance()
    if "translation_source" not in prov:
        return {}
    fields = {"source": prov["translation_source"], "source_content": prov["translation_source_content"]}
    if metric.needs_targets:
        fields.update(targets=prov["translation_source"], targets_content=_tensor_digest(inputs.targets))
    return fields


def _targets_dataset(inputs: Inputs) -> dict[str, Any]:
    """Paired metrics are scored against the source split's own ground truth: its dataset."""
    dataset, _, split = inputs.fake.provenance()["translation_source"].partition(":")
    return {"dataset": dataset, "split": split or None}


def common_fields(inputs: Inputs, *, seed: int, device: str, model_name: str | None,
                  tags: dict[str, Any] | None) -> dict[str, Any]:
    """The columns every row of one evaluation shares."""
    fake, real = inputs.fake, inputs.real
    prov = fake.provenance()
    # the dataset a row belongs to: the reference's, else the model's training data
    dataset, split = (real.descriptor if real is not None else prov.get("dataset") or "unspecified"), None
    if dataset and ":" in dataset and not os.path.exists(dataset):
        dataset, split = dataset.split(":", 1)
    return {
        "run_id": new_run_id(), "timestamp": utc_now(),
        "model": model_name or prov.get("model") or fake.descriptor,
        "checkpoint_sha256": prov.get("checkpoint_sha256"), "step": prov.get("step"),
        "third_party": bool(prov.get("third_party", False)),
        "dataset": dataset, "split": split, "num_samples": len(fake), "seed": seed,
        "ganbench_version": ganbench.__version__, "git_commit": _git_commit(), "torch_version": torch.__version__,
        "device": device if not device.startswith("cuda") else f"{device} ({torch.cuda.get_device_name()})",
        "source": fake.descriptor, "tags": canonical_json(tags or {}),
        "training": canonical_json(prov["training"]) if prov.get("training") else None,
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(ganbench.__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


# -- the runner --------------------------------------------------------------------------------
def evaluate(
    input: Any,
    reference: Any = None,
    metrics: Iterable[str] = ("fid",),
    *,
    extractor: str = DEFAULT_EXTRACTOR,
    weights: str | os.PathLike | None = None,
    extra_weights: dict[str, str] | None = None,
    num_samples: int | None = None,
    num_reference: int | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    batch_size: int = 64,
    device: str | None = None,
    seed: int = 0,
    use_cache: bool = True,
    progress: bool = True,
    record: bool = False,
    model_name: str | None = None,
    tags: dict[str, Any] | None = None,
    source: str | None = None,
    bootstrap: int = DEFAULT_REPLICATES,
    ci: float = DEFAULT_LEVEL,
    save_features: str | os.PathLike | None = None,
    precision: str = STANDARD_PRECISION,
) -> EvaluationResult:
    """Evaluate ``input`` against ``reference`` with every requested metric in one pass.

    Args:
        input: what to evaluate: folder, .npz/.npy, ``dataset:split``, checkpoint,
            registered generator name, GenerativeModel, Dataset or uint8 array.
        reference: the real data (same kinds of input); needed by FID, KID, PR, ...
        metrics: metric names (``ganbench metrics`` lists them).
        extractor: feature extractor for metrics that use the run's extractor.
        weights: weights file for ``extractor`` (else resolved offline/online).
        extra_weights: {extractor name: path} for fixed extractors (e.g. "vgg16").
        num_samples: samples drawn from a generator (default 10,000), or the first N
            images of a finite input (default: all).
        num_reference: the first N reference images (default: all).
        options: {metric: {option: value}} overriding metric defaults (text is read as
            each option's type).
        device: cpu, cuda, cuda:N or mps (default: cuda when available).
        seed: seeds generator latents and the metrics' own randomness (KID subsets).
        record: append the rows to the results store. When it cannot be written, the
            GanbenchError raised carries the result as ``.result``.
        source: for an image-conditioned generator (pix2pix, GPEN...), the images it
            translates: a paired dataset split (default: the test split of the dataset it
            was trained on) or a folder/.npz of source images. Recorded in the protocol.
            Paired metrics (``l1``, ``psnr``) compare each translation with its ground
            truth, which only a paired dataset split has.
        bootstrap: replicates of the confidence interval of every feature-based metric
            (0: none); :mod:`ganbench.metrics.bootstrap`.
        ci: the interval's level (0.95: 95 %).
        save_features: write the pass's features to this new file (:mod:`ganbench.archives`),
            for later comparisons without the generator.
        precision: the feature extractors' arithmetic: "float32" (TF32 off; the standard
            protocol) or "bf16" (autocast; recorded in the protocol as non-standard).

    Under ``torchrun``, start the process group first (:func:`ganbench.features.join_process_group`).
    """
    from ganbench.training import resolve_device  # the one device check

    started = time.perf_counter()
    device = str(resolve_device(device or default_device()))
    extra_weights = dict(extra_weights or {})
    if bootstrap:
        check_bootstrap(bootstrap, ci)
    check_precision(precision)
    if save_features is not None and Path(save_features).exists():
        raise InputError(f"{str(save_features)!r} exists: feature archives are never overwritten")
    if save_features is not None and precision != STANDARD_PRECISION:
        raise InputError(f"feature archives hold float32 features: drop --save-features or --precision {precision}")
    plan = make_plan(metrics, options, extractor)
    inputs = resolve_inputs(plan, input, reference, num_samples=num_samples, num_reference=num_reference,
                            seed=seed, device=device, source=source)
    check_inputs(plan, inputs)
    modules = build_extractors(plan, extractor=extractor, weights=weights, extra_weights=extra_weights,
                               device=device)
    features = extract_features(plan, inputs, modules, batch_size=batch_size, device=device,
                                use_cache=use_cache, progress=progress, precision=precision)
    if save_features is not None:
        from ganbench.archives import save_features as write_archive

        write_archive(save_features, features, inputs, modules, seed=seed)
    common = common_fields(inputs, seed=seed, device=device, model_name=model_name, tags=tags)
    rows: list[dict[str, Any]] = []
    for m in plan.metrics:
        computed = compute_metric(m, inputs, features, modules, seed=seed, device=device, batch_size=batch_size,
                                  extra_weights=extra_weights, use_cache=use_cache, progress=progress,
                                  precision=precision)
        computed = bootstrap_metric(m, computed, inputs, features, replicates=bootstrap, level=ci, seed=seed)
        rows += metric_rows(m, computed, inputs, common, precision)
    wall_time_s = round(time.perf_counter() - started, 3)
    result = EvaluationResult([{**row, "wall_time_s": wall_time_s} for row in rows])
    if not result.standard:
        result.warnings.append("non-standard weights: these numbers are not comparable with published ones")
    if precision != STANDARD_PRECISION:
        result.warnings.append(f"{precision} feature pass: non-standard numbers, ranked apart from float32 ones")
    if record and distributed()[0] == 0:
        try:
            result.record()
        except GanbenchError as exc:
            exc.result = result  # the numbers outlive a store that cannot be written
            raise
    return result


@torch.inference_mode()
def _check_memory(passes: list[tuple[ImageSource | None, dict[str, Any], bool]], device: str) -> None:
    """Refuse up front a feature pass whose results would not fit in memory.

    ``passes``: (source or None, {extractor: (module, features)}, keep_images) per input,
    the input first, whose modules are a superset. :func:`~ganbench.features.extract`
    holds float32 features twice over (the batches, then their concatenation) and the
    images when kept; feature sizes come from one blank image of the input's size.
    """
    (fake, modules, keeps_images), have = passes[0], available_memory()
    if have is None or not (modules or keeps_images):
        return
    probe = torch.zeros((1, *fake.image_shape()), dtype=torch.uint8, device=device)
    feature_bytes = {name: 4 * sum(out[f][0].numel() for f in feats)
                     for name, (module, feats) in modules.items() for out in [module(probe, feats)]}
    need = sum(2 * len(src) * (sum(feature_bytes[n] for n in mods) + (probe[0].numel() if keep else 0))
               for src, mods, keep in passes if src is not None)
    if need > have:
        sizes = " + ".join(str(len(src)) for src, _, _ in passes if src is not None)
        raise InputError(f"holding the features of {sizes} images needs ~{need / 2**30:,.1f} GiB of memory, "
                         f"have {have / 2**30:,.1f} GiB available; lower --num-samples or --num-reference")


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo, else the free
    physical pages), or None when the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _tensor_digest(tensor: torch.Tensor) -> str:
    digest = hashlib.sha256(str(tuple(tensor.shape)).encode() + tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _opts_text(opts: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in opts.items()) or "no options"
