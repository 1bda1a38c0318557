"""The built-in datasets: digits, mnist, fashion-mnist, cifar10, celeba, folder:PATH, npz:PATH.

Registered on import (the datasets registry imports this module on first use). Downloads
happen only when the files are missing and ``GANBENCH_OFFLINE`` is not set; otherwise a
one-line error names the files expected and where to put them.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ganbench.data.contract import DatasetSplit, InMemorySplit, Loader, register_dataset
from ganbench.data.files import IMAGE_EXTENSIONS, image_files, open_image, read_array_file, read_image
from ganbench.errors import InputError, MissingFileError


def data_dir() -> Path:
    """Where downloaded datasets live: ``$GANBENCH_DATA_DIR``, else ``~/.cache/ganbench/data``."""
    env = os.environ.get("GANBENCH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("GANBENCH_CACHE_DIR", Path.home() / ".cache" / "ganbench")).expanduser() / "data"


def _offline() -> bool:
    return os.environ.get("GANBENCH_OFFLINE", "").lower() in ("1", "true", "yes")


def _missing(name: str, files: list[str], how: str) -> MissingFileError:
    root = data_dir()
    return MissingFileError(
        f"{name} not found: expected {', '.join(str(root / f) for f in files)}; put the files "
        f"there (set GANBENCH_DATA_DIR=... to use another folder) or {how}")


@register_dataset("digits", channels=1, num_classes=10, image_size=8,
                  description="scikit-learn's bundled 8x8 handwritten digits (1,797 images); "
                              "test = every 5th image",
                  source="sklearn.datasets.load_digits")
def _digits(split: str, arg: str | None) -> DatasetSplit:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # values 0..16 -> 0..255, exact integers
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8))[:, None]
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    test = torch.arange(len(images)) % 5 == 0
    keep = test if split == "test" else ~test
    return InMemorySplit(f"digits:{split}", images[keep], labels[keep], 10)


def _torchvision(cls_name: str, name: str, files: list[str], split: str):
    """A torchvision dataset split under :func:`data_dir`, downloaded only when missing."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    root, train = str(data_dir()), split == "train"
    try:
        return cls(root, train=train, download=False)
    except RuntimeError:
        if _offline():
            raise _missing(name, files, "unset GANBENCH_OFFLINE to download them") from None
    try:
        return cls(root, train=train, download=True)
    except Exception as exc:  # noqa: BLE001 -- network, HTTP, checksum: all mean "not downloaded"
        raise _missing(name, files, f"check the network (download failed: {type(exc).__name__})") from None


def _mnist_like(cls_name: str, name: str) -> Loader:
    files = [f"{cls_name}/raw/{f}" for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]

    def load(split: str, arg: str | None) -> DatasetSplit:
        ds = _torchvision(cls_name, name, files, split)
        return InMemorySplit(f"{name}:{split}", ds.data[:, None].contiguous(), ds.targets, 10)

    return load


register_dataset("mnist", channels=1, num_classes=10, image_size=28,
                 description="MNIST handwritten digits (60k train / 10k test, 28x28)",
                 source="torchvision.datasets.MNIST")(_mnist_like("MNIST", "mnist"))
register_dataset("fashion-mnist", channels=1, num_classes=10, image_size=28,
                 description="Fashion-MNIST clothing (60k train / 10k test, 28x28)",
                 source="torchvision.datasets.FashionMNIST")(_mnist_like("FashionMNIST", "fashion-mnist"))


@register_dataset("cifar10", channels=3, num_classes=10, image_size=32,
                  description="CIFAR-10 (50k train / 10k test, 32x32 RGB)",
                  source="torchvision.datasets.CIFAR10")
def _cifar10(split: str, arg: str | None) -> DatasetSplit:
    ds = _torchvision("CIFAR10", "cifar10", ["cifar-10-batches-py/"], split)
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return InMemorySplit(f"cifar10:{split}", images, torch.tensor(ds.targets), 10)


