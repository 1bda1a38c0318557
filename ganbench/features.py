"""One pass of feature extraction feeding every metric, with a feature cache.

:func:`extract` reads each batch of a source once and feeds it to every feature
extractor the requested metrics need. Under ``torchrun`` every rank takes a shard of the
batches and the features are gathered back in order, so the result equals the
single-process one.

The pass reads the next batch in a background thread (decoding files or sampling a
generator; on CUDA also pinning it and copying it on a side stream) while the device works
on the current one, keeps the features on the device until the end (one transfer per
feature), runs the extractors channels_last on CUDA, and computes in float32 with TF32 off
(the global flags are restored afterwards). ``precision="bf16"`` runs the extractors under
``torch.autocast`` instead: faster on GPUs, not the standard protocol (evaluation records it).

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
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from ganbench.atomic import atomic_path, remove_stale_temps
from ganbench.errors import UnknownNameError, write_problem
from ganbench.sources import ImageSource, iter_batches

FEATURE_FORMAT_VERSION = 1  # bump when cached features could change meaning
STANDARD_PRECISION = "float32"
PRECISIONS = (STANDARD_PRECISION, "bf16")  # the arithmetic of the extractors in the pass
PREFETCH_THREAD = "ganbench-prefetch"  # name prefix of the thread that reads the next batch


def check_precision(precision: str) -> str:
    """``precision`` when it is one of :data:`PRECISIONS`; else a one-line error listing them."""
    if precision not in PRECISIONS:
        raise UnknownNameError("precision", precision, PRECISIONS)
    return precision


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
            keep_images: bool = False, precision: str = STANDARD_PRECISION) -> Extraction:
    """Features of every image of ``source`` for every extractor, in one pass.

    Args:
        source: the images.
        extractors: {extractor name: (module, feature names wanted)}; on CUDA the modules
            are converted to channels_last in place (their values do not change).
        keep_images: also keep the images themselves (for paired metrics; the pass runs
            even when every extractor's features are cached).
        precision: "float32" (TF32 off) or "bf16" (autocast; cached under its own key).
    """
    check_precision(precision)
    cache_keys = _cache_keys(source, extractors, precision) if use_cache else {}
    results = {name: cached for name, key in cache_keys.items()
               if (cached := _read_cache(_cache_path(key), key)) is not None}
    todo = {name: (module, tuple(feats)) for name, (module, feats) in extractors.items() if name not in results}
    if not todo and not keep_images:
        return Extraction(results)
    batches = _run_pass(source, todo, batch_size=batch_size, device=torch.device(device), progress=progress,
                        label=label, keep_images=keep_images, precision=precision)
    for name, (_, feats) in todo.items():
        results[name] = {f: torch.cat([out[name][f] for _, out, _ in batches]) for f in feats}
        if name in cache_keys and distributed()[0] == 0:
            _write_cache(_cache_path(cache_keys[name]), cache_keys[name], results[name])
    return Extraction(results, torch.cat([images for _, _, images in batches]) if keep_images else None)


def _cache_keys(source: ImageSource, extractors: Extractors, precision: str) -> dict[str, dict[str, Any]]:
    """{extractor: the fields its cached features are keyed by}; empty when ``source``
    has no content key (a generator: nothing to cache). float32 keys carry no precision:
    the features cached before there was a choice stay valid."""
    content_key = source.content_key()
    if content_key is None:
        return {}
    remove_stale_temps(cache_dir())
    other = {} if precision == STANDARD_PRECISION else {"precision": precision}
    return {name: {"content": content_key, "num_samples": len(source), "features": sorted(feats),
                   "format": FEATURE_FORMAT_VERSION, **other, **module.describe()}
            for name, (module, feats) in extractors.items()}


def _run_pass(source: ImageSource, todo: Extractors, *, batch_size: int, device: torch.device, progress: bool,
              label: str, keep_images: bool, precision: str = STANDARD_PRECISION) -> list[BatchOutput]:
    """Every batch through every extractor of ``todo``, in batch order. Under a process
    group each rank takes a round-robin shard of the batches and they are gathered back."""
    rank, world = distributed()
    n_batches = (len(source) + batch_size - 1) // batch_size
    mine = range(rank, n_batches, world)
    batches: list[BatchOutput] = []
    bar = _progress_bar(min(len(mine) * batch_size, len(source)), label) if progress and rank == 0 else None
    try:
        with extractor_settings(todo, device, precision), torch.inference_mode(), \
                ThreadPoolExecutor(1, thread_name_prefix=PREFETCH_THREAD) as pool:  # joined on the way out
            for b, images, on_device in _prefetched(pool, source, batch_size, mine, device):
                outputs = {name: {f: out[f].float() for f in feats}  # left on the device until the end
                           for name, (module, feats) in todo.items() for out in [module(on_device, feats)]}
                batches.append((b, outputs, images.cpu() if keep_images else None))
                if bar is not None:
                    bar.update(len(images))
    finally:
        if bar is not None:
            bar.close()
    batches = _to_host(batches)
    if world > 1:
        gathered: list[Any] = [None] * world
        torch.distributed.all_gather_object(gathered, batches)
        batches = sorted((item for part in gathered for item in part), key=lambda item: item[0])
    return batches


def _progress_bar(total: int, label: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"features {label}".strip(), unit="img", file=sys.stderr, leave=False,
                dynamic_ncols=True)


# (batch index, the images as read, the images on the device, CUDA event after their copy or None)
ReadBatch = tuple[int, torch.Tensor, torch.Tensor, Any]


def _prefetched(pool: ThreadPoolExecutor, source: ImageSource, batch_size: int, indices: range,
                device: torch.device) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """``(batch index, images as read, images on the device)`` of each batch in ``indices``,
    in order; the next batch is read in ``pool``'s one thread while the caller works on
    this one. A source's error is raised here, as it was raised there."""
    batches = iter_batches(source, batch_size, indices)
    stream = torch.cuda.Stream(device) if device.type == "cuda" else None
    if stream is not None:  # what was queued before the pass (weights, a generator's) comes first
        stream.wait_stream(torch.cuda.current_stream(device))
    pending = pool.submit(_read_batch, batches, device, stream)
    while (batch := pending.result()) is not None:
        pending = pool.submit(_read_batch, batches, device, stream)
        b, images, on_device, copied = batch
        if copied is not None:  # the copy ran on the side stream: order it before the extractors
            current = torch.cuda.current_stream(device)
            current.wait_event(copied)
            on_device.record_stream(current)  # its memory is not reused before they are done
        yield b, images, on_device


def _read_batch(batches, device: torch.device, stream) -> ReadBatch | None:
    """The next batch of ``batches``, moved to ``device``: on CUDA read on ``stream``
    (a generator samples there), pinned and copied without blocking; None at the end."""
    with torch.inference_mode(), torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
        item = next(batches, None)
        if item is None:
            return None
        b, images = item
        if stream is None:
            return b, images, images.to(device), None
        host = images.pin_memory() if images.device.type == "cpu" else images
        return b, images, host.to(device, non_blocking=True), stream.record_event()


def _to_host(batches: list[BatchOutput]) -> list[BatchOutput]:
    """The batches with their features on the CPU: each feature concatenated on its device,
    moved once and split back (no transfer, no copy for features already on the CPU)."""
    if not batches:
        return batches
    outputs = [out for _, out, _ in batches]
    for name, feats in outputs[0].items():
        for f in feats:
            parts = [out[name][f] for out in outputs]
            if parts[0].device.type == "cpu":
                continue
            whole = torch.cat(parts).cpu().split([len(p) for p in parts])
            for out, part in zip(outputs, whole):
                out[name][f] = part
    return batches


@contextlib.contextmanager
def extractor_settings(extractors: Extractors, device: torch.device, precision: str = STANDARD_PRECISION):
    """How the pass runs its extractors: TF32 off, channels_last modules on CUDA (in place:
    the values stay), and for ``precision="bf16"`` autocast to bfloat16 (this thread only:
    a generator sampled in the prefetch thread is not affected)."""
    if device.type == "cuda":
        for module, _ in extractors.values():
            if isinstance(module, torch.nn.Module):
                module.to(memory_format=torch.channels_last)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with tf32_off(), autocast:
        yield


@contextlib.contextmanager
def tf32_off():
    """float32 means float32: TF32 off for CUDA matmuls and cuDNN convolutions (cuDNN allows
    it by default) for the duration, the global flags restored afterwards."""
    try:
        saved = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    except RuntimeError:  # the flags were set through the per-backend API (torch >= 2.9): use it
        with _per_backend_tf32_off():
            yield
        return
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]


@contextlib.contextmanager
def _per_backend_tf32_off():
    switches = (torch.backends.cuda.matmul, torch.backends.cudnn.conv, torch.backends.cudnn.rnn)
    saved = [switch.fp32_precision for switch in switches]
    for switch in switches:
        switch.fp32_precision = "ieee"
    try:
        yield
    finally:
        for switch, value in zip(switches, saved):
            switch.fp32_precision = value
