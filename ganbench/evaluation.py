"""The evaluation runner: resolve inputs, plan the features, one pass, every metric.

    >>> from ganbench.evaluation import evaluate
    >>> result = evaluate("runs/dcgan/checkpoint.safetensors", "mnist:test",
    ...                   metrics=["fid", "kid", "pr"], extractor="lenet-mnist", num_samples=10_000)
    >>> result.value("fid")

The plan is the union of what the requested metrics need: each feature extractor is
built once, each input is read once and every batch goes through every extractor
(:func:`ganbench.features.extract`). Every number comes back as a row carrying its
protocol (extractor, weights sha256, preprocessing, sample counts, reference, metric
version and options), so numbers computed under different protocols are never ranked
together.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import torch

import ganbench
from ganbench.errors import GanbenchError, InputError
from ganbench.registry import feature_extractors, metrics as metric_registry
from ganbench.sources import ImageSource, limit, resolve_source

DEFAULT_EXTRACTOR = "inception-v3-compat"
DEFAULT_GENERATOR_SAMPLES = 10_000


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


def maybe_init_distributed(device: str) -> None:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    dist = torch.distributed
    if dist.is_available() and not dist.is_initialized():
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)


def _rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(ganbench.__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def resolve_metric_options(names: Iterable[str], options: dict[str, dict[str, Any]] | None):
    """Metric objects and their options (defaults overridden by ``options``), validated."""
    options = options or {}
    resolved = []
    names = list(dict.fromkeys(names))
    if not names:
        raise GanbenchError("no metric requested; choose from: " + ", ".join(metric_registry.names()))
    for unknown in set(options) - set(names):
        raise GanbenchError(f"options given for metric {unknown!r}, which was not requested")
    for name in names:
        metric = metric_registry.get(name)
        opts = dict(metric.defaults)
        for key, value in options.get(name, {}).items():
            if key not in metric.defaults:
                valid = ", ".join(sorted(metric.defaults)) or "none"
                raise GanbenchError(f"metric {name!r} has no option {key!r}; its options: {valid}")
            opts[key] = _coerce(value, metric.defaults[key], f"{name}.{key}")
        resolved.append((metric, opts))
    return resolved


def _coerce(value: Any, default: Any, what: str) -> Any:
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes")
        return type(default)(value)
    except ValueError:
        raise GanbenchError(f"{what}: cannot read {value!r} as {type(default).__name__}") from None


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
        options: {metric: {option: value}} overriding metric defaults.
        seed: seeds generator latents and the metrics' own randomness (KID subsets).
        record: append the rows to the results store. When it cannot be written, the
            GanbenchError raised carries the result as ``.result``.
        source: for an image-conditioned generator (pix2pix, GPEN...), the images it
            translates: a paired dataset split (default: the test split of the dataset it
            was trained on) or a folder/.npz of source images. Recorded in the protocol.
            Paired metrics (``l1``, ``psnr``) compare each translation with its ground
            truth, which only a paired dataset split has.
    """
    started = time.perf_counter()
    device = device or default_device()
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise GanbenchError("--device cuda requested but CUDA is not available")
    maybe_init_distributed(device)
    plan = resolve_metric_options(metrics, options)
    extra_weights = dict(extra_weights or {})

    fake = resolve_source(input, num_samples=num_samples if num_samples is not None else DEFAULT_GENERATOR_SAMPLES,
                          seed=seed, device=device, source=source)
    fake = limit(fake, num_samples)
    needs_reference = any(m.needs_reference for m, _ in plan)
    real: ImageSource | None = None
    if needs_reference:
        if reference is None:
            which = ", ".join(m.name for m, _ in plan if m.needs_reference)
            raise InputError(f"{which} need(s) a reference: pass --reference (e.g. mnist:test)")
        real = limit(resolve_source(reference, num_samples=num_reference, seed=seed + 1, device=device),
                     num_reference)

    needs_targets = any(m.needs_targets for m, _ in plan)
    targets = fake.paired_targets() if needs_targets else None  # uint8 (N, 3, H, W) ground truth
    for metric, opts in plan:
        need = metric.min_samples(opts)
        for side, src in (("input", fake), ("reference", real)):
            if src is None or (side == "reference" and not metric.needs_reference):
                continue
            if metric.needs_generator and side == "input":
                continue
            if len(src) < need:
                raise InputError(f"{metric.name} needs at least {need} samples per input but the {side} "
                                 f"has {len(src)}; give more samples or lower its options ({_opts_text(opts)})")
        if metric.needs_generator and "translation_source" in fake.provenance():
            raise InputError(f"{metric.name} samples a generator from noise; an image-conditioned generator is "
                             f"evaluated on its translations (fid, kid, pr, ...)")
        if metric.needs_generator and not fake.is_generator:
            raise InputError(f"{metric.name} samples the generator itself: the input must be a generator "
                             f"(checkpoint or registered name), not {fake.descriptor!r}")
        if metric.needs_targets and targets is None:
            translated = fake.provenance().get("translation_source")
            if translated is None:
                raise InputError(f"{metric.name} compares each output with its ground truth: the input must be an "
                                 f"image-conditioned generator (pix2pix, CycleGAN, GPEN) translating a paired "
                                 f"dataset split, not {fake.descriptor!r}")
            raise InputError(f"{metric.name} compares each translation with its ground truth, but the source "
                             f"{translated!r} has none: use a paired split, e.g. --source mnist-edges:test")

    # The plan: one extractor per name, the union of features each must give.
    wanted: dict[str, set[str]] = {}
    for metric, _ in plan:
        if metric.features:
            wanted.setdefault(metric.extractor or extractor, set()).update(metric.features)
    modules: dict[str, tuple[torch.nn.Module, tuple[str, ...]]] = {}
    for name, feats in wanted.items():
        build = feature_extractors.get(name)
        path = weights if name == extractor else extra_weights.get(name)
        module = build(weights=path, device=device)
        missing = set(feats) - set(module.provides)
        if missing:
            users = [m.name for m, _ in plan if (m.extractor or extractor) == name and set(m.features) & missing]
            raise GanbenchError(f"extractor {name!r} does not provide {sorted(missing)} needed by "
                                f"{', '.join(users)} (it provides {list(module.provides)})")
        modules[name] = (module, tuple(sorted(feats)))

    real_modules = {n: modules[n] for n in modules
                    if any((m.extractor or extractor) == n and m.needs_reference for m, _ in plan)}
    _check_memory([(fake, modules, needs_targets), (real, real_modules, False)], device)
    fake_features = real_features = {}
    outputs = None
    if modules or needs_targets:
        from ganbench.features import PIXELS, extract

        # paired metrics: the same pass keeps the translated images, aligned with their targets
        fake_features = extract(fake, modules, batch_size=batch_size, device=device, use_cache=use_cache,
                                progress=progress, label="input", keep_images=needs_targets)
        if needs_targets:
            outputs = fake_features.pop(PIXELS)["images"]
            targets_digest = _tensor_digest(targets)
        if real is not None:
            real_features = extract(real, real_modules, batch_size=batch_size, device=device,
                                    use_cache=use_cache, progress=progress, label="reference")

    run_id = uuid.uuid4().hex[:16]
    fake_prov = fake.provenance()
    common = _common_provenance(fake, real, run_id, seed, device, model_name, tags)
    rows: list[dict[str, Any]] = []
    for metric, opts in plan:
        gen = torch.Generator().manual_seed(seed)
        if metric.needs_generator:
            values = metric.compute(fake.model, generator=gen, device=device, batch_size=batch_size,
                                    weights=extra_weights.get(metric.name), **opts)
            ext_info = {"extractor": values.pop("_extractor", metric.name),
                        "weights_sha256": values.pop("_weights_sha256", None),
                        "weights_standard": bool(values.pop("_weights_standard", False)),
                        "input_size": values.pop("_input_size", None), "resize": values.pop("_resize", "")}
        else:
            extra = {"labels": fake.class_labels()} if metric.needs_labels else {}
            if metric.needs_targets:
                extra.update(outputs=outputs, targets=targets)
            if metric.features:
                name = metric.extractor or extractor
                ext_info = modules[name][0].describe()
                feats = fake_features[name]
                real_feats = real_features.get(name) if metric.needs_reference else None
            else:  # pixel-space metrics: no network, no weights to be non-standard
                ext_info = {"extractor": "pixels", "weights_sha256": None, "weights_standard": True,
                            "input_size": None if targets is None else targets.shape[-1], "resize": ""}
                feats, real_feats = {}, None
            values = metric.compute(feats, real_feats, generator=gen, **extra, **opts)
        # an option a metric resolved itself (e.g. PPL's space "auto" -> "w") is recorded as used
        opts = {**opts, **values.pop("_resolved_options", {})}
        for key in [k for k in values if k.startswith("_")]:
            values.pop(key)
        protocol = {
            "metric": metric.name, "metric_version": metric.version, "options": opts,
            "extractor": ext_info["extractor"], "weights_sha256": ext_info["weights_sha256"],
            "input_size": ext_info.get("input_size"), "resize": ext_info.get("resize"),
            "num_samples": len(fake),
            "reference": common["dataset"] if metric.needs_reference else None,
            "reference_content": (real.content_key() or "")[:16] if metric.needs_reference and real else None,
            "num_reference": len(real) if metric.needs_reference and real is not None else None,
        }
        if "translation_source" in fake_prov:  # image-conditioned generators: what was translated
            protocol["source"] = fake_prov["translation_source"]
            protocol["source_content"] = fake_prov["translation_source_content"]
        row_dataset = {}
        if metric.needs_targets:  # scored against the source split's own ground truth
            protocol["targets"] = fake_prov["translation_source"]
            protocol["targets_content"] = targets_digest
            dataset, _, split = fake_prov["translation_source"].partition(":")  # a paired split: name:split
            row_dataset = {"dataset": dataset, "split": split or None}
        protocol_text = json.dumps(protocol, sort_keys=True, default=str)
        for key, value in values.items():
            if key.endswith("_std"):
                continue
            rows.append({
                **common, **row_dataset,
                "metric": metric.name, "key": key, "value": float(value),
                "std": float(values[f"{key}_std"]) if f"{key}_std" in values else None,
                "higher_is_better": bool(metric.higher_is_better.get(key, False)),
                "num_reference": protocol["num_reference"],
                "extractor": ext_info["extractor"], "weights_sha256": ext_info["weights_sha256"],
                "weights_standard": bool(ext_info["weights_standard"]),
                "protocol": protocol_text,
                "protocol_id": hashlib.sha256(protocol_text.encode()).hexdigest()[:12],
            })
    total = round(time.perf_counter() - started, 3)
    for row in rows:
        row["wall_time_s"] = total
    result = EvaluationResult(rows)
    if not result.standard:
        result.warnings.append("non-standard weights: these numbers are not comparable with published ones")
    if record and _rank() == 0:
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


def _common_provenance(fake: ImageSource, real: ImageSource | None, run_id: str, seed: int, device: str,
                       model_name: str | None, tags: dict[str, Any] | None) -> dict[str, Any]:
    prov = fake.provenance()
    # the dataset a row belongs to: the reference's, else the model's training data
    dataset, split = (real.descriptor, None) if real is not None else (prov.get("dataset") or "unspecified", None)
    if dataset and ":" in dataset and not os.path.exists(dataset):
        dataset, split = dataset.split(":", 1)
    return {
        "run_id": run_id,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model_name or prov.get("model") or fake.descriptor,
        "checkpoint_sha256": prov.get("checkpoint_sha256"),
        "step": prov.get("step"),
        "third_party": bool(prov.get("third_party", False)),
        "dataset": dataset, "split": split,
        "num_samples": len(fake),
        "seed": seed,
        "ganbench_version": ganbench.__version__,
        "git_commit": _git_commit(),
        "torch_version": torch.__version__,
        "device": str(device) if not str(device).startswith("cuda") else
        f"{device} ({torch.cuda.get_device_name()})",
        "source": fake.descriptor,
        "tags": json.dumps(tags or {}, sort_keys=True),
    }
