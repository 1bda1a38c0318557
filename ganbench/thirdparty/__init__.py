"""Third-party generators: register a checkpoint once, evaluate it by name.

    $ ganbench register stylegan-ffhq --torchscript G.pt --z-dim 512 --image-size 256 --dataset celeba
    $ ganbench eval -m fid -i stylegan-ffhq -r celeba:train

A registration is data in the user registry file ``$GANBENCH_HOME/registered-generators.json``
(default home: the platformdirs user data dir): the checkpoint's absolute path and sha256,
its format, the latent interface (:class:`~ganbench.generative.LatentSpec`) and the dataset
it belongs to. The first query of :data:`ganbench.registry.registered_generators` reads the file
(:func:`refresh`) and puts every registration into that registry as a factory
``(device="cpu") -> (GenerativeModel, metadata)``; the metadata carries ``model``,
``checkpoint_sha256``, ``third_party=True`` and ``dataset`` into every result row.
Importing this package reads nothing.

Formats:

===============  ===================================================================
``torchscript``  ``torch.jit.save`` archive, read with ``torch.jit.load`` (no Python pickle)
``onnx``         run with onnxruntime (``pip install 'ganbench[onnx]'``)
``factory``      ``package.module:function`` building an ``nn.Module`` plus a weights file:
                 safetensors, or a ``.pth`` state dict read with ``weights_only=True``
``pickle``       a whole pickled ``nn.Module``; only with ``trust_pickle=True``
===============  ===================================================================

Safety: nothing is unpickled unless the user says ``--trust-pickle``; a file that would
need it is refused with a message naming the Python objects it contains. The sha256 is
checked again every time the generator is loaded, so a replaced file is never evaluated
under an old name. A registration is made only after the generator ran on a small batch
of latents and gave images of the declared shape and range.

The package: :mod:`~ganbench.thirdparty.registry_file` (the file's schema, reading and
atomic writing), :mod:`~ganbench.thirdparty.loaders` (safe loading of each format),
:mod:`~ganbench.thirdparty.checks` (what is checked before a registration is written);
this module is the public API.
"""
from __future__ import annotations

import functools
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import ganbench
from ganbench.errors import GanbenchError, MissingFileError, UnknownNameError
from ganbench.generative import GenerativeModel
from ganbench.leaderboards.store import utc_now
from ganbench.registry import registered_generators
from ganbench.thirdparty.checks import check_dataset, check_name, check_source, existing_file, probe
from ganbench.thirdparty.loaders import ONNX_HINT, OnnxGenerator, is_torchscript, load_registration
from ganbench.thirdparty.registry_file import (FORMATS, ORIGIN, OUTPUT_RANGES, REGISTRY_FILE, Registration, home_dir,
                                               make_latent, read_registry, registry_path, write_registry)
from ganbench.weights import sha256_file

__all__ = ["FORMATS", "ONNX_HINT", "ORIGIN", "OUTPUT_RANGES", "REGISTRY_FILE", "OnnxGenerator", "Registration",
           "describe", "home_dir", "list_registered", "load_registered", "make_latent", "read_registry", "refresh",
           "register_checkpoint", "registry_path", "unregister_checkpoint"]


