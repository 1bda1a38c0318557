"""One pass of feature extraction feeding every metric, with a feature cache.

:func:`extract` reads each batch of a source once and feeds it to every feature
extractor the requested metrics need. Under ``torchrun`` every rank takes a shard of the
batches and the features are gathered back in order, so the result equals the
single-process one.

Features of finite inputs (datasets, folders, arrays) are cached under
``$GANBENCH_CACHE_DIR`` (default: the user cache dir), keyed by a hash of everything
that determines them: the input's content, the extractor and its weights' sha256, its
preprocessing, the features and the number of samples. Files are written atomically
and verified when read; a corrupt or truncated file is recomputed, never trusted. A
cache that cannot be written is a warning, never a lost result; temp files of killed
writers are removed by the next run.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganbench.atomic import atomic_path, remove_stale_temps
from ganbench.errors import write_problem
from ganbench.sources import ImageSource, iter_batches

FEATURE_FORMAT_VERSION = 1  # bump when cached features could change meaning


def cache_dir() -> Path:
    env = os.environ.get("GANBENCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ganbench")) / "features"


def _cache_path(key_fields: dict[str, Any]) -> Path:
    blob = json.dumps(key_fields, sort_keys=True).encode()
    return cache_dir() / f"{hashlib.sha256(blob).hexdigest()[:32]}.safetensors"


def _read_cache(path: Path, key_fields: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    if not path.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if json.loads(meta.get("key", "null")) != key_fields:
            raise ValueError("key mismatch")
        digest = hashlib.sha256()
        for name in sorted(tensors):
            digest.update(name.encode() + tensors[name].contiguous().numpy().tobytes())
        if digest.hexdigest() != meta.get("checksum"):
            raise ValueError("checksum mismatch")
        n = key_fields["num_samples"]
        if any(t.shape[0] != n for t in tensors.values()):
            raise ValueError("wrong number of rows")
        return tensors
    except (OSError, ValueError, SafetensorError) as exc:  # corrupt, truncated, foreign: recompute
        warnings.warn(f"ignoring unreadable feature cache {path.name} ({exc}); recomputing", stacklevel=2)
        return None


def _write_cache(path: Path, key_fields: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Write atomically; when the cache cannot be written (read-only, full, a file in the
    way) warn and go on: the features are in memory and the caller gets them."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in tensors.items()}
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode() + tensors[name].numpy().tobytes())
    meta = {"key": json.dumps(key_fields, sort_keys=True), "checksum": digest.hexdigest()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
    except (OSError, SafetensorError) as exc:
        warnings.warn(f"cannot write feature cache {path.parent} ({write_problem(path, exc)}); "
                      f"these features were not cached", stacklevel=3)


def join_process_group(device: str | torch.device) -> None:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1), so that
    :func:`extract` shards its batches; a no-op otherwise or when already joined. Callers
    (the CLI, a user's script) start it; the library only uses a group that exists."""
    dist = torch.distributed
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)


def distributed() -> tuple[int, int]:
    """``(rank, world size)`` of the process group in use, ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


Extractors = dict[str, tuple[torch.nn.Module, tuple[str, ...]]]  # {name: (module, feature names wanted)}
# one batch's output: (batch index, {extractor: {feature: (B, D)}}, the images if kept)
BatchOutput = tuple[int, dict[str, dict[str, torch.Tensor]], torch.Tensor | None]


@dataclass(frozen=True)
class Extraction:
    """What one pass over an input gave."""

    features: dict[str, dict[str, torch.Tensor]]  # {extractor: {feature: float32 (N, D) CPU tensor}}
    images: torch.Tensor | None = None  # uint8 (N, 3, H, W) in order, when asked to keep them


def extract(source: ImageSource, extractors: Extractors, *, batch_size: int = 64,
            device: torch.device | str = "cpu", use_cache: bool = True, progress: bool = True, label: str = "",
            keep_images: bool = False) -> Extraction:
    """Features of every image of ``source`` for every extractor, in one pass.

    Args:
        source: the images.
        extractors: {extractor name: (module, feature names wanted)}.
        keep_images: also keep the images themselves (for paired metrics; the pass runs
            even when every extractor's features are cached).
    """
    cache_keys = _cache_keys(source, extractors) if use_cache else {}
    results = {name: cached for name, key in cache_keys.items()
               if (cached := _read_cache(_cache_path(key), key)) is not None}
    todo = {name: (module, tuple(feats)) for name, (module, feats) in extractors.items() if name not in results}
    if not todo and not keep_images:
        return Extraction(results)
    batches = _run_pass(source, todo, batch_size=batch_size, device=torch.device(device), progress=progress,
                        label=label, keep_images=keep_images)
    for name, (_, feats) in todo.items():
        results[name] = {f: torch.cat([out[name][f] for _, out, _ in batches]) for f in feats}
        if name in cache_keys and distributed()[0] == 0:
            _write_cache(_cache_path(cache_keys[name]), cache_keys[name], results[name])
    return Extraction(results, torch.cat([images for _, _, images in batches]) if keep_images else None)


def _cache_keys(source: ImageSource, extractors: Extractors) -> dict[str, dict[str, Any]]:
    """{extractor: the fields its cached features are keyed by}; empty when ``source``
    has no content key (a generator: nothing to cache)."""
    content_key = source.content_key()
    if content_key is None:
        return {}
    remove_stale_temps(cache_dir())
    return {name: {"content": content_key, "num_samples": len(source), "features": sorted(feats),
                   "format": FEATURE_FORMAT_VERSION, **module.describe()}
            for name, (module, feats) in extractors.items()}


def _run_pass(source: ImageSource, todo: Extractors, *, batch_size: int, device: torch.device, progress: bool,
              label: str, keep_images: bool) -> list[BatchOutput]:
    """Every batch through every extractor of ``todo``, in batch order. Under a process
    group each rank takes a round-robin shard of the batches and they are gathered back."""
    rank, world = distributed()
    n_batches = (len(source) + batch_size - 1) // batch_size
    mine = range(rank, n_batches, world)
    batches: list[BatchOutput] = []
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=min(len(mine) * batch_size, len(source)), desc=f"features {label}".strip(), unit="img",
                   file=sys.stderr, leave=False, dynamic_ncols=True)
    with torch.inference_mode():
        for b, images in iter_batches(source, batch_size, mine):
            images = images.to(device, non_blocking=True)
            outputs = {name: {f: out[f].float().cpu() for f in feats}
                       for name, (module, feats) in todo.items() for out in [module(images, feats)]}
            batches.append((b, outputs, images.cpu() if keep_images else None))
            if bar is not None:
                bar.update(len(images))
    if bar is not None:
        bar.close()
    if world > 1:
        gathered: list[Any] = [None] * world
        torch.distributed.all_gather_object(gathered, batches)
        batches = sorted((item for part in gathered for item in part), key=lambda item: item[0])
    return batches
