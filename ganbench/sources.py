"""Evaluation inputs: everything ganbench can read images from, behind one interface.

An :class:`ImageSource` yields batches in the image contract (uint8, N x 3 x H x W) for
any range of sample indices, so one pass can be split into batches and shards (one per
rank under ``torchrun``) and still give the same images in the same order.

Inputs, by descriptor (:func:`resolve_source`):

========================  ===========================================================
``path/to/folder``        png/jpg/jpeg/bmp/webp images, recursive, sorted by path
``images.npz|.npy``       a uint8 array N x H x W (x C) or N x C x H x W; which array of
                          an .npz: :func:`ganbench.data.read_array_file`
``runs/NAME``             a training run folder: its ``checkpoint.safetensors``
``mnist:test``            a built-in dataset split (``ganbench datasets`` lists them)
``ckpt.safetensors``      a ganbench training checkpoint (its generator is sampled)
``NAME``                  a generator registered with ``ganbench register``
========================  ===========================================================

The Python API also takes a :class:`~ganbench.generative.GenerativeModel`, a
``torch.utils.data.Dataset`` of images, a uint8 tensor or a numpy array.

Image-conditioned generators (:class:`~ganbench.generative.ConditionalImageGenerator`,
from a checkpoint or an object) become a :class:`TranslationSource`: their translations
of the source images of a paired dataset split (``source``; default: the test split of the
dataset the model was trained on).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ganbench.data import IMAGE_EXTENSIONS, image_files, load_images, parse_name, read_array_file, read_image
from ganbench.errors import GanbenchError, InputError
from ganbench.generative import (ConditionalImageGenerator, GenerativeModel, LatentSpec, check_generated,
                                 sample_latents)
from ganbench.images import convert_uint8, float_to_uint8, to_rgb_uint8, uint8_to_float
from ganbench.translation import open_paired

LATENT_CHUNK = 1024  # latents are drawn in seeded chunks of this size: batch-size independent


class ImageSource:
    """A finite, indexable collection of images (or a generator sampled N times)."""

    descriptor: str = ""  # how the user named it, for results
    is_generator: bool = False

    def __len__(self) -> int:
        raise NotImplementedError

    def images(self, start: int, stop: int) -> torch.Tensor:
        """Images ``start..stop-1`` as uint8 (n, 3, H, W)."""
        raise NotImplementedError

    def content_key(self) -> str | None:
        """A hash of everything that determines the images, or None (do not cache)."""
        return None

    def image_shape(self) -> tuple[int, ...]:
        """(3, H, W) of the images: a generator's declared size (nothing sampled), else the first image's."""
        model = getattr(self, "model", None)
        size = model.latent.image_size if model is not None else None
        return (3, size, size) if size else tuple(self.images(0, 1).shape[1:])

    def provenance(self) -> dict[str, Any]:
        return {"source": self.descriptor}

    def class_labels(self) -> torch.Tensor | None:
        """The class of every image, in order (int64, CPU): the labels a class-conditional
        generator was asked for, or a labelled dataset's labels; None when there are none."""
        labels = getattr(self, "labels", None)
        if labels is None:
            return None
        return torch.as_tensor(labels, dtype=torch.int64).reshape(-1)[:len(self)].cpu()

    def paired_targets(self) -> torch.Tensor | None:
        """The ground truth of every image, in order, as uint8 (N, 3, H, W): what an image-
        conditioned generator should have produced from each source (paired datasets);
        None when there is none."""
        return None


class TensorSource(ImageSource):
    """Images already in memory (array files, dataset splits, tensors)."""

    def __init__(self, images: torch.Tensor | np.ndarray, descriptor: str, labels=None):
        self.data = to_rgb_uint8(images, what=descriptor, whole_floats=True)
        if len(self.data) == 0:
            raise InputError(f"{descriptor}: contains no images")
        self.descriptor = descriptor
        self.labels = labels
        self._key: str | None = None

    def __len__(self):
        return len(self.data)

    def images(self, start, stop):
        return self.data[start:stop]

    def content_key(self):
        if self._key is None:
            digest = hashlib.sha256(str(tuple(self.data.shape)).encode())
            digest.update(self.data.numpy().tobytes())
            self._key = digest.hexdigest()
        return self._key


