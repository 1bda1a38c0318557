"""Feature archives: the features of one evaluation, kept so that later intervals and
comparisons need neither the generator nor a second feature pass.

``ganbench eval ... --save-features run.features.safetensors`` writes one safetensors file
holding ``input/<extractor>/<feature>`` and ``reference/<extractor>/<feature>`` (float32,
N x D), ``input/labels`` and ``reference/labels`` when the images have classes, and in its header (key
``"ganbench"``) the setting the features were computed under: each extractor's name,
weights sha256, input size and resizing, the input and reference descriptors, the
reference's content key, N and the seed. ``ganbench compare A.safetensors B.safetensors``
reads two archives and compares them when their settings agree.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ganbench.atomic import atomic_path
from ganbench.errors import InputError

FORMAT = "ganbench-features-1"


def save_features(path: str | os.PathLike, features, inputs, modules: dict[str, Any], *, seed: int) -> Path:
    """Write the one pass's ``features`` (:class:`ganbench.evaluation.Features`) to ``path``;
    an existing file is never overwritten."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {f"{side}/{name}/{feature}": value.detach().float().cpu().contiguous()
               for side, per_extractor in (("input", features.fake), ("reference", features.real))
               for name, feats in per_extractor.items() for feature, value in feats.items()}
    real = inputs.real
    for side, source in (("input", inputs.fake), ("reference", real)):
        labels = None if source is None else source.class_labels()
        if labels is not None:
            tensors[f"{side}/labels"] = labels.long().cpu().contiguous()
    generator = getattr(inputs.fake, "model", None) if inputs.fake.is_generator else None
    setting = {"format": FORMAT, "seed": seed, "input": inputs.fake.descriptor, "num_samples": len(inputs.fake),
               "latent": None if generator is None else generator.latent.to_dict(),
               "reference": None if real is None else real.descriptor,
               "reference_content": None if real is None else real.content_key(),
               "num_reference": None if real is None else len(real),
               "extractors": {name: module.describe() for name, (module, _) in modules.items()}}
    try:
        with atomic_path(path, overwrite=False) as tmp:
            save_file(tensors, str(tmp), metadata={"ganbench": json.dumps(setting, sort_keys=True)})
    except FileExistsError:
        raise InputError(f"{str(path)!r} exists: feature archives are never overwritten; choose another path") \
            from None
    return path


def is_archive(spec: Any) -> bool:
    """Whether ``spec`` names a feature archive (a .safetensors file whose header says so)."""
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).endswith(".safetensors"):
        return False
    try:
        return read_setting(spec).get("format") == FORMAT
    except (OSError, ValueError, InputError):
        return False


def read_setting(path: str | os.PathLike) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = (f.metadata() or {}).get("ganbench")
    except Exception as exc:  # noqa: BLE001 -- safetensors raises its own error types for a damaged file
        raise InputError(f"{str(path)!r} is not a readable safetensors file ({type(exc).__name__})") from None
    if header is None:
        raise InputError(f"{str(path)!r} is not a ganbench feature archive (no 'ganbench' header)")
    return json.loads(header)


def load_features(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]],
                                                      dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """(setting, input features, reference features, labels) of an archive; labels maps
    ``"input"`` and ``"reference"`` to the class of each image, for the sides that have them."""
    from safetensors.torch import load_file

    setting = read_setting(path)
    if setting.get("format") != FORMAT:
        raise InputError(f"{str(path)!r}: unknown feature archive format {setting.get('format')!r}")
    sides: dict[str, dict[str, dict[str, torch.Tensor]]] = {"input": {}, "reference": {}}
    labels = {}
    for key, value in load_file(str(path)).items():
        if key.endswith("/labels") and key.count("/") == 1:
            labels[key.split("/")[0]] = value
            continue
        side, name, feature = key.split("/", 2)
        sides[side].setdefault(name, {})[feature] = value
    return setting, sides["input"], sides["reference"], labels


def check_comparable(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two archives compare only under the same protocol: extractors (weights), reference, N."""
    for field, what in (("extractors", "feature extractors or weights"), ("reference_content", "reference"),
                        ("num_samples", "number of samples")):
        if a.get(field) != b.get(field):
            raise InputError(f"the two feature archives differ in their {what} ({field}: {a.get(field)!r} vs "
                             f"{b.get(field)!r}): evaluate both under the same protocol")
