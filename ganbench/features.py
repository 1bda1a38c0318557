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

import contextlib
import hashlib
import json
import os
import re
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from ganbench.errors import write_problem
from ganbench.sources import ImageSource, iter_batches

FEATURE_FORMAT_VERSION = 1  # bump when cached features could change meaning
PIXELS = "_pixels"  # extract(keep_images=True): {PIXELS: {"images": uint8 (N, 3, H, W)}}
# Temp files are named FEATURE_TEMP_PREFIX + "<pid>@<host>-<random>.tmp", so the next run can
# tell a killed writer's leftovers (a dead pid on this host, or older than STALE_TEMP_S).
FEATURE_TEMP_PREFIX = ".features-"
STALE_TEMP_S = 3600  # a write takes seconds; an hour-old temp file is abandoned
_TEMP_NAME = re.compile(rf"{re.escape(FEATURE_TEMP_PREFIX)}(\d+)@(.*)-[^-]*\.tmp")


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
    from safetensors import safe_open

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
    except Exception as exc:  # corrupt, truncated, foreign: recompute
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
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{FEATURE_TEMP_PREFIX}{os.getpid()}@"
                                   f"{socket.gethostname()}-", suffix=".tmp")
        os.close(fd)
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)  # atomic
    except (OSError, SafetensorError) as exc:
        warnings.warn(f"cannot write feature cache {path.parent} ({write_problem(path, exc)}); "
                      f"these features were not cached", stacklevel=3)
    finally:
        if tmp is not None and os.path.exists(tmp):
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _remove_stale_temps(folder: Path) -> None:
    """Delete the temp files of writers killed mid-write (ours only: see FEATURE_TEMP_PREFIX)."""
    host = socket.gethostname()
    with contextlib.suppress(OSError):  # no cache folder yet, or not ours to clean
        for path in folder.glob(f"{FEATURE_TEMP_PREFIX}*.tmp"):
            match = _TEMP_NAME.fullmatch(path.name)
            with contextlib.suppress(OSError):  # another run removed it first
                if match and (time.time() - path.stat().st_mtime > STALE_TEMP_S
                              or match[2] == host and not _process_alive(int(match[1]))):
                    path.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


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


def extract(source: ImageSource, extractors: dict[str, tuple[torch.nn.Module, tuple[str, ...]]], *,
            batch_size: int = 64, device: torch.device | str = "cpu", use_cache: bool = True,
            progress: bool = True, label: str = "", keep_images: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """Features of every image of ``source`` for every extractor, in one pass.

    Args:
        source: the images.
        extractors: {extractor name: (module, feature names wanted)}.
        keep_images: also return the images themselves, in order, under
            ``{PIXELS: {"images": uint8 (N, 3, H, W)}}`` (for paired metrics; the pass
            runs even when every extractor's features are cached).
    Returns:
        {extractor name: {feature name: float32 (N, D) CPU tensor}}.
    """
    device = torch.device(device)
    n = len(source)
    results: dict[str, dict[str, torch.Tensor]] = {}
    todo: dict[str, tuple[torch.nn.Module, tuple[str, ...]]] = {}
    cache_keys: dict[str, dict[str, Any]] = {}
    content_key = source.content_key() if use_cache else None
    if content_key is not None:
        _remove_stale_temps(cache_dir())
    for name, (module, feats) in extractors.items():
        if content_key is not None:
            key_fields = {"content": content_key, "num_samples": n, "features": sorted(feats),
                          "format": FEATURE_FORMAT_VERSION, **module.describe()}
            cached = _read_cache(_cache_path(key_fields), key_fields)
            if cached is not None:
                results[name] = cached
                continue
            cache_keys[name] = key_fields
        todo[name] = (module, tuple(feats))
    if not todo and not keep_images:
        return results

    rank, world = distributed()
    n_batches = (n + batch_size - 1) // batch_size
    mine = range(rank, n_batches, world)  # round-robin shard of the batches
    batches: list[tuple[int, dict[str, dict[str, torch.Tensor]]]] = []
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=min(len(mine) * batch_size, n), desc=f"features {label}".strip(), unit="img",
                   file=sys.stderr, leave=False, dynamic_ncols=True)
    with torch.inference_mode():
        for b, images in iter_batches(source, batch_size, mine):
            images = images.to(device, non_blocking=True)
            outputs = {}
            for name, (module, feats) in todo.items():
                out = module(images, feats)
                outputs[name] = {f: out[f].float().cpu() for f in feats}
            if keep_images:
                outputs[PIXELS] = {"images": images.cpu()}
            batches.append((b, outputs))
            if bar is not None:
                bar.update(len(images))
    if bar is not None:
        bar.close()
    if world > 1:
        gathered: list[Any] = [None] * world
        torch.distributed.all_gather_object(gathered, batches)
        batches = sorted((item for part in gathered for item in part), key=lambda item: item[0])

    for name, (_, feats) in todo.items():
        results[name] = {f: torch.cat([out[name][f] for _, out in batches]) for f in feats}
        if name in cache_keys and rank == 0:
            _write_cache(_cache_path(cache_keys[name]), cache_keys[name], results[name])
    if keep_images:
        results[PIXELS] = {"images": torch.cat([out[PIXELS]["images"] for _, out in batches])}
    return results
