"""The training view of a dataset split: float images in [-1, 1], seeded batches by step."""
from __future__ import annotations

from typing import Iterator

import torch

from ganbench.data.contract import DatasetSplit, open_split
from ganbench.errors import GanbenchError
from ganbench.images import convert_uint8, uint8_to_float


class TrainingData(torch.utils.data.Dataset):
    """The training pipeline over a :class:`DatasetSplit`: float (C, H, W) in [-1, 1] at ``resolution``.

    Batches are addressed by step (:meth:`batches`), so a resumed run sees exactly the
    batches an uninterrupted run would: epoch ``e`` is a permutation drawn from
    ``(seed, e)``, step ``s`` takes the ``s``-th full batch of those epochs.
    """

    def __init__(self, split: DatasetSplit, resolution: int, channels: int):
        self.split, self.resolution, self.channels = split, resolution, channels
        self.name = split.name
        self.num_classes = split.num_classes
        # In-memory splits are converted once (uint8: MNIST at 64 px is 250 MB as uint8).
        self._converted: torch.Tensor | None = None
        if split.in_memory:
            self._converted = convert_uint8(split.images, resolution, channels)  # type: ignore[attr-defined]
        # paired datasets (ganbench.translation): source images, batched into Batch.extra["source"]
        self._sources = None if split.sources is None else convert_uint8(split.sources, resolution, None)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._converted is not None:
            x, y = self._converted[index], self.split.item(index)[1]
        else:
            x, y = self.split.item(index)
            x = convert_uint8(x[None], self.resolution, self.channels)[0]
        return uint8_to_float(x), y

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float (B, C, H, W) in [-1, 1] and int64 labels (-1 when unlabelled)."""
        if self._converted is not None:
            _, labels = self.split.batch(indices)
            return uint8_to_float(self._converted[indices]), labels
        items = [self[int(i)] for i in indices]
        return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items], dtype=torch.long)

    def steps_per_epoch(self, batch_size: int) -> int:
        return len(self) // batch_size

    def batch_indices(self, step: int, batch_size: int, seed: int) -> torch.Tensor:
        """The indices of the batch used at ``step`` (0-based)."""
        per_epoch = self.steps_per_epoch(batch_size)
        if per_epoch == 0:
            raise GanbenchError(f"{self.name}: {len(self)} images is fewer than one batch of {batch_size}")
        epoch, k = divmod(step, per_epoch)
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(_mix(seed, epoch)))
        return perm[k * batch_size:(k + 1) * batch_size]

    def extra_batch(self, step: int, batch_size: int, seed: int) -> dict[str, torch.Tensor]:
        """What a step's :class:`~ganbench.models.base.Batch` carries besides images and
        labels: ``{"source": float (B, C, H, W) in [-1, 1]}`` for paired datasets (aligned
        with the step's images; drawn from an independent seeded order when the dataset
        is unpaired), ``{}`` otherwise."""
        if self._sources is None:
            return {}
        indices = self.batch_indices(step, batch_size, seed if self.split.paired else _mix(seed, -1))
        return {"source": uint8_to_float(self._sources[indices])}

    def batches(self, batch_size: int, seed: int, start_step: int = 0,
                num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless seeded batches from ``start_step`` on (float images, int64 labels)."""
        if self._converted is not None or num_workers == 0:
            step = start_step
            while True:
                yield self.get_batch(self.batch_indices(step, batch_size, seed))
                step += 1
        sampler = _StepBatchSampler(self, batch_size, seed, start_step)
        loader = torch.utils.data.DataLoader(self, batch_sampler=sampler, num_workers=num_workers,
                                             persistent_workers=True)
        yield from loader


class _StepBatchSampler(torch.utils.data.Sampler):
    def __init__(self, data: TrainingData, batch_size: int, seed: int, start_step: int):
        self.data, self.batch_size, self.seed, self.start = data, batch_size, seed, start_step

    def __iter__(self):
        step = self.start
        while True:
            yield self.data.batch_indices(step, self.batch_size, self.seed).tolist()
            step += 1


def _mix(seed: int, epoch: int) -> int:
    """The seed of one epoch's permutation (epoch -1: an unpaired dataset's source order)."""
    return (seed * 1_000_003 + epoch * 7919 + 12345) % (2 ** 63)


def training_data(spec: str, split: str = "train", *, resolution: int | None = None,
                  channels: int | None = None) -> TrainingData:
    """A dataset split as float images in [-1, 1] for training.

    Args:
        spec: dataset name (``ganbench datasets`` lists them), e.g. ``"mnist"``.
        resolution: height = width of the images; None: the native size.
        channels: 1 or 3; None: the dataset's own.
    """
    data = open_split(spec, split)
    resolution = resolution or data.image_size
    if resolution is None:
        raise GanbenchError(f"{spec}: images vary in size; pass a resolution")
    return TrainingData(data, resolution, channels or data.channels)
