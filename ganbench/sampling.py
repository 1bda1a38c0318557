"""Samples from a generator, exactly as ``ganbench eval`` draws them: grids, PNG files,
``.npz`` arrays, latent interpolations.

A generator is opened as :func:`ganbench.sources.resolve_source` opens it for evaluation
(checkpoint, training run folder, registered generator; image-conditioned models translate
``source``), and its samples are the first N of the sequence that an evaluation with the
same seed scores: same latents, same order, same class labels
(:class:`ganbench.sources.GeneratorSource`). So ``ganbench sample CKPT -n N --npz x.npz``
then ``ganbench eval -i x.npz`` gives the numbers of ``ganbench eval -i CKPT -n N``.

Outputs (uint8 throughout, the image contract of :mod:`ganbench.images`):

* a grid (PNG): a square grid of the first samples; for a class-conditional model one row
  per class, holding the first samples of the sequence conditioned on that class;
* a folder of numbered PNG files ``000000.png``, ... (sample order);
* an ``.npz`` with ``images`` uint8 (N, 3, H, W), the layout ``ganbench eval`` reads
  (:func:`ganbench.data.read_array_file`) and torch-fidelity's image datasets yield, and
  ``labels`` int64 (N,) for class-conditional models;
* an interpolation: path r walks from sample 2r to sample 2r+1 in K steps (slerp between
  normal latents, lerp between uniform ones), as a grid (one path per row) or an animated
  GIF (one frame per step, there and back).

Truncation (``truncation=``) goes through a model's ``set_truncation(value)`` hook
(BigGAN: the threshold of the truncated normal; StyleGAN: psi in W); with it the samples
are no longer the ones an evaluation of the model scores.

    >>> from ganbench.sampling import sample
    >>> sample("runs/biggan", grid="classes.png", classes=[0, 3, 7], truncation=0.5)
    >>> sample("runs/dcgan", npz="fake.npz", num_samples=10_000)  # what eval -n 10000 scores
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ganbench.atomic import atomic_path
from ganbench.errors import GanbenchError, InputError, write_problem
from ganbench.sources import LATENT_CHUNK, GeneratorSource, ImageSource, TranslationSource, resolve_source

DEFAULT_SAMPLES = 64  # images of a grid, a folder or an .npz when no number is given
DEFAULT_PER_CLASS = 8  # images per class row of a class-conditional grid when no number is given
DEFAULT_PATHS = 8  # interpolation paths when no number is given
MAX_DEFAULT_ROWS = 20  # beyond this many classes a grid needs explicit classes
SCAN_PER_IMAGE = 100  # latents scanned per requested image before a class is declared unreachable
GIF_FRAME_MS = 80
GRID_PAD = 2


def open_generator(input: Any, *, num_samples: int, seed: int = 0, device: torch.device | str = "cpu",
                   source: str | None = None) -> ImageSource:
    """The generator behind ``input`` as evaluation opens it: a :class:`GeneratorSource` of
    ``num_samples`` seeded samples, or the :class:`TranslationSource` of an image-conditioned
    model. Inputs that hold images (folders, arrays, dataset splits) are refused."""
    found = resolve_source(input, num_samples=num_samples, seed=seed, device=device, source=source)
    if not (found.is_generator or isinstance(found, TranslationSource)):
        raise InputError(f"{found.descriptor!r} holds images, not a generator: sample draws from a checkpoint, "
                         f"a training run folder or a registered generator")
    return found


@contextlib.contextmanager
def truncated(source: ImageSource, value: float | None) -> Iterator[None]:
    """Sample with the model's truncation trick set to ``value`` (None: as it is), through
    its ``set_truncation`` hook; the previous setting is restored afterwards."""
    if value is None:
        yield
        return
    setter = getattr(getattr(source, "model", None), "set_truncation", None)
    if setter is None:
        raise InputError(f"--truncation: {source.descriptor!r} has no truncation trick (BigGAN and StyleGAN have one)")
    if not math.isfinite(value):
        raise InputError(f"--truncation must be a finite number, got {value}")
    previous = setter(value)
    try:
        yield
    finally:
        setter(previous)


def draw(source: ImageSource, n: int, *, batch_size: int = 64,
         progress: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first ``n`` images of ``source`` as uint8 (n, 3, H, W), drawn in batches of
    ``batch_size`` (as evaluation draws them), with their class labels (int64 (n,)) or None."""
    if n > len(source):
        raise InputError(f"{source.descriptor}: asked for {n} samples but it gives only {len(source)}")
    if batch_size <= 0:
        raise GanbenchError(f"batch size must be positive, got {batch_size}")
    images = None
    with _progress_bar(n, progress) as bar:
        for start in range(0, n, batch_size):
            batch = source.images(start, min(start + batch_size, n))
            if images is None:
                images = torch.empty((n, *batch.shape[1:]), dtype=torch.uint8)
            images[start:start + len(batch)] = batch
            bar.update(len(batch))
    labels = source.class_labels()
    return images, None if labels is None else labels[:n]


