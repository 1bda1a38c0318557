"""What a dataset is: a registered loader that returns a :class:`DatasetSplit`.

A loader ``open(split, arg) -> DatasetSplit`` gives the images of one split as uint8
(C, H, W) at their native size, with integer labels where the dataset has them; it is
registered with :func:`register_dataset` and opened by name with :func:`open_split`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ganbench.errors import GanbenchError, InputError
from ganbench.registry import datasets

SPLITS = ("train", "test")


class DatasetSplit:
    """The images of one split at native size: ``len``, ``item(i)``, ``batch(indices)``.

    Attributes:
        name: descriptor, e.g. ``"mnist:test"``.
        channels: 1 or 3.
        num_classes: number of label classes, 0 when unlabelled.
        image_size: native height = width, or None when images vary (folders).
        sources: paired datasets only (:mod:`ganbench.translation`): uint8 (N, C, H, W)
            source images aligned with the images (the targets); None otherwise.
        paired: False when training must draw the sources independently of the targets.
    """

    name: str = ""
    channels: int = 3
    num_classes: int = 0
    image_size: int | None = None
    sources: torch.Tensor | None = None
    paired: bool = True

    def __len__(self) -> int:
        raise NotImplementedError

    def item(self, index: int) -> tuple[torch.Tensor, int]:
        """Image ``index`` as uint8 (C, H, W) and its label (-1 when unlabelled)."""
        raise NotImplementedError

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (B, C, H, W) and int64 labels (B,) (-1 when unlabelled); same-size images."""
        items = [self.item(int(i)) for i in indices]
        return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items], dtype=torch.long)

    @property
    def in_memory(self) -> bool:
        return False


class InMemorySplit(DatasetSplit):
    """Images held in memory as one uint8 (N, C, H, W) tensor (``.images``)."""

    def __init__(self, name: str, images: torch.Tensor, labels: torch.Tensor | None,
                 num_classes: int = 0):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise InputError(f"{name}: expected uint8 images (N, 1|3, H, W), got "
                             f"{images.dtype} {tuple(images.shape)}")
        if len(images) == 0:
            raise InputError(f"{name}: contains no images")
        self.name, self.images = name, images.contiguous()
        self.labels = None if labels is None else labels.long()
        self.channels = images.shape[1]
        self.num_classes = num_classes if labels is not None else 0
        h, w = images.shape[2:]
        self.image_size = h if h == w else None

    def __len__(self):
        return len(self.images)

    def item(self, index):
        return self.images[index], -1 if self.labels is None else int(self.labels[index])

    def batch(self, indices):
        labels = self.labels[indices] if self.labels is not None else torch.full((len(indices),), -1)
        return self.images[indices], labels

    @property
    def in_memory(self) -> bool:
        return True


Loader = Callable[[str, "str | None"], DatasetSplit]


def register_dataset(name: str, *, description: str, channels: int, num_classes: int = 0,
                     image_size: int | None = None, takes_path: bool = False, source: str = ""):
    """Register ``loader(split, arg) -> DatasetSplit`` under ``name``.

    ``takes_path``: the dataset is named ``name:PATH`` and ``arg`` is PATH.
    ``source``: where the images come from, for listings (``torchvision.datasets.MNIST``).
    """
    return datasets.register(name, description=description, channels=channels,
                             num_classes=num_classes, image_size=image_size,
                             takes_path=takes_path, source=source)


# ---------------------------------------------------------------------------------------
# Names: "mnist", "mnist:test", "folder:PATH", "npz:PATH"
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetName:
    name: str  # registry name ("mnist", "folder")
    arg: str | None  # PATH for folder:/npz:
    split: str | None  # "train"/"test" when the descriptor named one

    @property
    def key(self) -> str:
        """The key model defaults are looked up by (the registry name)."""
        return self.name

    def __str__(self) -> str:
        return f"{self.name}:{self.arg}" if self.arg is not None else self.name


def parse_name(spec: str) -> DatasetName:
    """Split ``mnist``, ``mnist:test``, ``folder:PATH`` into name / path / split."""
    name, sep, rest = spec.partition(":")
    entry = datasets.entry(name)  # raises UnknownNameError with a suggestion
    if entry.metadata.get("takes_path"):
        if not rest:
            raise GanbenchError(f"dataset {name!r} needs a path: {name}:PATH")
        return DatasetName(name, rest, None)
    if sep and rest not in SPLITS:
        raise GanbenchError(f"unknown split {rest!r} in {spec!r}; splits: {', '.join(SPLITS)}")
    return DatasetName(name, None, rest or None)


def open_split(spec: str, split: str | None = None) -> DatasetSplit:
    """The :class:`DatasetSplit` of a dataset at native size (default split: train)."""
    parsed = parse_name(spec)
    split = split or parsed.split or "train"
    if split not in SPLITS:
        raise GanbenchError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    loader = datasets.get(parsed.name)
    images = loader(split, parsed.arg)
    if not isinstance(images, DatasetSplit):
        raise GanbenchError(f"dataset {parsed.name!r} returned {type(images).__name__}, expected a DatasetSplit")
    return images


def dataset_info(spec: str) -> dict[str, Any]:
    """Registry metadata of a dataset (channels, num_classes, image_size, description)."""
    return dict(datasets.metadata(parse_name(spec).name))