class FolderSource(ImageSource):
    """Image files under a folder (recursive), in sorted path order."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{str(self.root)!r} is not a folder")
        self.files = image_files(self.root)
        if not self.files:
            raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {str(self.root)!r}")
        self.descriptor = str(self.root)
        self._shape: tuple[int, int] | None = None
        self._key: str | None = None

    def __len__(self):
        return len(self.files)

    def _load(self, path: Path) -> np.ndarray:
        array = read_image(path, "RGB")  # grayscale -> RGB as torch-fidelity
        if self._shape is None:
            self._shape = array.shape[:2]
            self._first = path
        elif array.shape[:2] != self._shape:
            raise InputError(
                f"images of mixed sizes: {str(path)!r} is {array.shape[1]}x{array.shape[0]} but "
                f"{str(self._first)!r} is {self._shape[1]}x{self._shape[0]}; resize them to one size first")
        return array

    def images(self, start, stop):
        batch = np.stack([self._load(p) for p in self.files[start:stop]])
        return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()

    def content_key(self):
        if self._key is None:
            digest = hashlib.sha256()
            for path in self.files:
                digest.update(str(path.relative_to(self.root)).encode() + b"\0")
                with open(path, "rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
            self._key = digest.hexdigest()
        return self._key


class GeneratorSource(ImageSource):
    """``num_samples`` images from a generator with seeded latents.

    Latents come in chunks of :data:`LATENT_CHUNK` samples, each chunk drawn from its own
    generator seeded from (seed, chunk index): the images do not depend on the batch
    size or on how the samples are split across processes.
    """

    is_generator = True

    def __init__(self, model: GenerativeModel, num_samples: int, seed: int = 0,
                 device: torch.device | str = "cpu", descriptor: str = "generator",
                 metadata: dict[str, Any] | None = None):
        if not hasattr(model, "latent") or not isinstance(model.latent, LatentSpec):
            raise InputError("a generator needs a `latent` LatentSpec (z_dim, z_dist, num_classes, ...)")
        if num_samples <= 0:
            raise InputError(f"number of samples must be positive, got {num_samples}")
        self.model = model
        self.num_samples = num_samples
        self.seed = seed
        self.device = torch.device(device)
        self.descriptor = descriptor
        self.metadata = metadata or {}
        self._chunk: tuple[int, torch.Tensor, torch.Tensor | None] | None = None

    def __len__(self):
        return self.num_samples

    def latents(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        zs, ys = [], []
        for chunk in range(start // LATENT_CHUNK, (stop - 1) // LATENT_CHUNK + 1):
            if self._chunk is None or self._chunk[0] != chunk:
                seed = int(np.random.SeedSequence([self.seed, chunk]).generate_state(1)[0])
                gen = torch.Generator().manual_seed(seed)
                z, y = sample_latents(self.model.latent, LATENT_CHUNK, gen)
                self._chunk = (chunk, z, y)
            lo = max(start, chunk * LATENT_CHUNK) - chunk * LATENT_CHUNK
            hi = min(stop, (chunk + 1) * LATENT_CHUNK) - chunk * LATENT_CHUNK
            zs.append(self._chunk[1][lo:hi])
            if self._chunk[2] is not None:
                ys.append(self._chunk[2][lo:hi])
        z = torch.cat(zs).to(self.device)
        y = torch.cat(ys).to(self.device) if ys else None
        return z, y

    def class_labels(self):
        if not self.model.latent.num_classes:
            return None
        return torch.cat([self.latents(start, min(start + LATENT_CHUNK, len(self)))[1].cpu()
                          for start in range(0, len(self), LATENT_CHUNK)])

    @torch.inference_mode()
    def images(self, start, stop):
        z, labels = self.latents(start, stop)
        out = self.model.generate(z, labels)
        check_generated(out, self.model.latent, stop - start, what=self.descriptor)
        if out.dtype != torch.uint8:
            out = float_to_uint8(out, self.model.latent.output_range)
        return to_rgb_uint8(out.cpu(), what=self.descriptor)

    def provenance(self):
        return {"source": self.descriptor, "seed": self.seed, **self.metadata}


class TranslationSource(ImageSource):
    """An image-conditioned generator's translations of a fixed set of source images.

    ``source`` is a paired dataset split (``mnist-edges:test``; a name alone means its test
    split) or any finite input (folder, .npz) whose images are the sources. Sources are
    brought to the generator's resolution and source channels; the output of image ``i``
    depends only on source ``i`` (the generator runs in eval mode), so the images do not
    depend on the batch size or sharding.

    Attributes:
        targets: uint8 (N, C, H, W) ground truth aligned with the sources (paired
            datasets), else None (folders, .npz, unpaired training splits).
        source_spec: the source as recorded in the results (``mnist-edges:test``).
    """

    def __init__(self, model: ConditionalImageGenerator, source: str | None = None, *,
                 device: torch.device | str = "cpu", descriptor: str = "generator",
                 metadata: dict[str, Any] | None = None):
        spec = source or (f"{model.source_dataset}:test" if model.source_dataset else None)
        if spec is None:
            raise InputError(f"{descriptor} translates source images but does not record the dataset it was "
                             f"trained on: pass a source, e.g. --source mnist-edges:test")
        latent = model.latent
        images, self.targets, self.source_spec = _translation_inputs(os.fspath(spec))
        self.sources = convert_uint8(images, latent.image_size, latent.source_channels)
        if self.targets is not None:
            self.targets = convert_uint8(self.targets, latent.image_size, latent.channels)
        self.model, self.device = model, torch.device(device)
        self.descriptor = descriptor
        self.metadata = metadata or {}

    def __len__(self):
        return len(self.sources)

    @torch.inference_mode()
    def translate(self, start: int, stop: int) -> torch.Tensor:
        """Translations of sources ``start..stop-1`` as uint8 (n, C, H, W) at the model's channels."""
        latent = self.model.latent
        x = uint8_to_float(self.sources[start:stop], latent.output_range).to(self.device)
        out = self.model.translate(x)
        check_generated(out, latent, stop - start, what=self.descriptor)
        return out.cpu() if out.dtype == torch.uint8 else float_to_uint8(out.float().cpu(), latent.output_range)

    def images(self, start, stop):
        return to_rgb_uint8(self.translate(start, stop), what=self.descriptor)

    def paired_targets(self):
        return None if self.targets is None else to_rgb_uint8(self.targets, what=f"{self.source_spec} targets")

    def provenance(self):
        digest = hashlib.sha256(str(tuple(self.sources.shape)).encode() + self.sources.numpy().tobytes())
        return {"source": self.descriptor, **self.metadata, "translation_source": self.source_spec,
                "translation_source_content": digest.hexdigest()[:16]}