class LatentsSource(GeneratorSource):
    """Given latents (and labels) through a generator source's model and image conversion."""

    def __init__(self, parent: GeneratorSource, z: torch.Tensor, labels: torch.Tensor | None):
        super().__init__(parent.model, len(z), parent.seed, parent.device, parent.descriptor, parent.metadata)
        self.given_z, self.given_labels = z.cpu(), None if labels is None else labels.cpu()

    def latents(self, start, stop):
        labels = None if self.given_labels is None else self.given_labels[start:stop].to(self.device)
        return self.given_z[start:stop].to(self.device), labels


def class_rows(source: GeneratorSource, classes: Sequence[int], per_class: int, *,
               batch_size: int = 64) -> torch.Tensor:
    """uint8 (len(classes) * per_class, 3, H, W): for each class in turn, the first
    ``per_class`` samples of the evaluation's sequence that are conditioned on it."""
    indices, z, labels = class_latents(source, classes, per_class)
    return draw(LatentsSource(source, z, labels), len(indices), batch_size=batch_size)[0]


def class_latents(source: GeneratorSource, classes: Sequence[int],
                  per_class: int) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """(sample indices, their z, their labels), class by class: the first ``per_class``
    samples of ``source``'s latent sequence drawn for each class of ``classes``."""
    num_classes = source.model.latent.num_classes
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise InputError(f"--classes {bad[0]}: {source.descriptor!r} has classes 0..{num_classes - 1}")
    found: dict[int, list[tuple[int, torch.Tensor]]] = {c: [] for c in classes}
    limit = max(LATENT_CHUNK, SCAN_PER_IMAGE * per_class * num_classes)
    for start in range(0, limit, LATENT_CHUNK):
        z, labels = source.latents(start, start + LATENT_CHUNK)
        for offset, label in enumerate(labels.tolist()):
            if label in found and len(found[label]) < per_class:
                found[label].append((start + offset, z[offset].cpu()))
        if all(len(rows) == per_class for rows in found.values()):
            break
    else:
        raise InputError(f"{source.descriptor!r}: fewer than {per_class} samples of some class among the first "
                         f"{limit} latents")
    chosen = [item for c in classes for item in found[c]]
    labels = torch.tensor([c for c in classes for _ in range(per_class)], dtype=torch.int64)
    return [i for i, _ in chosen], torch.stack([row for _, row in chosen]), labels


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the rows of ``a`` and ``b`` (N, D) at fractions ``t``
    (T,): (N, T, D), exactly ``a`` at t = 0 and ``b`` at t = 1 (float64 inside)."""
    a64, b64, t = a.double(), b.double(), t.double()[None, :]
    cos = (F.normalize(a64, dim=1) * F.normalize(b64, dim=1)).sum(1).clamp(-1.0, 1.0)
    omega = torch.acos(cos)[:, None]
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-8  # (anti)parallel rows: no plane to rotate in, lerp instead
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    wa = torch.where(parallel, 1.0 - t, torch.sin((1.0 - t) * omega) / safe)
    wb = torch.where(parallel, t, torch.sin(t * omega) / safe)
    return (wa[..., None] * a64[:, None] + wb[..., None] * b64[:, None]).to(a.dtype)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation, shaped as :func:`slerp`."""
    t = t.double()[None, :, None]
    return ((1.0 - t) * a.double()[:, None] + t * b.double()[:, None]).to(a.dtype)


