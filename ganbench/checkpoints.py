"""Training checkpoints: safetensors of every tensor of a run plus a JSON sidecar.

A checkpoint ``<run>/checkpoint.safetensors`` holds

* ``model.*``   -- the GANModel's state dict (generator, discriminator, buffers),
* ``ema.*``     -- the EMA generator, when the run keeps one,
* ``optim.<name>.*`` -- optimizer tensors (state flattened; the non-tensor skeleton --
  param groups, step counters that are numbers -- is JSON in the metadata),
* ``rng.*``     -- global CPU/CUDA RNG states and the training generator's state,

and, in the safetensors header (key ``"ganbench"``) and in ``checkpoint.json`` beside
it: the model name, hyperparameters, step, dataset, seed, latent spec, ganbench/torch
versions; the sidecar adds the sha256 of the safetensors file. The metadata also holds
``payload_sha256``, a hash of the rest of it and of every tensor (:func:`payload_sha256`),
so a checkpoint without its sidecar is verified too (files written before it existed
load unverified).

Writes are atomic (:mod:`ganbench.atomic`): a run killed at any moment leaves the
previous checkpoint readable, and the next run in that folder removes the killed
writer's temp files. The safetensors file is self-describing: when the sidecar describes
the same step its sha256 is verified, and a damaged sidecar (only a copy) is ignored with
a warning. Nothing is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

import ganbench
from ganbench.atomic import atomic_path
from ganbench.errors import GanbenchError, MissingFileError
from ganbench.generative import ConditionalImageGenerator, GenerativeModel, LatentSpec
from ganbench.weights import sha256_file

FORMAT = "ganbench-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.safetensors"
HASH_KEY = "payload_sha256"  # metadata key of payload_sha256()


# ---------------------------------------------------------------------------------------
# Nested state (optimizer state dicts) <-> flat tensors + JSON skeleton
# ---------------------------------------------------------------------------------------
def flatten_state(tree: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of ``tree`` into ``tensors`` (keys ``prefix...``); return a JSON skeleton."""
    if isinstance(tree, torch.Tensor):
        key = prefix.rstrip(".")
        tensors[key] = tree
        return {"__tensor__": key}
    if isinstance(tree, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in tree):
            return {k: flatten_state(v, f"{prefix}{k}.", tensors) for k, v in tree.items()}
        return {"__items__": [[k, flatten_state(v, f"{prefix}{k}.", tensors)] for k, v in tree.items()]}
    if isinstance(tree, tuple):
        return {"__tuple__": [flatten_state(v, f"{prefix}{i}.", tensors) for i, v in enumerate(tree)]}
    if isinstance(tree, list):
        return [flatten_state(v, f"{prefix}{i}.", tensors) for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise GanbenchError(f"cannot checkpoint a {type(tree).__name__} at {prefix.rstrip('.')!r}")


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            key = skeleton["__tensor__"]
            if key not in tensors:
                raise GanbenchError(f"checkpoint lacks tensor {key!r}")
            return tensors[key]
        if "__items__" in skeleton:
            return {k: unflatten_state(v, tensors) for k, v in skeleton["__items__"]}
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------
def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def payload_sha256(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of the metadata (but its own ``payload_sha256``) and every tensor (name,
    dtype, shape, bytes) in key order: checkable from the safetensors file alone."""
    rest = {k: v for k, v in meta.items() if k != HASH_KEY}
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True).encode())  # same text after loading
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        digest.update(f"\n{key} {t.dtype} {list(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """Write ``tensors`` + ``meta`` atomically to ``path`` and its JSON sidecar; return the sha256."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    # clone: safetensors refuses shared or non-contiguous storage (tied weights, channels_last)
    flat = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    meta[HASH_KEY] = payload_sha256(meta, flat)
    # the inner block's file moves first: the checkpoint, then its sidecar
    with atomic_path(sidecar_path(path)) as tmp_json, atomic_path(path) as tmp:
        # one metadata key: safetensors writes several in a random order (same run, same bytes)
        save_file(flat, str(tmp), metadata={"ganbench": json.dumps(meta)})
        digest = sha256_file(tmp)
        sidecar = {"file": path.name, "sha256": digest, **meta}
        tmp_json.write_text(json.dumps(sidecar, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return digest


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a ganbench checkpoint; return (tensors on CPU, metadata incl. ``sha256``).

    Raises:
        MissingFileError: no such file.
        GanbenchError: not a ganbench checkpoint, truncated, or its content does not match
            the sha256 in its header or in the sidecar.
    Warns:
        UserWarning: the sidecar is damaged (it is ignored: the header is authoritative).
    """
    path = Path(path)
    tensors, header = _read_safetensors(path)
    meta = _header_meta(path, header)
    digest = sha256_file(path)
    sidecar = _read_sidecar(path)
    # a sidecar for another step is stale (interrupted between the two renames)
    if sidecar and sidecar.get("step") == meta.get("step") and sidecar["sha256"] != digest:
        raise GanbenchError(f"checkpoint {str(path)!r} does not match the sha256 in "
                            f"{sidecar_path(path).name} (corrupt or modified)")
    if HASH_KEY in meta and meta[HASH_KEY] != payload_sha256(meta, tensors):
        raise GanbenchError(f"checkpoint {str(path)!r} does not match the sha256 stored in it "
                            f"(corrupt or modified); resume from an earlier one or retrain")
    meta["sha256"] = digest
    meta["checkpoint_sha256"] = digest
    return tensors, meta


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    if not path.is_file():
        raise MissingFileError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except Exception as exc:  # noqa: BLE001 -- safetensors' own errors, OSError...: all mean damaged
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GanbenchError(f"checkpoint {str(path)!r} is corrupt or truncated ({first}); "
                            f"resume from an earlier one or retrain") from None


def _header_meta(path: Path, header: dict[str, str]) -> dict[str, Any]:
    if "ganbench" not in header:
        raise GanbenchError(f"{str(path)!r} is a safetensors file but not a ganbench training "
                            f"checkpoint (no 'ganbench' metadata)")
    try:
        meta = json.loads(header["ganbench"])
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict):
        raise GanbenchError(f"checkpoint {str(path)!r} has corrupt metadata")
    version = meta.get("format_version", 0)
    if meta.get("format") != FORMAT or not isinstance(version, int) or version > FORMAT_VERSION:
        raise GanbenchError(f"checkpoint {str(path)!r} has format {meta.get('format')!r} "
                            f"v{meta.get('format_version')}; this ganbench reads {FORMAT} v{FORMAT_VERSION}")
    return meta


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar of ``path`` when it exists and has a sha256; a damaged one is only a
    copy of the header, so it warns and is ignored."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        sidecar = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        sidecar = None
    if isinstance(sidecar, dict) and isinstance(sidecar.get("sha256"), str):
        return sidecar
    warnings.warn(f"ignoring damaged {side} (not a checkpoint description); "
                  f"using the metadata inside {path.name}", stacklevel=3)
    return None


# ---------------------------------------------------------------------------------------
# Whole training state
# ---------------------------------------------------------------------------------------
def collect_state(model: torch.nn.Module, ema: torch.nn.Module | None,
                  ctx) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every tensor a run needs to continue bit-exactly, and the JSON part of it."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    optimizers = {name: flatten_state(opt.state_dict(), f"optim.{name}.", tensors)
                  for name, opt in model.optimizers().items()}
    tensors["rng.cpu"] = torch.get_rng_state()
    if ctx.device.type == "cuda":
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    tensors["rng.ctx"] = ctx.generator.get_state()
    return tensors, {"optimizers": optimizers, "ctx": ctx.state()}


def restore_state(model: torch.nn.Module, ema: torch.nn.Module | None, ctx,
                  tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`collect_state` (into freshly built objects)."""
    _load_module(model, _prefixed(tensors, "model."), "model")
    if ema is not None:
        ema_state = _prefixed(tensors, "ema.")
        if not ema_state:
            raise GanbenchError("the checkpoint has no EMA generator; "
                                "resume without --ema or with the original settings")
        _load_module(ema, ema_state, "EMA generator")
    saved = meta.get("optimizers", {})
    for name, opt in model.optimizers().items():
        if name not in saved:
            raise GanbenchError(f"the checkpoint has no state for optimizer {name!r}")
        opt.load_state_dict(unflatten_state(saved[name], tensors))
    torch.set_rng_state(tensors["rng.cpu"])
    if ctx.device.type == "cuda":
        states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
        if states:
            torch.cuda.set_rng_state_all(states)
    ctx.generator.set_state(tensors["rng.ctx"])
    ctx.load_state(meta.get("ctx") or {}, step=int(meta.get("step", 0)))


def _load_module(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise GanbenchError(f"checkpoint does not fit the {what}: {str(exc).splitlines()[0]} "
                            f"(were the hyperparameters changed?)") from None


def checkpoint_meta(*, model: str, config: dict[str, Any], step: int, dataset: str, seed: int,
                    latent: LatentSpec, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "model": model, "config": config, "step": step, "dataset": dataset, "seed": seed,
        "latent": latent.to_dict(), "ganbench_version": ganbench.__version__,
        "torch_version": torch.__version__,  # no timestamp: same run, same bytes
        **(extra or {}),
    }


# ---------------------------------------------------------------------------------------
# For evaluation
# ---------------------------------------------------------------------------------------
def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu", *,
                   ema: bool = True) -> tuple[GenerativeModel, dict[str, Any]]:
    """The generator of a training checkpoint, ready to sample, and its metadata.

    Args:
        path: a ``.safetensors`` checkpoint written by ``ganbench train`` (or the run folder).
        ema: use the EMA generator when the checkpoint has one.
    Returns:
        (generator in eval mode on ``device``, metadata: model, config, step, dataset,
        seed, latent, sha256/checkpoint_sha256, ema).
    """
    from ganbench.models.base import create_model, make_config, model_info

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    tensors, meta = read_checkpoint(path)
    info = model_info(meta["model"])
    config = make_config(info.config, meta.get("config", {}), model=meta["model"])
    with torch.random.fork_rng(devices=[]):  # building initialises weights: keep the caller's RNG
        model = create_model(meta["model"], config)
    _load_module(model, _prefixed(tensors, "model."), "model")
    generator = model.generator
    ema_state = _prefixed(tensors, "ema.")
    meta["ema"] = bool(ema and ema_state)
    if meta["ema"]:
        _load_module(generator, ema_state, "EMA generator")
    if "latent" in meta and LatentSpec.from_dict(meta["latent"]) != generator.latent:
        raise GanbenchError(f"checkpoint {str(path)!r}: the latent spec of the rebuilt generator "
                            f"differs from the recorded one")
    if isinstance(generator, ConditionalImageGenerator):
        generator.source_dataset = meta.get("dataset")  # what evaluation translates by default
    generator.eval().requires_grad_(False)
    return generator.to(device), meta