def _translation_inputs(spec: str) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """(uint8 sources, uint8 targets or None, descriptor) of a translation source."""
    from ganbench.registry import datasets

    name, _, split = spec.partition(":")
    if name in datasets and not datasets.metadata(name).get("takes_path") and not Path(spec).exists():
        split = parse_name(spec).split or "test"
        data = open_paired(name, split)
        # an unpaired split's sources are not the ground truth of its targets: no targets
        return data.sources, data.images if data.paired else None, f"{name}:{split}"
    finite = resolve_source(spec)
    if finite.is_generator or isinstance(finite, TranslationSource):
        raise InputError(f"--source {spec!r} must hold images (a paired dataset split, folder or .npz), "
                         f"not a generator")
    return finite.images(0, len(finite)), None, finite.descriptor


class TorchDatasetSource(ImageSource):
    """A ``torch.utils.data.Dataset`` whose items are images (or (image, label) pairs),
    given through the Python API (a registered dataset split is a :class:`TensorSource`).

    Items may be uint8 tensors/arrays (C,H,W or H,W,C), PIL images, or float tensors in
    [0, 1] as torchvision's ``ToTensor`` gives (brought to uint8 by rounding).
    """

    def __init__(self, dataset, descriptor: str = "dataset"):
        self.dataset = dataset
        self.descriptor = descriptor
        if len(dataset) == 0:
            raise InputError(f"{descriptor}: dataset is empty")

    def __len__(self):
        return len(self.dataset)

    def _item(self, i):
        item = self.dataset[i]
        if isinstance(item, (tuple, list)):
            item = item[0]
        if hasattr(item, "convert"):  # PIL image
            item = np.asarray(item.convert("RGB"))
        if isinstance(item, np.ndarray):
            item = torch.from_numpy(np.ascontiguousarray(item))
        if not isinstance(item, torch.Tensor):
            raise InputError(f"{self.descriptor}: item {i} is a {type(item).__name__}, expected an image")
        if item.dtype.is_floating_point:
            item = float_to_uint8(item.unsqueeze(0), (0.0, 1.0))[0]
        return item

    def images(self, start, stop):
        return to_rgb_uint8(torch.stack([self._item(i) for i in range(start, stop)]), what=self.descriptor)