def interpolation(source: GeneratorSource, paths: int, steps: int, *, batch_size: int = 64) -> torch.Tensor:
    """uint8 (paths, steps, 3, H, W): path r walks from sample 2r of the evaluation's
    sequence to sample 2r + 1 (slerp for normal latents, lerp for uniform ones); a class-
    conditional model keeps the class of sample 2r along the path."""
    if steps < 2:
        raise InputError(f"--interpolate needs at least 2 steps (the two ends), got {steps}")
    z, labels = source.latents(0, 2 * paths)
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    walk = slerp if source.model.latent.z_dist == "normal" else lerp
    z = walk(z[0::2].cpu(), z[1::2].cpu(), t).reshape(paths * steps, -1)
    labels = None if labels is None else labels[0::2].cpu().repeat_interleave(steps)
    images = draw(LatentsSource(source, z, labels), paths * steps, batch_size=batch_size)[0]
    return images.view(paths, steps, *images.shape[1:])


def make_grid(images: torch.Tensor, columns: int, pad: int = GRID_PAD) -> torch.Tensor:
    """uint8 (N, C, H, W) -> one uint8 (C, H', W') image, rows of ``columns``, black gaps."""
    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    grid = torch.zeros(c, rows * (h + pad) + pad, columns * (w + pad) + pad, dtype=torch.uint8)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        grid[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = image
    return grid


def sample(input: Any, *, grid: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
           npz: str | os.PathLike | None = None, num_samples: int | None = None, seed: int = 0,
           truncation: float | None = None, interpolate: int | None = None, classes: Sequence[int] | None = None,
           source: str | None = None, device: torch.device | str | None = None, batch_size: int = 64,
           force: bool = False, progress: bool = False) -> list[Path]:
    """Draw samples of a generator and write the outputs asked for; returns the files written.

    Args:
        input: checkpoint, training run folder, registered generator name or generator object.
        grid: a .png grid; with ``interpolate`` a .png (a path per row) or an animated .gif.
        out: a folder for numbered PNG files. npz: an .npz (``images``, ``labels``).
        num_samples: images (default 64; a class-conditional grid: 8 per class row, else
            split evenly over the rows), or interpolation paths (default 8).
        seed: the evaluation's seed: the samples ``evaluate(input, seed=seed)`` scores.
        truncation: the model's truncation trick (BigGAN: threshold; StyleGAN: psi).
        interpolate: steps K per interpolation path (ends included).
        classes: the rows of a class-conditional grid (default: every class).
        source: the images an image-conditioned model translates (as ``evaluate``'s).
        device: where the generator runs (default: cuda when available).
        batch_size: images per forward pass (as ``evaluate``'s ``batch_size``).
        force: overwrite existing outputs; without it they are refused before anything is drawn.
    Raises:
        GanbenchError: one-line messages for bad inputs, options and outputs.
    """
    from ganbench.evaluation import default_device
    from ganbench.features import tf32_off

    paths = _check_request(grid, out, npz, force=force, interpolate=interpolate, classes=classes)
    found = open_generator(input, num_samples=num_samples or DEFAULT_SAMPLES, seed=seed,
                           device=device or default_device(), source=source)
    with truncated(found, truncation), tf32_off():  # as the feature pass samples: the images evaluate scores
        if interpolate is not None:
            _write_interpolation(found, paths["grid"], num_samples or DEFAULT_PATHS, interpolate,
                                 batch_size=batch_size, overwrite=force)
            return [paths["grid"]]
        if grid is not None:
            images, columns = grid_images(found, num_samples, classes, batch_size=batch_size)
            write_png(make_grid(images, columns), paths["grid"], overwrite=force)
        if out is not None or npz is not None:
            n = num_samples or min(DEFAULT_SAMPLES, len(found))
            images, labels = draw(found, n, batch_size=batch_size, progress=progress)
            if out is not None:
                write_folder(images, paths["out"], overwrite=force)
            if npz is not None:
                write_npz(images, labels, paths["npz"], overwrite=force)
    return list(paths.values())


def _check_request(grid, out, npz, *, force: bool, interpolate: int | None,
                   classes: Sequence[int] | None) -> dict[str, Path]:
    """The output paths, checked (and combinations of options refused) before any sampling."""
    if grid is None and out is None and npz is None:
        raise GanbenchError("nothing to write: give --grid FILE.png, --out FOLDER or --npz FILE.npz")
    if interpolate is not None and (grid is None or out is not None or npz is not None):
        raise GanbenchError("--interpolate writes a --grid (.png, or .gif for an animation) and nothing else")
    if classes is not None and (grid is None or interpolate is not None):
        raise GanbenchError("--classes picks the rows of a --grid of a class-conditional model")
    paths: dict[str, Path] = {}
    if grid is not None:
        suffix = Path(grid).suffix.lower()
        if suffix != ".png" and not (suffix == ".gif" and interpolate is not None):
            raise GanbenchError(f"--grid {grid}: write a .png (or a .gif with --interpolate)")
        paths["grid"] = check_output(grid, force, what="--grid")
    if out is not None:
        paths["out"] = check_output(out, force, what="--out", folder=True)
    if npz is not None:
        if Path(npz).suffix.lower() != ".npz":
            raise GanbenchError(f"--npz {npz}: the file name must end in .npz (eval reads arrays by their suffix)")
        paths["npz"] = check_output(npz, force, what="--npz")
    return paths


def grid_images(found: ImageSource, num_samples: int | None, classes: Sequence[int] | None, *,
                batch_size: int = 64) -> tuple[torch.Tensor, int]:
    """(uint8 images, columns) of a grid: a row per class of a class-conditional model
    (:func:`class_rows`), else the first samples in a square."""
    num_classes = found.model.latent.num_classes
    if classes is not None and not num_classes:
        raise InputError(f"--classes: {found.descriptor!r} is not class-conditional")
    if num_classes:
        if classes is None and num_classes > MAX_DEFAULT_ROWS:
            raise InputError(f"{found.descriptor!r} has {num_classes} classes: choose the rows with --classes")
        rows = list(range(num_classes)) if classes is None else list(classes)
        per_class = max(1, num_samples // len(rows)) if num_samples else DEFAULT_PER_CLASS
        return class_rows(found, rows, per_class, batch_size=batch_size), per_class
    n = num_samples or min(DEFAULT_SAMPLES, len(found))
    return draw(found, n, batch_size=batch_size)[0], math.ceil(math.sqrt(n))


def _write_interpolation(found: ImageSource, path: Path, paths: int, steps: int, *, batch_size: int,
                         overwrite: bool) -> None:
    """Interpolation paths as a grid (a path per row) or, for a .gif, one frame per step."""
    if not isinstance(found, GeneratorSource):
        raise InputError(f"--interpolate: {found.descriptor!r} translates source images; it has no latents to walk")
    frames = interpolation(found, paths, steps, batch_size=batch_size)
    if path.suffix.lower() != ".gif":
        write_png(make_grid(frames.flatten(0, 1), steps), path, overwrite=overwrite)
        return
    columns = math.ceil(math.sqrt(paths))
    order = [*range(steps), *range(steps - 2, 0, -1)]  # there and back: the loop does not jump
    write_gif(torch.stack([make_grid(frames[:, s], columns) for s in order]), path, overwrite=overwrite)


# -- files ---------------------------------------------------------------------------------
def check_output(path: str | os.PathLike, force: bool, *, what: str, folder: bool = False) -> Path:
    """Refuse an output that exists (unless ``force``) or cannot be written, before any sampling."""
    path = Path(path).expanduser()
    if folder and path.exists() and not path.is_dir():
        raise GanbenchError(f"{what} {path} is a file, not a folder")
    taken = path.exists() and (not folder or any(path.iterdir()))
    if taken and not force:
        raise GanbenchError(f"{what} {path} exists{' and is not empty' if folder else ''}; "
                            f"pass --force to overwrite it")
    problem = write_problem(path / "000000.png" if folder else path)
    if problem:
        raise GanbenchError(f"{what} {path}: {problem}")
    return path


def _pil(image: torch.Tensor):
    """A uint8 (3, H, W) image as a PIL image; grayscale (equal channels) as mode L."""
    from PIL import Image

    gray = torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    return Image.fromarray(image[0].numpy()) if gray else Image.fromarray(image.permute(1, 2, 0).numpy())


def write_png(image: torch.Tensor, path: Path, *, overwrite: bool) -> None:
    """A uint8 (3, H, W) image as a PNG file, atomically."""
    with _writing(path, overwrite) as tmp:
        _pil(image).save(tmp, format="PNG")


def write_gif(frames: torch.Tensor, path: Path, *, overwrite: bool) -> None:
    """uint8 (T, 3, H, W) frames as an endlessly looping animated GIF, atomically."""
    pictures = [_pil(frame).convert("RGB") for frame in frames]
    with _writing(path, overwrite) as tmp:
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=GIF_FRAME_MS, loop=0)


def write_folder(images: torch.Tensor, folder: Path, *, overwrite: bool) -> None:
    """``images`` as numbered PNG files 000000.png, ... (sample order) in ``folder``."""
    from ganbench.data import image_files

    folder.mkdir(parents=True, exist_ok=True)
    digits = max(6, len(str(len(images) - 1)))
    names = [folder / f"{i:0{digits}d}.png" for i in range(len(images))]
    for image, name in zip(images, names):
        write_png(image, name, overwrite=overwrite)
    others = len(image_files(folder)) - len(names)
    if others:  # left by an earlier run (--force)
        warnings.warn(f"--out {folder} also holds {others} other images, which an evaluation of the folder reads too",
                      stacklevel=3)


def write_npz(images: torch.Tensor, labels: torch.Tensor | None, path: Path, *, overwrite: bool) -> None:
    """``images`` (uint8 N, 3, H, W) and ``labels`` (int64 N, or none) as an .npz, atomically."""
    arrays = {"images": images.numpy()}
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)
    with _writing(path, overwrite) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # a file object: np.savez would append .npz to the temp name


@contextlib.contextmanager
def _writing(path: Path, overwrite: bool) -> Iterator[Path]:
    """A temp path that becomes ``path`` atomically (missing folders are made); one-line
    errors when it cannot be written or, without ``overwrite``, appeared meanwhile."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, overwrite=overwrite) as tmp:
            yield tmp
    except FileExistsError:
        raise GanbenchError(f"{path} exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise GanbenchError(f"cannot write {path}: {write_problem(path, exc)}") from None


@contextlib.contextmanager
def _progress_bar(total: int, progress: bool):
    if not progress:
        yield _NoBar()
        return
    import sys

    from tqdm.auto import tqdm

    with tqdm(total=total, desc="sampling", unit="img", file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
        yield bar


class _NoBar:
    def update(self, n: int) -> None:
        pass