def register_checkpoint(
    name: str,
    *,
    torchscript: str | os.PathLike | None = None,
    onnx: str | os.PathLike | None = None,
    factory: str | None = None,
    weights: str | os.PathLike | None = None,
    weights_key: str | None = None,
    z_dim: int,
    z_dist: str = "normal",
    num_classes: int = 0,
    output_range: str | tuple[float, float] = (-1.0, 1.0),
    channels: int = 3,
    image_size: int | None = None,
    dataset: str | None = None,
    trust_pickle: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """Validate a third-party generator and add it to the user registry file.

    Give exactly one source: ``torchscript`` (a ``torch.jit.save`` file), ``onnx`` (needs
    onnxruntime) or ``factory`` (``"package.module:function"`` returning an ``nn.Module``)
    with ``weights`` (safetensors or a state-dict ``.pth``; ``weights_key`` picks an entry
    such as ``"g_ema"``). The generator takes ``z`` (N, z_dim) -- and int64 ``labels`` (N,)
    when ``num_classes`` > 0 -- and returns images (N, channels, H, W) in ``output_range``
    (``"-1,1"``, ``"0,1"`` or ``"0,255"``).

    It is run on 4 latents before anything is written; shape, channels, size, NaN/Inf,
    range and latent size problems raise :class:`~ganbench.errors.InputError` and register
    nothing. Returns the registration as a :func:`list_registered` row.
    """
    fmt = check_source(torchscript, onnx, factory, weights, weights_key)
    latent = make_latent(z_dim=z_dim, z_dist=z_dist, num_classes=num_classes, output_range=output_range,
                         channels=channels, image_size=image_size)
    registered = read_registry()  # a corrupt file stops here, before anything is written
    check_name(name, registered, overwrite)
    check_dataset(dataset)
    path = existing_file(fmt, weights if factory else (onnx or torchscript))
    sha = sha256_file(path)
    what = f"generator {name!r}"
    if fmt == "torchscript" and not is_torchscript(path):
        fmt = "pickle"  # loaded only if it is a trusted pickled module; else a clear refusal
    reg = Registration(name=name, format=fmt, path=str(path), sha256=sha, latent=latent, dataset=dataset,
                       factory=factory, weights_key=weights_key,
                       trust_pickle=bool(trust_pickle) and fmt in ("factory", "pickle"),  # else never used
                       registered_at=utc_now(), ganbench_version=ganbench.__version__)
    model = load_registration(reg, device)
    reg = replace(reg, latent=probe(model, latent, what, device))

    registered = read_registry()
    if name in registered and not overwrite:
        raise GanbenchError(f"{name!r} was registered meanwhile; pass --force to replace it")
    registered[name] = reg
    write_registry(registered, registry_path())
    refresh()
    return reg.row()


def unregister_checkpoint(name: str) -> None:
    """Remove a registration from the user registry file (the checkpoint file is kept)."""
    registered = read_registry()
    if name not in registered:
        raise UnknownNameError("registered generator", name, registered)
    del registered[name]
    write_registry(registered, registry_path())
    refresh()


def list_registered() -> list[dict[str, Any]]:
    """The registered third-party generators as rows (name, format, dataset, z_dim,
    z_dist, num_classes, output_range, channels, image_size, path, checkpoint_sha256,
    factory, trust_pickle, registered_at, third_party=True), sorted by name."""
    return [reg.row() for _, reg in sorted(read_registry().items())]


def describe(row: dict[str, Any]) -> str:
    """What a registered generator makes and takes, e.g. ``3x32x32, z 128 normal, 10 classes``
    (``row`` as from :func:`list_registered`)."""
    size = row["image_size"]
    shape = f"{row['channels']}x{size}x{size}" if size else f"{row['channels']} channels"
    classes = f", {row['num_classes']} classes" if row["num_classes"] else ""
    return f"{shape}, z {row['z_dim']} {row['z_dist']}{classes}"


def load_registered(name: str, device: str = "cpu") -> tuple[GenerativeModel, dict[str, Any]]:
    """(GenerativeModel, provenance metadata) of a registered generator.

    The checkpoint's sha256 is checked first: a file changed since registration is refused.
    """
    registered = read_registry()
    if name not in registered:
        raise UnknownNameError("registered generator", name, registered)
    reg = registered[name]
    path = Path(reg.path)
    if not path.is_file():
        raise MissingFileError(f"the checkpoint of {name!r} is gone: {reg.path} does not exist; "
                               f"restore it or `ganbench unregister {name}`")
    digest = sha256_file(path)
    if digest != reg.sha256:
        raise GanbenchError(f"the checkpoint of {name!r} changed since it was registered: {reg.path} has "
                            f"sha256 {digest[:16]}..., registered {reg.sha256[:16]}...; register it again "
                            f"(--force) if the change is intended")
    return load_registration(reg, device), reg.metadata()


def refresh() -> None:
    """Make :data:`ganbench.registry.registered_generators` match the registry file; that registry
    calls it on its first query, and a long-running process calls it to see registrations
    made by others (or after ``GANBENCH_HOME`` changed)."""
    targets = {name: (functools.partial(load_registered, name), {k: v for k, v in reg.row().items() if k != "name"})
               for name, reg in read_registry().items()}
    for entry in registered_generators.sync(ORIGIN, targets):
        warnings.warn(f"registered generator {entry.name!r} in {registry_path()} is shadowed by the one "
                      f"from {entry.origin}", stacklevel=2)
