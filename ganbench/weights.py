"""Resolving third-party weight files, online or offline, and recording what was used.

Every weights file ganbench may need is described as data (:class:`WeightsFile`): its
file name, download URL and the sha256 of the official file. :func:`resolve_weights`
looks for it in this order and stops at the first hit:

1. an explicit path (``--weights PATH``),
2. ``$GANBENCH_WEIGHTS_DIR/<file name>``,
3. the torch hub cache (``$TORCH_HOME/hub/checkpoints/<file name>``),
4. a download from the official URL into the torch hub cache.

When all fail, :class:`~ganbench.errors.MissingFileError` names the file, its sha256 and
where to put it. The sha256 of whatever was loaded is returned, and results record
whether it is the official file (``standard``) or not.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from ganbench.errors import GanbenchError, MissingFileError


@dataclass(frozen=True)
class WeightsFile:
    """An official weights file, described as data."""

    key: str  # short name used in messages ("inception-v3-fid")
    filename: str  # file name on disk and in the hub cache
    url: str  # official download location
    sha256: str  # of the official file; torchvision publishes only its first 8 hex digits
    origin: str  # paper / project the weights belong to
    license: str = "see origin"


# The official files ganbench knows about.
CATALOG: dict[str, WeightsFile] = {w.key: w for w in [
    WeightsFile(
        "inception-v3-fid", "weights-inception-2015-12-05-6726825d.pth",
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        "TensorFlow FID Inception-v3 (2015-12-05), converted by torch-fidelity", "Apache-2.0"),
    WeightsFile(
        "vgg16", "vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        "torchvision VGG16 (ImageNet)", "BSD-3-Clause"),
    WeightsFile(
        "alexnet", "alexnet-owt-7be5be79.pth",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "7be5be79",
        "torchvision AlexNet (ImageNet)", "BSD-3-Clause"),
    WeightsFile(
        "squeezenet1_1", "squeezenet1_1-b8a52dc0.pth",
        "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
        "b8a52dc0",
        "torchvision SqueezeNet 1.1 (ImageNet)", "BSD-3-Clause"),
]}
# torchvision names its files by the first 8 hex digits of their sha256; where only
# that prefix is published, `is_standard` compares the prefix.


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    sha256: str
    standard: bool  # True when the file is the official one
    source: str  # "explicit", "GANBENCH_WEIGHTS_DIR", "torch-hub-cache", "download"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_standard(spec: WeightsFile, sha256: str) -> bool:
    return sha256.startswith(spec.sha256)


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights(spec: WeightsFile, path: str | os.PathLike | None = None, *,
                    download: bool = True) -> ResolvedWeights:
    """Find ``spec``'s file (see the module docstring for the order) and hash it."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise MissingFileError(f"weights file {str(p)!r} does not exist")
        return _resolved(spec, p, "explicit")
    env_dir = os.environ.get("GANBENCH_WEIGHTS_DIR")
    if env_dir and (Path(env_dir) / spec.filename).is_file():
        return _resolved(spec, Path(env_dir) / spec.filename, "GANBENCH_WEIGHTS_DIR")
    cached = hub_checkpoint_dir() / spec.filename
    if cached.is_file():
        return _resolved(spec, cached, "torch-hub-cache")
    if download and os.environ.get("GANBENCH_OFFLINE", "") not in ("1", "true", "yes"):
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(spec.url, str(cached), progress=True)
            return _resolved(spec, cached, "download")
        except Exception as exc:  # noqa: BLE001 -- offline, proxy, HTTP error...
            reason = f"download failed ({type(exc).__name__})"
    else:
        reason = "downloads disabled"
    raise MissingFileError(
        f"{spec.key} weights not found: need {spec.filename} (sha256 {spec.sha256}); {reason}. "
        f"Pass --weights PATH, or put it in $GANBENCH_WEIGHTS_DIR or {hub_checkpoint_dir()}")


ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def build_from_weights(spec: WeightsFile, path: str | os.PathLike | None, build: Callable[[Path], ModuleT],
                       device: str | torch.device = "cpu") -> ModuleT:
    """``build(file)`` on ``spec``'s file (``path`` if given, else as :func:`resolve_weights` finds
    it), with the file's sha256 and whether it is the official one recorded on the module
    (``weights_sha256``, ``weights_standard``), moved to ``device``.

    Raises:
        MissingFileError: the weights file cannot be found or downloaded.
    """
    resolved = resolve_weights(spec, path)
    module = build(resolved.path)
    module.weights_sha256 = resolved.sha256
    module.weights_standard = resolved.standard
    return module.to(device)


def _resolved(spec: WeightsFile, path: Path, source: str) -> ResolvedWeights:
    digest = sha256_file(path)
    return ResolvedWeights(path, digest, is_standard(spec, digest), source)


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict safely: safetensors, or ``torch.load(weights_only=True)``.

    A file that would need full unpickling (arbitrary code) is refused.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GanbenchError(f"cannot load weights from {str(path)!r}: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GanbenchError(f"{str(path)!r} is not a state dict of tensors")
    return state