def resolve_source(spec: Any, *, num_samples: int | None = None, seed: int = 0,
                   device: torch.device | str = "cpu", source: str | None = None) -> ImageSource:
    """Turn what the user gave (a descriptor string or a Python object) into a source.

    ``num_samples`` is required for generators and ignored for finite inputs (use
    :func:`limit` to take the first N of those). ``source``: what an image-conditioned
    generator translates (see :class:`TranslationSource`); refused for other inputs.
    """
    found = _resolve(spec, num_samples, seed, device, source)
    if source is not None and not isinstance(found, TranslationSource):
        raise InputError(f"a source (--source {source}) is only for image-conditioned generators "
                         f"(pix2pix, CycleGAN, GPEN...); {found.descriptor!r} is not one")
    return found


def _generator_source(model, num_samples, seed, device, descriptor, metadata=None, source=None) -> ImageSource:
    if isinstance(model, ConditionalImageGenerator):
        return TranslationSource(model, source, device=device, descriptor=descriptor, metadata=metadata)
    return GeneratorSource(model, _need_n(num_samples), seed, device, descriptor=descriptor, metadata=metadata)


def _resolve(spec, num_samples, seed, device, source) -> ImageSource:
    if isinstance(spec, ImageSource):
        return spec
    if isinstance(spec, GenerativeModel) or (hasattr(spec, "latent") and callable(getattr(spec, "generate", None))):
        return _generator_source(spec, num_samples, seed, device, type(spec).__name__, source=source)
    if isinstance(spec, (torch.Tensor, np.ndarray)):
        return TensorSource(spec, "array")
    if isinstance(spec, torch.utils.data.Dataset):
        return TorchDatasetSource(spec, type(spec).__name__)
    if not isinstance(spec, (str, os.PathLike)):
        raise InputError(f"cannot evaluate a {type(spec).__name__}: give a folder, an .npz/.npy file, "
                         f"a dataset split (e.g. mnist:test), a checkpoint or a registered generator")
    text = os.fspath(spec)
    path = _run_checkpoint(Path(text).expanduser())
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".npz", ".npy"):
            images, labels = read_array_file(path)
            return TensorSource(images, str(path), labels=labels)
        if suffix == ".safetensors":
            from ganbench.checkpoints import load_generator

            model, meta = load_generator(path, device=device)
            return _generator_source(model, num_samples, seed, device, str(path), _checkpoint_provenance(meta),
                                     source)
        if suffix in IMAGE_EXTENSIONS:
            raise InputError(f"{text!r} is a single image; give the folder that holds the images")
        raise InputError(f"{text!r}: unsupported file type {suffix!r} (expected a folder, .npz, .npy "
                         f"or a .safetensors checkpoint)")
    from ganbench.registry import registered_generators, datasets

    name, _, split = text.partition(":")
    if name in datasets:
        images, labels = load_images(name, split=split or None)
        return TensorSource(images, f"{name}:{split}" if split else name, labels=labels)
    if text in registered_generators:
        model, meta = registered_generators.get(text)(device=device)
        return _generator_source(model, num_samples, seed, device, text, _checkpoint_provenance(meta), source)
    if any(sep in text for sep in ("/", "\\", ".")):
        raise InputError(f"{text!r} does not exist")
    from ganbench.errors import UnknownNameError

    if split:
        raise UnknownNameError("dataset", name, datasets.names())
    raise UnknownNameError("input", text, sorted(datasets.names()) + sorted(registered_generators.names()))


