"""Datasets behind one image contract.

Every dataset is registered in :data:`ganbench.registries.datasets` as a *loader*
``open(split, arg) -> ImageSet``: the images of one split as uint8 (C, H, W) at their
native size, with integer labels where the dataset has them. Two views are built on it:

* :func:`get_dataset` -- training data: float tensors in [-1, 1] at the requested
  resolution and number of channels (:class:`TrainData`, seeded batches by step).
* :func:`load_images` -- evaluation references: uint8 (N, C, H, W) plus labels.

=====================  ===================================================================
name                   source
=====================  ===================================================================
``digits``             scikit-learn's bundled 8x8 digits (1,797 images; no download)
``mnist``              torchvision layout under ``$GANBENCH_DATA_DIR`` (``MNIST/raw/...``)
``fashion-mnist``      torchvision layout under ``$GANBENCH_DATA_DIR`` (``FashionMNIST/raw``)
``cifar10``            torchvision layout (``cifar-10-batches-py``)
``celeba``             torchvision layout (``celeba/img_align_celeba`` + list files),
                       centre-cropped to 178 x 178 (the DCGAN/PGGAN practice)
``folder:PATH``        image files under PATH (``PATH/train`` and ``PATH/test`` when they
                       exist, else every image for both splits); labels from class
                       sub-folders when every image sits in one
``npz:PATH``           arrays ``x_train``/``y_train``/``x_test``/``y_test``, or
                       ``images``/``labels`` (both splits), ...: the rule of
                       :func:`read_array_file`, which also reads ``-i``/``-r`` files
``mnist-edges``, ...   paired source -> target sets derived from MNIST for translation and
                       restoration models (:mod:`ganbench.translation`); the targets are
                       the images, the sources reach ``Batch.extra["source"]``
=====================  ===================================================================

Downloads (``mnist``, ``fashion-mnist``, ``cifar10``, ``celeba``) happen only when the
files are missing and ``GANBENCH_OFFLINE`` is not set; otherwise a one-line error names
the files expected and where to put them.

Third-party datasets register a loader with the same signature, through
:func:`register_dataset` or the ``ganbench.datasets`` entry-point group.
"""
from __future__ import annotations

import contextlib
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ganbench.errors import GanbenchError, InputError, MissingFileError, first_line
from ganbench.images import check_float_array, uint8_to_float
from ganbench.registries import datasets

SPLITS = ("train", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# The largest image read: 4096 x 4096 (16.8 Mpx), the largest output of current GANs
# (upsamplers to 4K); every extractor resizes to 299 px or less. Larger files are refused
# before decoding (decompression bombs declare 20000 x 20000 in a few KB).
MAX_IMAGE_SIDE = 4096


# ---------------------------------------------------------------------------------------
# The loader contract
# ---------------------------------------------------------------------------------------
class ImageSet:
    """The images of one split at native size: ``len``, ``item(i)``, ``batch(indices)``.

    Attributes:
        name: descriptor, e.g. ``"mnist:test"``.
        channels: 1 or 3.
        num_classes: number of label classes, 0 when unlabelled.
        image_size: native height = width, or None when images vary (folders).
    """

    name: str = ""
    channels: int = 3
    num_classes: int = 0
    image_size: int | None = None

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


class TensorImageSet(ImageSet):
    """Images held in memory as one uint8 (N, C, H, W) tensor."""

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


Loader = Callable[[str, "str | None"], ImageSet]


def register_dataset(name: str, *, description: str, channels: int, num_classes: int = 0,
                     image_size: int | None = None, takes_path: bool = False, source: str = ""):
    """Register ``loader(split, arg) -> ImageSet`` under ``name``.

    ``takes_path``: the dataset is named ``name:PATH`` and ``arg`` is PATH.
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


def open_split(spec: str, split: str | None = None) -> ImageSet:
    """The :class:`ImageSet` of a dataset split at native size (default split: train)."""
    parsed = parse_name(spec)
    split = split or parsed.split or "train"
    if split not in SPLITS:
        raise GanbenchError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    loader = datasets.get(parsed.name)
    images = loader(split, parsed.arg)
    if not isinstance(images, ImageSet):
        raise GanbenchError(f"dataset {parsed.name!r} returned {type(images).__name__}, expected an ImageSet")
    return images


def dataset_info(spec: str) -> dict[str, Any]:
    """Registry metadata of a dataset (channels, num_classes, image_size, description)."""
    return dict(datasets.metadata(parse_name(spec).name))


# ---------------------------------------------------------------------------------------
# Resizing and channels (uint8 in, uint8 out)
# ---------------------------------------------------------------------------------------
def convert_uint8(images: torch.Tensor, size: int | None, channels: int | None) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) to ``size`` x ``size`` and to ``channels``.

    Upsampling is bilinear; downsampling is bilinear with antialiasing (area-like);
    non-square images are centre-cropped first. 3 -> 1 channels takes the channel mean,
    1 -> 3 repeats the channel.
    """
    if channels is not None and channels != images.shape[1]:
        if channels == 1:
            images = images.float().mean(1, keepdim=True).round_().to(torch.uint8)
        elif channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        else:
            raise GanbenchError(f"cannot convert {images.shape[1]} channels to {channels}")
    h, w = images.shape[2:]
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        images = images[:, :, top:top + s, left:left + s]
        h = w = s
    if size is not None and size != h:
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                          align_corners=False, antialias=size < h)
        images = x.round_().clamp_(0, 255).to(torch.uint8)
    return images.contiguous()


