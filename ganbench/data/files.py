"""The one reader of image files: array files (``.npy``/``.npz``) and image files.

Every input read from disk goes through here: ``-i``/``-r`` files and folders
(:mod:`ganbench.sources`) and the ``npz:``/``folder:``/``celeba`` datasets.
"""
from __future__ import annotations

import contextlib
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ganbench.data.contract import SPLITS
from ganbench.errors import InputError, first_line
from ganbench.images import to_uint8_nchw

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# The largest image read: 4096 x 4096 (16.8 Mpx), the largest output of current GANs
# (upsamplers to 4K); every extractor resizes to 299 px or less. Larger files are refused
# before decoding (decompression bombs declare 20000 x 20000 in a few KB).
MAX_IMAGE_SIDE = 4096

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
    return to_uint8_nchw(x, what=repr(what), whole_floats=True), _array_labels(y, len(x), what)


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
