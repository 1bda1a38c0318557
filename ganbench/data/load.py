"""The evaluation view of a dataset split: uint8 (N, C, H, W) in 0..255 plus labels."""
from __future__ import annotations

import torch

from ganbench.data.contract import SPLITS, DatasetSplit, open_split
from ganbench.errors import InputError
from ganbench.images import convert_uint8
from ganbench.registry import datasets


def load_images(spec: str, split: str | None = None, *, resolution: int | None = None,
                channels: int | None = None, limit: int | None = None,
                batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The images of a dataset split for evaluation.

    Args:
        spec: ``"mnist"``, ``"mnist:test"``, ``"folder:PATH"`` ... (see :mod:`ganbench.data`).
            For path datasets, ``split`` is accepted as the path when ``spec`` has none
            (``load_images("folder", "/data/imgs")``).
        split: ``"train"`` (default) or ``"test"``.
        resolution: output height = width; None keeps the native size (folders must
            then hold images of one size).
        channels: 1 or 3; None keeps the dataset's channels.
        limit: the first ``limit`` images only.
    Returns:
        uint8 (N, C, H, W) in 0..255 and int64 labels (N,) or None. Pass the images
        through :func:`ganbench.images.to_rgb_uint8` for the 3-channel contract.
    """
    if ":" not in spec and split not in (None, *SPLITS) and datasets.metadata(spec).get("takes_path"):
        spec, split = f"{spec}:{split}", None
    data = open_split(spec, split)
    n = len(data) if limit is None else min(limit, len(data))
    if data.in_memory:
        images, labels = data.batch(torch.arange(n))
        images = convert_uint8(images, resolution, channels)
    else:
        chunks, label_chunks = [], []
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(start + batch_size, n))
            x, y = _batch_resized(data, idx, resolution)
            chunks.append(convert_uint8(x, resolution, channels))
            label_chunks.append(y)
        images, labels = torch.cat(chunks), torch.cat(label_chunks)
    if data.num_classes == 0 or (labels < 0).any():
        labels = None
    return images, labels


def _batch_resized(data: DatasetSplit, idx: torch.Tensor, size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of a split whose images may differ in size: each resized on its own."""
    if data.image_size is not None:
        return data.batch(idx)
    items = [data.item(int(i)) for i in idx]
    sizes = {tuple(x.shape[1:]) for x, _ in items}
    if len(sizes) > 1 and size is None:
        raise InputError(f"{data.name}: images differ in size ({sorted(sizes)[:3]}...); "
                         f"pass a resolution")
    xs = [convert_uint8(x[None], size, None)[0] for x, _ in items]
    return torch.stack(xs), torch.tensor([y for _, y in items], dtype=torch.long)
