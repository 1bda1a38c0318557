"""``ganbench eval --cross-check``: the numbers again, computed by torch-fidelity.

After an evaluation with the ``inception-v3-compat`` extractor, the metrics torch-fidelity
also computes (``fid``, ``isc``, ``kid``, ``pr`` on the 2048-d pool, ``pr-vgg16``) are
recomputed with ``torch_fidelity.calculate_metrics`` on the same images (read again from
the same inputs, seeds and sample counts, handed over as uint8 tensors) with the same
weights files and options. Each number agrees when its relative difference is at most
:data:`TOLERANCE` (or it is within :data:`ABSOLUTE_FLOOR` of torch-fidelity's, for
numbers near 0 such as the KID of two close sets).

IS and KID draw random splits and subsets: they agree only under torch-fidelity's
convention, so a cross-check reads them with ``rng="torch-fidelity"`` unless told
otherwise (:func:`cross_check_options`), and isc and kid must share one seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from ganbench.errors import GanbenchError
from ganbench.registry import metrics as metric_registry

EXTRACTOR = "inception-v3-compat"
TOLERANCE = 1e-3  # relative difference allowed
ABSOLUTE_FLOOR = 1e-6  # below this absolute difference two numbers agree whatever their size
# ganbench metric -> {ganbench output key: torch-fidelity output key}
COMPARED: dict[str, dict[str, str]] = {
    "fid": {"fid": "frechet_inception_distance"},
    "isc": {"isc": "inception_score_mean", "isc_std": "inception_score_std"},
    "kid": {"kid": "kernel_inception_distance_mean", "kid_std": "kernel_inception_distance_std"},
    "pr": {"precision": "precision", "recall": "recall", "f_score": "f_score"},
    "pr-vgg16": {"precision_vgg16": "precision", "recall_vgg16": "recall", "f_score_vgg16": "f_score"},
}
SEEDED = ("isc", "kid")  # metrics whose randomness must follow torch-fidelity's


@dataclass(frozen=True)
class Agreement:
    """One number as ganbench and torch-fidelity computed it."""

    key: str  # ganbench output key, e.g. "kid_std"
    ours: float
    theirs: float

    @property
    def relative_difference(self) -> float:
        return abs(self.ours - self.theirs) / max(abs(self.theirs), 1e-12)

    @property
    def agrees(self) -> bool:
        return self.relative_difference <= TOLERANCE or abs(self.ours - self.theirs) <= ABSOLUTE_FLOOR


def cross_check_options(metrics: list[str], extractor: str,
                        options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``options`` with IS and KID drawing as torch-fidelity does, checked before any work:
    the extractor must be torch-fidelity's, at least one metric comparable, the rng not
    set otherwise, isc and kid on one seed."""
    if extractor != EXTRACTOR:
        raise GanbenchError(f"--cross-check compares with torch-fidelity's {EXTRACTOR} features; "
                            f"this evaluation uses extractor {extractor!r}")
    if not set(metrics) & set(COMPARED):
        raise GanbenchError(f"--cross-check: torch-fidelity computes none of {', '.join(metrics)}; "
                            f"it compares {', '.join(COMPARED)}")
    out = {name: dict(opts) for name, opts in options.items()}
    for name in set(SEEDED) & set(metrics):
        rng = out.setdefault(name, {}).setdefault("rng", "torch-fidelity")
        if rng != "torch-fidelity":
            raise GanbenchError(f"--cross-check needs {name}.rng=torch-fidelity (torch-fidelity draws its own "
                                f"random splits), got {rng!r}")
    seeds = {metric_registry.get(name).read_options(out[name])["seed"] for name in set(SEEDED) & set(metrics)}
    if len(seeds) > 1:
        raise GanbenchError("--cross-check needs isc.seed == kid.seed: torch-fidelity has one rng_seed")
    return out


