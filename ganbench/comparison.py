"""Are A and B distinguishable? Two inputs evaluated against the same reference features,
with the difference of each metric, its paired-bootstrap interval and a p-value.

    >>> from ganbench.comparison import compare
    >>> result = compare("runs/a", "runs/b", "mnist:test", ["fid"], extractor="lenet-mnist")
    >>> print(result.summary())

Both inputs go through the evaluation's one feature pass (:mod:`ganbench.evaluation`);
the reference is extracted once (and cached). Generators are sampled from the same
latents (same seed and N), so their replicates take the same rows: the paired bootstrap
then cancels the noise the two share. Every replicate of A and B uses the same half of
the reference. The interval and p-value are those of
:func:`ganbench.metrics.bootstrap.paired_difference`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from ganbench.archives import check_comparable, is_archive, load_features
from ganbench.errors import InputError
from ganbench.evaluation import (DEFAULT_EXTRACTOR, Features, Inputs, build_extractors, check_inputs,
                                 extract_features, make_plan, resolve_inputs, takes_reference_labels)
from ganbench.metrics.bootstrap import (DEFAULT_LEVEL, DEFAULT_REPLICATES, Difference, check_settings,
                                        half_sample_indices, paired_difference, replicate_values, rows)

SIGNIFICANCE = 0.05  # the p-value below which A and B are called distinguishable


@dataclass(frozen=True)
class Comparison:
    """The differences A - B of every output key of every metric."""

    a: str
    b: str
    reference: str
    num_samples: int
    paired_latents: bool  # both generators, sampled from the same latents
    differences: tuple[tuple[str, Difference, bool], ...]  # (metric, difference, higher is better)

    def verdict(self, difference: Difference, higher_is_better: bool) -> str:
        """In words: which is better, and whether the data can tell."""
        if difference.p_value >= SIGNIFICANCE:
            return f"not distinguishable at N = {self.num_samples} (p = {difference.p_value:.3g})"
        a_better = (difference.difference > 0) == higher_is_better
        return (f"{'A' if a_better else 'B'} is better, distinguishable at N = {self.num_samples} "
                f"(p = {difference.p_value:.3g})")

    def summary(self) -> str:
        lines = [f"A: {self.a}", f"B: {self.b}",
                 f"reference: {self.reference}; N = {self.num_samples} per input"
                 + ("; generators paired on their latents" if self.paired_latents else "")]
        header = ("key", "A", "B", "A - B", "interval", "p", "verdict")
        table = [header]
        for _metric, d, higher in self.differences:
            table.append((d.key, f"{d.a:.6g}", f"{d.b:.6g}", f"{d.difference:+.6g}",
                          f"{d.level:.0%} [{d.low:+.4g}, {d.high:+.4g}]", f"{d.p_value:.3g}",
                          self.verdict(d, higher)))
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
        return "\n".join(lines)


def compare(a: Any, b: Any, reference: Any = None, metrics: Iterable[str] = ("fid",), *,
            extractor: str = DEFAULT_EXTRACTOR, weights: Any = None, extra_weights: dict[str, Any] | None = None,
            num_samples: int | None = None, num_reference: int | None = None,
            options: dict[str, dict[str, Any]] | None = None, batch_size: int = 64, device: str = "cpu",
            seed: int = 0, use_cache: bool = True, progress: bool = True,
            bootstrap: int = DEFAULT_REPLICATES, ci: float = DEFAULT_LEVEL) -> Comparison:
    """Evaluate ``a`` and ``b`` (any input :func:`ganbench.evaluation.evaluate` takes, or two
    feature archives of :mod:`ganbench.archives`, which need no ``reference``) against
    ``reference`` with feature-based ``metrics``; see the module docstring."""
    check_settings(bootstrap, ci)
    plan = make_plan(metrics, options, extractor)
    unsupported = [m.name for m in plan.metrics if m.extractor is None or m.metric.needs_generator
                   or m.metric.needs_targets or not m.metric.interval]
    if unsupported:
        raise InputError(f"compare works on metrics of the features ({', '.join(unsupported)} are not): "
                         f"e.g. fid, kid, isc, pr, density-coverage")
    if is_archive(a) or is_archive(b):
        sides = _archived_sides(plan, a, b)
    else:
        sides = _evaluated_sides(plan, a, b, reference, extractor=extractor, weights=weights,
                                 extra_weights=extra_weights, num_samples=num_samples, num_reference=num_reference,
                                 batch_size=batch_size, device=device, seed=seed, use_cache=use_cache,
                                 progress=progress)
    differences = []
    for m in plan.metrics:
        differences += _metric_differences(m, sides, replicates=bootstrap, level=ci, seed=seed)
    return Comparison(sides.names[0], sides.names[1], sides.reference, sides.num_samples, sides.paired,
                      tuple(differences))


@dataclass(frozen=True)
class _Sides:
    """What a comparison needs of its two inputs, however their features were obtained."""

    names: tuple[str, str]
    reference: str
    num_samples: int
    paired: bool  # generators sampled from the same latents
    features: tuple[Features, Features]
    labels: tuple[torch.Tensor | None, torch.Tensor | None]  # the class of each input image
    reference_labels: torch.Tensor | None  # the class of each reference image


def _evaluated_sides(plan, a, b, reference, *, extractor, weights, extra_weights, num_samples, num_reference,
                     batch_size, device, seed, use_cache, progress) -> _Sides:
    """Both inputs through the one feature pass, against the same reference."""
    inputs = [resolve_inputs(plan, x, reference, num_samples=num_samples, num_reference=num_reference, seed=seed,
                             device=device, source=None) for x in (a, b)]
    for one in inputs:
        check_inputs(plan, one)
    _check_same_protocol(inputs)
    modules = build_extractors(plan, extractor=extractor, weights=weights,
                               extra_weights=dict(extra_weights or {}), device=device)
    features = tuple(extract_features(plan, one, modules, batch_size=batch_size, device=device, use_cache=use_cache,
                                      progress=progress) for one in inputs)
    needs_labels = any(m.metric.needs_labels for m in plan.metrics)
    labels = tuple(one.fake.class_labels() if needs_labels else None for one in inputs)
    real = inputs[0].real
    needs_reference_labels = real is not None and any(takes_reference_labels(m.metric) for m in plan.metrics)
    return _Sides((inputs[0].fake.descriptor, inputs[1].fake.descriptor), "" if real is None else real.descriptor,
                  len(inputs[0].fake), _same_latents(inputs[0].fake, inputs[1].fake), features, labels,
                  real.class_labels() if needs_reference_labels else None)


def _archived_sides(plan, a, b) -> _Sides:
    """Both inputs from feature archives written by ``ganbench eval --save-features``."""
    if not (is_archive(a) and is_archive(b)):
        raise InputError("compare two feature archives, or two inputs to evaluate, not one of each")
    (set_a, in_a, ref_a, lab_a), (set_b, in_b, _, lab_b) = load_features(a), load_features(b)
    if any(takes_reference_labels(m.metric) for m in plan.metrics) and "reference" not in lab_a:
        raise InputError(f"{str(a)!r} holds no reference labels (the metric needs them): save the features "
                         f"again with a labelled reference such as mnist:test")
    check_comparable(set_a, set_b)
    for m in plan.metrics:
        if m.extractor not in in_a or (m.metric.needs_reference and m.extractor not in ref_a):
            raise InputError(f"the archives hold features of {sorted(in_a)}, not of {m.extractor!r} "
                             f"that {m.name} needs here: pass --extractor {next(iter(in_a), '?')}")
    paired = set_a.get("latent") is not None and (set_a["latent"], set_a["seed"]) == (set_b.get("latent"),
                                                                                      set_b.get("seed"))
    return _Sides((set_a["input"], set_b["input"]), set_a.get("reference") or "", set_a["num_samples"], paired,
                  (Features(in_a, ref_a, None), Features(in_b, ref_a, None)),
                  (lab_a.get("input"), lab_b.get("input")), lab_a.get("reference"))


def _same_latents(a, b) -> bool:
    """Both generators, sampled from the same latents (same spec, seed and N)."""
    if not (a.is_generator and b.is_generator):
        return False
    return a.model.latent == b.model.latent and (a.seed, len(a)) == (b.seed, len(b))


def _check_same_protocol(inputs: list[Inputs]) -> None:
    """Two inputs are compared at the same N (FID and friends depend on it)."""
    n_a, n_b = len(inputs[0].fake), len(inputs[1].fake)
    if n_a != n_b:
        raise InputError(f"A has {n_a} samples and B {n_b}: metrics depend on N, compare at the same N "
                         f"(--num-samples {min(n_a, n_b)})")


def _metric_differences(m, sides: _Sides, *, replicates: int, level: float,
                        seed: int) -> list[tuple[str, Difference, bool]]:
    """A - B for each output key of one metric: both computed on the same reference half
    (and the same latents' half when paired) in every replicate."""
    from ganbench.metrics.base import MetricResult

    metric = m.metric
    generator = torch.Generator().manual_seed(seed + 7919)
    fakes = [f.fake[m.extractor] for f in sides.features]
    real = sides.features[0].real.get(m.extractor) if metric.needs_reference else None
    fake_a = half_sample_indices(rows(fakes[0]), replicates, generator)
    fake_b = fake_a if sides.paired else half_sample_indices(rows(fakes[1]), replicates, generator)
    real_idx = None if real is None else half_sample_indices(rows(real), replicates, generator)
    estimates, reps = [], []
    for fake, fake_idx, lab in zip(fakes, (fake_a, fake_b), sides.labels):
        extra = {"labels": lab} if metric.needs_labels else {}
        if takes_reference_labels(metric):
            extra["reference_labels"] = sides.reference_labels
        estimates.append(MetricResult.of(metric.compute(fake, real, generator=torch.Generator().manual_seed(seed),
                                                        **extra, **m.options)).values)
        reps.append(replicate_values(metric.replicates, metric.compute, fake, real, fake_idx, real_idx,
                                     torch.Generator().manual_seed(seed + 1), options=m.options, **extra))
    return [(m.name, paired_difference(key, estimates[0][key], estimates[1][key], reps[0][key], reps[1][key],
                                       level=level), bool(metric.higher_is_better.get(key, False)))
            for key in estimates[0] if key in reps[0] and key in reps[1]]