class ImageFileSplit(DatasetSplit):
    """Images read from files on demand (folders, CelebA)."""

    def __init__(self, name: str, paths: list[Path], labels: list[int] | None, channels: int,
                 num_classes: int = 0, crop: int | None = None, image_size: int | None = None):
        if not paths:
            raise InputError(f"{name}: contains no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.name, self.paths, self.labels = name, paths, labels
        self.channels, self.num_classes, self.crop, self.image_size = channels, num_classes, crop, image_size

    def __len__(self):
        return len(self.paths)

    def item(self, index):
        x = torch.from_numpy(read_image(self.paths[index], "RGB" if self.channels == 3 else "L").copy())
        x = x[None] if x.dim() == 2 else x.permute(2, 0, 1)
        if self.crop:
            h, w = x.shape[1:]
            top, left = (h - self.crop) // 2, (w - self.crop) // 2
            x = x[:, top:top + self.crop, left:left + self.crop]
        return x.contiguous(), -1 if self.labels is None else self.labels[index]


@register_dataset("celeba", channels=3, num_classes=0, image_size=178,
                  description="CelebA aligned faces (162,770 train / 19,962 test), centre crop 178",
                  source="torchvision.datasets.CelebA")
def _celeba(split: str, arg: str | None) -> DatasetSplit:
    root = data_dir()
    base = root / "celeba"
    files = ["celeba/img_align_celeba/", "celeba/list_eval_partition.txt"]
    if not (base / "list_eval_partition.txt").is_file() or not (base / "img_align_celeba").is_dir():
        if _offline():
            raise _missing("celeba", files, "unset GANBENCH_OFFLINE to download them")
        import torchvision

        try:
            torchvision.datasets.CelebA(str(root), split="train", download=True)
        except Exception as exc:  # noqa: BLE001 -- network, HTTP, checksum: all mean "not downloaded"
            raise _missing("celeba", files, f"download them by hand (download failed: {type(exc).__name__})") from None
    wanted = "0" if split == "train" else "2"  # partition 1 (validation) is left out
    paths = []
    for line in (base / "list_eval_partition.txt").read_text().split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[1] == wanted:
            paths.append(base / "img_align_celeba" / parts[0])
    return ImageFileSplit(f"celeba:{split}", paths, None, 3, crop=178, image_size=178)


@register_dataset("folder", channels=3, takes_path=True,
                  description="image files under PATH (PATH/train, PATH/test if present); "
                              "class sub-folders give labels",
                  source="folder:PATH")
def _folder(split: str, arg: str | None) -> DatasetSplit:
    root = Path(arg or "").expanduser()
    if not root.is_dir():
        raise MissingFileError(f"folder {str(root)!r} does not exist")
    if (root / "train").is_dir() and (root / "test").is_dir():
        root = root / split
    paths = image_files(root)
    labels, num_classes = None, 0
    classes = sorted({p.parent.relative_to(root).parts[0] for p in paths if p.parent != root})
    if classes and all(p.parent != root for p in paths):
        index = {c: i for i, c in enumerate(classes)}
        labels = [index[p.relative_to(root).parts[0]] for p in paths]
        num_classes = len(classes)
    channels = 3
    if paths:
        with open_image(paths[0]) as im:
            channels = 1 if im.mode in ("L", "1", "I;16", "I") else 3
            size = im.size
    ds = ImageFileSplit(f"folder:{arg}", paths, labels, channels, num_classes)
    ds.image_size = size[0] if paths and size[0] == size[1] else None
    return ds


@register_dataset("npz", channels=3, takes_path=True,
                  description="arrays x_train/y_train/x_test/y_test (or images/labels) in an .npz",
                  source="npz:PATH")
def _npz(split: str, arg: str | None) -> DatasetSplit:
    path = Path(arg or "").expanduser()
    if not path.is_file():
        raise MissingFileError(f"npz file {str(path)!r} does not exist")
    images, labels = read_array_file(path, split)
    num_classes = int(labels.max()) + 1 if labels is not None and len(labels) else 0
    return InMemorySplit(f"npz:{arg}:{split}", images, labels, num_classes)