def cross_check(result, input: Any, reference: Any, metrics: list[str], *, options: dict[str, dict[str, Any]],
                weights: Any = None, extra_weights: dict[str, Any] | None = None, num_samples: int | None = None,
                num_reference: int | None = None, batch_size: int = 64, device: str = "cpu", seed: int = 0,
                source: str | None = None) -> list[Agreement]:
    """torch-fidelity's numbers next to ``result``'s (an :class:`~ganbench.evaluation.EvaluationResult`
    of :func:`~ganbench.evaluation.evaluate` called with the same arguments)."""
    from ganbench.evaluation import make_plan, resolve_inputs

    plan = make_plan(metrics, options, EXTRACTOR)
    inputs = resolve_inputs(plan, input, reference, num_samples=num_samples, num_reference=num_reference,
                            seed=seed, device=device, source=source)
    fake = _images(inputs.fake, batch_size)
    real = _images(inputs.real, batch_size) if inputs.real is not None else None
    common = dict(input1=Uint8Images(fake), input2=Uint8Images(real) if real is not None else None,
                  cuda=str(device).startswith("cuda"), batch_size=batch_size, cache=False, verbose=False,
                  save_cpu_ram=True)  # no DataLoader worker processes: the images are in memory already
    by_name = {m.name: m.options for m in plan.metrics if m.name in COMPARED}
    theirs = _torch_fidelity(by_name, common, weights, (extra_weights or {}).get("vgg16"))
    return [Agreement(key, _ours(result, key), float(theirs[name][their_key]))
            for name in by_name for key, their_key in COMPARED[name].items()]


def _torch_fidelity(by_name: dict[str, dict[str, Any]], common: dict[str, Any], weights: Any,
                    vgg16_weights: Any) -> dict[str, dict[str, float]]:
    """{metric: torch-fidelity's output}: one call for fid, isc and kid (one extraction), one per PR."""
    theirs: dict[str, dict[str, float]] = {}
    inception = {name: opts for name, opts in by_name.items() if name in ("fid", "isc", "kid")}
    if inception:
        out = _calculate(**common, **_inception_kwargs(inception), feature_extractor=EXTRACTOR,
                         feature_extractor_weights_path=_weights_path("inception-v3-fid", weights))
        theirs.update({name: out for name in inception})
    if "pr" in by_name:
        theirs["pr"] = _calculate(**common, prc=True, prc_neighborhood=by_name["pr"]["k"], feature_extractor=EXTRACTOR,
                                  feature_layer_prc="2048",
                                  feature_extractor_weights_path=_weights_path("inception-v3-fid", weights))
    if "pr-vgg16" in by_name:
        theirs["pr-vgg16"] = _calculate(**common, prc=True, prc_neighborhood=by_name["pr-vgg16"]["k"],
                                        feature_extractor="vgg16",
                                        feature_extractor_weights_path=_weights_path("vgg16", vgg16_weights))
    return theirs


def format_agreements(agreements: list[Agreement]) -> str:
    lines = [f"{'cross-check':16s} {'ganbench':>14s} {'torch-fidelity':>14s} {'rel. diff':>10s}"]
    for a in agreements:
        lines.append(f"{a.key:16s} {a.ours:14.8g} {a.theirs:14.8g} {a.relative_difference:10.1e}"
                     f"{'' if a.agrees else '  DISAGREES'}")
    return "\n".join(lines)


def _inception_kwargs(inception: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"fid": "fid" in inception, "isc": "isc" in inception, "kid": "kid" in inception}
    if "isc" in inception:
        isc = inception["isc"]
        kwargs.update(isc_splits=isc["splits"], samples_shuffle=isc["shuffle"], rng_seed=isc["seed"])
    if "kid" in inception:
        kid = inception["kid"]
        kwargs.update(kid_subsets=kid["subsets"], kid_subset_size=kid["subset_size"],
                      kid_kernel_poly_degree=kid["degree"], kid_kernel_poly_gamma=kid["gamma"],
                      kid_kernel_poly_coef0=kid["coef0"], rng_seed=kid["seed"])
    return kwargs


def _weights_path(catalog_key: str, given: Any) -> str:
    """The weights file ganbench's extractor loaded: ``given``, else the one it found."""
    from ganbench.weights import CATALOG, resolve_weights

    return str(resolve_weights(CATALOG[catalog_key], given).path)


def _calculate(**kwargs: Any) -> dict[str, float]:
    import torch_fidelity

    return torch_fidelity.calculate_metrics(**kwargs)


def _ours(result, key: str) -> float:
    return result.std(key[:-4]) if key.endswith("_std") else result.value(key)


def _images(source, batch_size: int) -> torch.Tensor:
    """Every image of ``source`` as uint8 (N, 3, H, W) on the CPU."""
    from ganbench.images import to_rgb_uint8
    from ganbench.sources import iter_batches

    return torch.cat([to_rgb_uint8(images.cpu()) for _, images in iter_batches(source, batch_size)])


class Uint8Images(Dataset):
    """torch-fidelity's input: a dataset of uint8 (3, H, W) tensors (``images``: uint8 (N, 3, H, W))."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]