def load_images(spec: str, split: str | None = None, *, resolution: int | None = None,
                channels: int | None = None, limit: int | None = None,
                batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The images of a dataset split for evaluation.

    Args:
        spec: ``"mnist"``, ``"mnist:test"``, ``"folder:PATH"`` ... (see the module docstring).
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


def _batch_resized(data: ImageSet, idx: torch.Tensor, size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of an ImageSet whose images may differ in size: each resized on its own."""
    if data.image_size is not None:
        return data.batch(idx)
    items = [data.item(int(i)) for i in idx]
    sizes = {tuple(x.shape[1:]) for x, _ in items}
    if len(sizes) > 1 and size is None:
        raise InputError(f"{data.name}: images differ in size ({sorted(sizes)[:3]}...); "
                         f"pass a resolution")
    xs = [convert_uint8(x[None], size, None)[0] for x, _ in items]
    return torch.stack(xs), torch.tensor([y for _, y in items], dtype=torch.long)


# ---------------------------------------------------------------------------------------
# Training view: float in [-1, 1], seeded batches addressed by step
# ---------------------------------------------------------------------------------------
class TrainData(torch.utils.data.Dataset):
    """A dataset split for training: float (C, H, W) in [-1, 1] at ``resolution``.

    Batches are addressed by step (:meth:`batches`), so a resumed run sees exactly the
    batches an uninterrupted run would: epoch ``e`` is a permutation drawn from
    ``(seed, e)``, step ``s`` takes the ``s``-th full batch of those epochs.
    """

    def __init__(self, images: ImageSet, resolution: int, channels: int):
        self.source, self.resolution, self.channels = images, resolution, channels
        self.name = images.name
        self.num_classes = images.num_classes
        # In-memory sets are converted once (uint8: MNIST at 64 px is 250 MB as uint8).
        self._converted: torch.Tensor | None = None
        if images.in_memory:
            self._converted = convert_uint8(images.images, resolution, channels)  # type: ignore[attr-defined]
        # paired datasets (ganbench.translation): source images, batched into Batch.extra["source"]
        sources = getattr(images, "sources", None)
        self._sources = None if sources is None else convert_uint8(sources, resolution, None)
        self._paired = bool(getattr(images, "paired", True))

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._converted is not None:
            x, y = self._converted[index], self.source.item(index)[1]
        else:
            x, y = self.source.item(index)
            x = convert_uint8(x[None], self.resolution, self.channels)[0]
        return uint8_to_float(x), y

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float (B, C, H, W) in [-1, 1] and int64 labels (-1 when unlabelled)."""
        if self._converted is not None:
            _, labels = self.source.batch(indices)
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
        indices = self.batch_indices(step, batch_size, seed if self._paired else _mix(seed, -1))
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
    def __init__(self, data: TrainData, batch_size: int, seed: int, start_step: int):
        self.data, self.batch_size, self.seed, self.start = data, batch_size, seed, start_step

    def __iter__(self):
        step = self.start
        while True:
            yield self.data.batch_indices(step, self.batch_size, self.seed).tolist()
            step += 1


def _mix(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 12345) % (2 ** 63)


def get_dataset(spec: str, split: str = "train", *, resolution: int | None = None,
                channels: int | None = None) -> TrainData:
    """A dataset split as float images in [-1, 1] for training.

    Args:
        spec: dataset name (``ganbench datasets`` lists them), e.g. ``"mnist"``.
        resolution: height = width of the images; None: the native size.
        channels: 1 or 3; None: the dataset's own.
    """
    images = open_split(spec, split)
    resolution = resolution or images.image_size
    if resolution is None:
        raise GanbenchError(f"{spec}: images vary in size; pass a resolution")
    return TrainData(images, resolution, channels or images.channels)


# ---------------------------------------------------------------------------------------
# Files: the one reader of array files and image folders (``-i``/``-r``, npz:, folder:)
# ---------------------------------------------------------------------------------------
_NPZ_NAMES = (("images", "labels"), ("x", "y"), ("arr_0", None))  # (images, labels) array names


def read_array_file(path: str | os.PathLike, split: str = "train") -> tuple[torch.Tensor, torch.Tensor | None]:
    """The images and labels of an ``.npy`` or ``.npz`` file; nothing is ever unpickled.

    An ``.npy`` holds the images. In an ``.npz`` the images are ``x_<split>`` when the
    file has ``x_train``/``x_test`` (then it must have that split), else the first of
    ``images``, ``x``, ``arr_0`` (``np.savez(path, array)``), else the file's only array;
    the labels are ``y_<split>``, ``labels`` or ``y`` beside them.

    Returns:
        uint8 (N, C, H, W) with C = 1 or 3 (from NHW, NHWC or NCHW; float arrays must
        hold whole numbers in 0..255) and int64 labels (N,) or None.
    Raises:
        InputError naming the file: damaged, pickled, ambiguous or not images.
    """
    what = str(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                x_name, y_name = _npz_names(what, loaded.files, split)
                x, y = loaded[x_name], loaded[y_name] if y_name else None
        else:
            x, y = loaded, None
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # damaged, pickled
        raise InputError(f"cannot read array file {what!r}: {first_line(exc)}") from None
    return _array_images(x, what), _array_labels(y, len(x), what)


def _npz_names(what: str, names: list[str], split: str) -> tuple[str, str | None]:
    if any(f"x_{s}" in names for s in SPLITS):
        pairs, expected = [(f"x_{split}", f"y_{split}")], f"x_{split}"
    else:
        pairs = [*_NPZ_NAMES, *([(names[0], None)] if len(names) == 1 else [])]
        expected = f"{', '.join(x for x, _ in _NPZ_NAMES)} or a single array"
    for x, y in pairs:
        if x in names:
            return x, y if y in names else None
    raise InputError(f"{what!r}: which array holds the images? expected {expected}; "
                     f"found {', '.join(sorted(names)) or 'no arrays'}")


def _array_images(x: np.ndarray, what: str) -> torch.Tensor:
    if x.dtype.kind == "f":
        x = check_float_array(x, what=what)
    if x.dtype != np.uint8:
        raise InputError(f"{what!r}: images must be uint8 0..255, got {x.dtype}")
    images = torch.from_numpy(np.ascontiguousarray(x))
    if images.dim() == 3:
        images = images[:, None]
    elif images.dim() == 4 and images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3):
        images = images.permute(0, 3, 1, 2)  # NHWC -> NCHW
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise InputError(f"{what!r}: expected images N x H x W (x 1|3) or N x 1|3 x H x W, got shape {x.shape}")
    return images.contiguous()


def _array_labels(y: np.ndarray | None, n: int, what: str) -> torch.Tensor | None:
    if y is None:
        return None
    if y.dtype.kind not in "iub" or y.size != n:
        raise InputError(f"{what!r}: labels must be {n} integers, got {y.dtype} of shape {y.shape}")
    return torch.from_numpy(y.astype(np.int64)).reshape(-1)


def image_files(root: Path) -> list[Path]:
    """The image files (:data:`IMAGE_EXTENSIONS`, any case) under ``root``, recursive, sorted by path."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Any]:
    """The image file at ``path`` as an open PIL image (header read, pixels not decoded).

    Images larger than :data:`MAX_IMAGE_SIDE` squared are refused before decoding; any
    error while the image is used becomes a one-line InputError naming the file.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below is lower
            img = Image.open(path)
        with img:
            if img.width * img.height > MAX_IMAGE_SIDE ** 2:
                raise Image.DecompressionBombError(f"{img.width}x{img.height} pixels")
            yield img
    except Image.DecompressionBombError as exc:  # ours, or PIL's (which fires first past 179 Mpx)
        size = str(exc).split(", could be")[0]
        raise InputError(f"image {str(path)!r} is too large ({size}); ganbench reads images up to "
                         f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # what PIL raises for broken files
        raise InputError(f"cannot read image {str(path)!r}: {first_line(exc)}") from None


def read_image(path: Path, mode: str) -> np.ndarray:
    """The pixels of an image file converted to PIL ``mode`` ("RGB": (H, W, 3), "L": (H, W)), uint8."""
    with open_image(path) as img:
        return np.asarray(img.convert(mode), dtype=np.uint8)


# ---------------------------------------------------------------------------------------
# Built-in datasets
# ---------------------------------------------------------------------------------------
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
def _digits(split: str, arg: str | None) -> ImageSet:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # values 0..16 -> 0..255, exact integers
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8))[:, None]
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    test = torch.arange(len(images)) % 5 == 0
    keep = test if split == "test" else ~test
    return TensorImageSet(f"digits:{split}", images[keep], labels[keep], 10)


def _torchvision_mnist(cls_name: str, folder: str, name: str):
    files = [f"{folder}/raw/{f}" for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]

    def load(split: str, arg: str | None) -> ImageSet:
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        root = data_dir()
        download = not _offline()
        try:
            ds = cls(str(root), train=split == "train", download=False)
        except RuntimeError:
            if not download:
                raise _missing(name, files, "unset GANBENCH_OFFLINE to download them") from None
            try:
                ds = cls(str(root), train=split == "train", download=True)
            except Exception as exc:
                raise _missing(name, files, f"check the network (download failed: {type(exc).__name__})") from None
        return TensorImageSet(f"{name}:{split}", ds.data[:, None].contiguous(), ds.targets, 10)

    return load


register_dataset("mnist", channels=1, num_classes=10, image_size=28,
                 description="MNIST handwritten digits (60k train / 10k test, 28x28)",
                 source="torchvision.datasets.MNIST")(_torchvision_mnist("MNIST", "MNIST", "mnist"))
register_dataset("fashion-mnist", channels=1, num_classes=10, image_size=28,
                 description="Fashion-MNIST clothing (60k train / 10k test, 28x28)",
                 source="torchvision.datasets.FashionMNIST")(
    _torchvision_mnist("FashionMNIST", "FashionMNIST", "fashion-mnist"))


@register_dataset("cifar10", channels=3, num_classes=10, image_size=32,
                  description="CIFAR-10 (50k train / 10k test, 32x32 RGB)",
                  source="torchvision.datasets.CIFAR10")
def _cifar10(split: str, arg: str | None) -> ImageSet:
    import torchvision

    root = data_dir()
    try:
        ds = torchvision.datasets.CIFAR10(str(root), train=split == "train", download=False)
    except RuntimeError:
        if _offline():
            raise _missing("cifar10", ["cifar-10-batches-py/"], "unset GANBENCH_OFFLINE to download them") from None
        try:
            ds = torchvision.datasets.CIFAR10(str(root), train=split == "train", download=True)
        except Exception as exc:
            raise _missing("cifar10", ["cifar-10-batches-py/"],
                           f"check the network (download failed: {type(exc).__name__})") from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return TensorImageSet(f"cifar10:{split}", images, torch.tensor(ds.targets), 10)


class _PILImageSet(ImageSet):
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
def _celeba(split: str, arg: str | None) -> ImageSet:
    root = data_dir()
    base = root / "celeba"
    files = ["celeba/img_align_celeba/", "celeba/list_eval_partition.txt"]
    if not (base / "list_eval_partition.txt").is_file() or not (base / "img_align_celeba").is_dir():
        if _offline():
            raise _missing("celeba", files, "unset GANBENCH_OFFLINE to download them")
        import torchvision

        try:
            torchvision.datasets.CelebA(str(root), split="train", download=True)
        except Exception as exc:
            raise _missing("celeba", files, f"download them by hand (download failed: {type(exc).__name__})") from None
    wanted = "0" if split == "train" else "2"  # partition 1 (validation) is left out
    paths = []
    for line in (base / "list_eval_partition.txt").read_text().split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[1] == wanted:
            paths.append(base / "img_align_celeba" / parts[0])
    return _PILImageSet(f"celeba:{split}", paths, None, 3, crop=178, image_size=178)


@register_dataset("folder", channels=3, takes_path=True,
                  description="image files under PATH (PATH/train, PATH/test if present); "
                              "class sub-folders give labels",
                  source="folder:PATH")
def _folder(split: str, arg: str | None) -> ImageSet:
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
    ds = _PILImageSet(f"folder:{arg}", paths, labels, channels, num_classes)
    ds.image_size = size[0] if paths and size[0] == size[1] else None
    return ds


@register_dataset("npz", channels=3, takes_path=True,
                  description="arrays x_train/y_train/x_test/y_test (or images/labels) in an .npz",
                  source="npz:PATH")
def _npz(split: str, arg: str | None) -> ImageSet:
    path = Path(arg or "").expanduser()
    if not path.is_file():
        raise MissingFileError(f"npz file {str(path)!r} does not exist")
    images, labels = read_array_file(path, split)
    num_classes = int(labels.max()) + 1 if labels is not None and len(labels) else 0
    return TensorImageSet(f"npz:{arg}:{split}", images, labels, num_classes)


# Paired datasets derived from MNIST (mnist-edges, mnist-degraded, ...); registered on import.
import ganbench.translation  # noqa: E402,F401
