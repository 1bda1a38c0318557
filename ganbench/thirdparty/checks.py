"""What is checked before a third-party generator is registered: its name, its source
options, its dataset, and a run on a few latents (:func:`probe`)."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from ganbench.errors import GanbenchError, InputError, MissingFileError, UnknownNameError
from ganbench.generative import GenerativeModel, LatentSpec, check_generated, sample_latents
from ganbench.registry import registered_generators
from ganbench.thirdparty.loaders import foreign_error
from ganbench.thirdparty.registry_file import NAME_PATTERN, ORIGIN, Registration

PROBE_BATCH = 4  # latents run through a generator before it is registered


def check_name(name: str, registered: dict[str, Registration], overwrite: bool) -> None:
    """A usable name: well formed, not a dataset, model or another origin's generator, and
    not registered already unless ``overwrite``."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise GanbenchError(f"bad name {name!r}: use letters, digits, '-' and '_' (at most 64, "
                            f"starting with a letter or digit)")
    from ganbench.registry import datasets, models

    if name in datasets:
        raise GanbenchError(f"{name!r} is the name of a dataset; choose another name")
    if name in models:
        raise GanbenchError(f"{name!r} is the name of a model ({models.entry(name).origin}); choose another name")
    if name in registered_generators and registered_generators.entry(name).origin != ORIGIN:
        raise GanbenchError(f"{name!r} is already a generator from {registered_generators.entry(name).origin}; "
                            f"choose another name")
    if name in registered and not overwrite:
        raise GanbenchError(f"{name!r} is already registered ({registered[name].path}); pass --force to "
                            f"replace it or `ganbench unregister {name}` first")


def check_source(torchscript: str | os.PathLike | None, onnx: str | os.PathLike | None, factory: str | None,
                 weights: str | os.PathLike | None, weights_key: str | None) -> str:
    """The format the source options name: exactly one source, and ``weights`` and
    ``weights_key`` only with ``factory``."""
    sources = {k: v for k, v in (("torchscript", torchscript), ("onnx", onnx), ("factory", factory)) if v}
    if len(sources) != 1:
        raise GanbenchError("give exactly one of --torchscript FILE, --onnx FILE or --factory MODULE:FUNCTION "
                            f"(got {', '.join(sources) or 'none'})")
    if factory and not weights:
        raise GanbenchError("--factory needs --weights FILE (safetensors or a state-dict .pth)")
    if weights and not factory:
        raise GanbenchError("--weights goes with --factory MODULE:FUNCTION")
    if weights_key and not factory:
        raise GanbenchError("--weights-key goes with --factory and --weights")
    return "factory" if factory else ("onnx" if onnx else "torchscript")


def existing_file(fmt: str, path: str | os.PathLike) -> Path:
    """The absolute path of the file to record; it must exist."""
    resolved = Path(os.fspath(path)).expanduser().resolve()
    if not resolved.is_file():
        raise MissingFileError(f"{fmt} file {str(resolved)!r} does not exist")
    return resolved


def check_dataset(dataset: str | None) -> None:
    """``None`` or a known dataset (``"mnist"``, ``"folder:PATH"``)."""
    if dataset is None:
        return
    from ganbench.registry import datasets

    base = dataset.partition(":")[0]
    if base not in datasets:
        raise UnknownNameError("dataset", base, datasets.names())


def probe(model: GenerativeModel, latent: LatentSpec, what: str, device: str) -> LatentSpec:
    """Run the generator on a few latents; raise one line on anything unusable.

    Returns the latent spec with ``image_size`` filled in from the output when undeclared.
    """
    z, labels = sample_latents(latent, PROBE_BATCH, torch.Generator().manual_seed(0), device)
    try:
        with torch.inference_mode():
            out = model.generate(z, labels)
    except GanbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any failure of foreign code
        cond = f" and labels in 0..{latent.num_classes - 1}" if latent.num_classes else ""
        raise InputError(f"{what} failed on {PROBE_BATCH} latents of size {latent.z_dim}{cond} "
                         f"({foreign_error(exc)}); does --z-dim/--num-classes match the generator?") from None
    check_generated(out, latent, PROBE_BATCH, what=what)
    if out.dtype == torch.uint8 and tuple(latent.output_range) != (0.0, 255.0):
        raise InputError(f"{what} returned uint8 images but the declared output range is "
                         f"{latent.output_range[0]:g},{latent.output_range[1]:g}; declare 0,255")
    if not out.dtype.is_floating_point and out.dtype != torch.uint8:
        raise InputError(f"{what} returned {out.dtype} images, expected float or uint8")
    h, w = out.shape[2:]
    if latent.image_size is None and h == w:
        latent = replace(latent, image_size=int(h))
    return latent