def _run_checkpoint(path: Path) -> Path:
    """A training run folder stands for its checkpoint (as in ``load_generator``), never
    for the sample grids inside it; other paths are returned as they are."""
    from ganbench.checkpoints import CHECKPOINT_NAME

    if not path.is_dir():
        return path
    if (path / CHECKPOINT_NAME).is_file():
        return path / CHECKPOINT_NAME
    if (path / "run.json").is_file():  # written by `ganbench train` when a run starts
        raise InputError(f"{str(path)!r} is a training run folder without {CHECKPOINT_NAME} (not trained far "
                         f"enough?); give a checkpoint, or a folder that holds only images")
    return path


def _need_n(num_samples: int | None) -> int:
    if num_samples is None:
        raise InputError("a generator needs a number of samples: --num-samples for the input, "
                         "--num-reference for the reference")
    return num_samples


def _checkpoint_provenance(meta: dict[str, Any]) -> dict[str, Any]:
    keep = ("model", "step", "checkpoint_sha256", "sha256", "third_party", "dataset")
    out = {k: meta[k] for k in keep if k in meta}
    if "sha256" in out and "checkpoint_sha256" not in out:
        out["checkpoint_sha256"] = out.pop("sha256")
    if isinstance(meta.get("train"), dict):
        out["training"] = training_record(meta["train"], ema_used=bool(meta.get("ema")))
    return out


def training_record(train: dict[str, Any], *, ema_used: bool) -> dict[str, Any]:
    """How a ganbench checkpoint was trained, as its result rows record it: batch size,
    EMA decay (and start), which generator is evaluated, precision."""
    precision = train.get("precision")
    if precision is None:  # written before precision was recorded: AMP was on by default on CUDA
        cuda_amp = train.get("amp", True) and str(train.get("device", "cpu")).startswith("cuda")
        precision = "autocast (dtype unrecorded)" if cuda_amp else "float32"
    return {"batch_size": train.get("batch_size"), "ema": train.get("ema"), "ema_start": train.get("ema_start", 0),
            "generator": "ema" if ema_used else "raw", "precision": precision, "steps": train.get("steps")}


class LimitedSource(ImageSource):
    """The first ``n`` images of a finite source."""

    def __init__(self, source: ImageSource, n: int):
        if n > len(source):
            raise InputError(f"{source.descriptor}: asked for {n} samples but it holds only {len(source)} images")
        self.source, self.n = source, n
        self.descriptor = source.descriptor
        self.labels = getattr(source, "labels", None)

    def __len__(self):
        return self.n

    def images(self, start, stop):
        return self.source.images(start, min(stop, self.n))

    def paired_targets(self):
        targets = self.source.paired_targets()
        return None if targets is None else targets[:self.n]

    def content_key(self):
        key = self.source.content_key()
        return None if key is None else hashlib.sha256(f"{key}:first{self.n}".encode()).hexdigest()

    def image_shape(self):
        return self.source.image_shape()

    def provenance(self):
        return self.source.provenance()


def limit(source: ImageSource, n: int | None) -> ImageSource:
    if n is None or source.is_generator or n == len(source):
        return source
    return LimitedSource(source, n)


def iter_batches(source: ImageSource, batch_size: int,
                 indices: range | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """(batch index, images) over the source in order; ``indices`` selects batch indices."""
    if batch_size <= 0:
        raise GanbenchError(f"batch size must be positive, got {batch_size}")
    n_batches = (len(source) + batch_size - 1) // batch_size
    for b in (indices if indices is not None else range(n_batches)):
        start = b * batch_size
        yield b, source.images(start, min(start + batch_size, len(source)))
