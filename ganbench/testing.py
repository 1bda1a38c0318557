"""Helpers for tests: deterministic stand-ins for the official extractor weights.

The official FID Inception-v3 and VGG16 files cannot be shipped with ganbench and may not
be downloadable where tests run. These functions write files with the same keys and
shapes, filled from a seeded generator, so that ganbench and torch-fidelity can be
compared on identical (if meaningless) networks. They are never ``standard`` weights.

PyTorch's default initialisation would make Inception's deep features almost constant
(every image gives nearly the same pool3 vector); a variance-preserving initialisation
keeps them image-dependent: He-normal convolutions (zero-sum filters after the first
layer, see :func:`_centred_normal`), identity batch-norm statistics (mean 0, variance 1,
scale 1, shift 0) and a normal classifier scaled so that the Inception Score of random
images is clearly above 1.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch


def _he_normal(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=generator).mul_(math.sqrt(2.0 / fan_in))


def _centred_normal(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Normal filters with zero sum, scaled to preserve variance after a ReLU.

    A plain He init on non-negative (post-ReLU) inputs gives every channel a large
    input-independent offset, which swamps the image-dependent part after a few
    layers. Zero-sum filters cancel that offset; they see only the variance of a
    rectified Gaussian, (1/2 - 1/(2 pi)) sigma^2, hence the larger gain.
    """
    fan_in = math.prod(shape[1:])
    w = torch.randn(shape, generator=generator)
    dims = tuple(range(1, len(shape)))
    w -= w.mean(dim=dims, keepdim=True)
    gain = 1.0 / (0.5 - 0.5 / math.pi)
    return w.mul_(math.sqrt(gain / fan_in) / w.std(dim=dims, keepdim=True))


def seeded_inception_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A FID Inception-v3 state dict (official keys and shapes) drawn from ``seed``."""
    from ganbench.metrics.inception import InceptionV3Compat

    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in sorted(InceptionV3Compat.official_shapes().items()):
        if key == "Conv2d_1a_3x3.conv.weight":  # sees the image itself: keep colour
            state[key] = _he_normal(shape, generator)
        elif key.endswith("conv.weight"):
            state[key] = _centred_normal(shape, generator)
        elif key.endswith(("bn.weight", "bn.running_var")):
            state[key] = torch.ones(shape)
        elif key.endswith(("bn.bias", "bn.running_mean")):
            state[key] = torch.zeros(shape)
        elif key == "fc.weight":
            state[key] = torch.randn(shape, generator=generator).mul_(0.5)
        elif key == "fc.bias":
            state[key] = torch.randn(shape, generator=generator).mul_(0.1)
        else:
            raise AssertionError(f"unexpected Inception key {key}")
    return state


def seeded_vgg16_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision VGG16 state dict (keys and shapes of ``vgg16-397923af.pth``)."""
    from ganbench.metrics.vgg16 import vgg16_official_shapes

    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in vgg16_official_shapes().items():
        if key.endswith("weight"):
            state[key] = _he_normal(shape, generator)
        else:
            state[key] = torch.randn(shape, generator=generator).mul_(0.01)
    return state


def _save(state: dict[str, torch.Tensor], path: str | os.PathLike) -> str:
    # through a file object, so the archive's inner folder name (otherwise the file's
    # stem) and hence the file's sha256 depend on the seed only
    with open(path, "wb") as f:
        torch.save(state, f)
    return str(path)


def make_seeded_inception_weights(path: str | os.PathLike, seed: int = 0) -> str:
    """Write :func:`seeded_inception_state_dict` to ``path`` (a plain dict of tensors,
    loadable with ``torch.load(weights_only=True)``); return the path. Same seed, same
    bytes (with the same PyTorch)."""
    return _save(seeded_inception_state_dict(seed), path)


def make_seeded_vgg16_weights(path: str | os.PathLike, seed: int = 0) -> str:
    """Write :func:`seeded_vgg16_state_dict` to ``path`` (about 550 MB, as the official
    file); return the path."""
    return _save(seeded_vgg16_state_dict(seed), path)


def _seeded_torchvision_state_dict(build, seed: int) -> dict[str, torch.Tensor]:
    """Keys and shapes of a torchvision model's state dict; He-normal weights, small biases."""
    generator = torch.Generator().manual_seed(seed)
    shapes = {k: tuple(v.shape) for k, v in build(weights=None).state_dict().items()}
    return {k: (_he_normal(s, generator) if len(s) > 1 else torch.randn(s, generator=generator).mul_(0.01))
            for k, s in shapes.items()}


def make_seeded_alexnet_weights(path: str | os.PathLike, seed: int = 0) -> str:
    """Write a torchvision AlexNet state dict (keys of ``alexnet-owt-7be5be79.pth``) drawn
    from ``seed`` to ``path``; return the path."""
    import torchvision

    torch.save(_seeded_torchvision_state_dict(torchvision.models.alexnet, seed), str(path))
    return str(path)


def make_seeded_squeezenet_weights(path: str | os.PathLike, seed: int = 0) -> str:
    """Write a torchvision SqueezeNet 1.1 state dict (keys of ``squeezenet1_1-b8a52dc0.pth``)
    drawn from ``seed`` to ``path``; return the path."""
    import torchvision

    torch.save(_seeded_torchvision_state_dict(torchvision.models.squeezenet1_1, seed), str(path))
    return str(path)


# ---------------------------------------------------------------------------------------
# The short-run learning check shared by tests/test_models.py and bench/learning_margins.py
# ---------------------------------------------------------------------------------------
LEARNING_FID_RATIO = 0.7  # after training, lenet-FID must fall below this share of the untrained FID
LEARNING_ACCURACY_MIN = 0.3  # conditioned-class accuracy of class-conditional models (chance 0.1)
LEARNING_SAMPLES = 1000  # samples per side of the FID


@dataclass(frozen=True)
class LearningOutcome:
    """One short training run of a model's ``tiny`` config, measured in lenet-mnist space."""

    name: str
    seed: int
    steps: int
    fid_before: float
    fid_after: float
    accuracy: float | None  # conditioned-class accuracy; None for unconditional models

    @property
    def fid_threshold(self) -> float:
        return LEARNING_FID_RATIO * self.fid_before

    @property
    def fid_margin(self) -> float:
        """Share of the threshold left below it (0.2: FID is 20 % under the threshold)."""
        return (self.fid_threshold - self.fid_after) / self.fid_threshold

    @property
    def accuracy_margin(self) -> float | None:
        if self.accuracy is None:
            return None
        return (self.accuracy - LEARNING_ACCURACY_MIN) / LEARNING_ACCURACY_MIN

    @property
    def margin(self) -> float:
        """The smaller of the FID and accuracy margins: the test passes when it is > 0.

        There is no floor on the untrained FID: a generator whose architecture already
        gives its untrained output structure (StyleGAN's, BigGAN's: ~400-640 where
        featureless images score ~890) starts closer to MNIST, and the relative drop is
        then the harder test, never an easier one."""
        return min(m for m in (self.fid_margin, self.accuracy_margin) if m is not None)


def mnist_lenet_reference(n: int = LEARNING_SAMPLES):
    """(lenet-mnist extractor, pool features of the first ``n`` MNIST test images)."""
    from ganbench.data import load_images
    from ganbench.metrics.lenet import lenet_mnist

    extractor = lenet_mnist()
    real, _ = load_images("mnist", "test", limit=n)
    return extractor, extractor(real)["pool"]


@torch.no_grad()
def _seeded_samples(generator, n: int):
    from ganbench.generative import sample_latents
    from ganbench.images import float_to_uint8

    generator.eval()
    z, labels = sample_latents(generator.latent, n, torch.Generator().manual_seed(123))
    return float_to_uint8(generator.generate(z, labels), generator.latent.output_range), labels


def short_run_learning(name: str, reference, *, seed: int = 0, steps: int | None = None,
                       overrides: dict | None = None) -> LearningOutcome:
    """Train model ``name``'s tiny config (plus ``overrides``, for tuning) on MNIST for its
    ``test_steps`` (or ``steps``) with ``seed``; return lenet-FID of the untrained and trained generator (and, for
    class-conditional models, the classifier's accuracy on the conditioned class)."""
    from ganbench.metrics.fid import fid_from_features
    from ganbench.metrics.lenet import classifier_accuracy
    from ganbench.models.base import create_model, model_info
    from ganbench.training import train

    extractor, real = reference
    info = model_info(name)
    steps = steps or info.test_steps
    config = {**info.tiny, **(overrides or {})}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        untrained = create_model(name, dataset="mnist", overrides=config)
    before = fid_from_features(extractor(_seeded_samples(untrained.generator, len(real))[0])["pool"], real)
    result = train(name, "mnist", steps=steps, batch_size=64, ema=0.0, seed=seed, overrides=config,
                   progress=False)  # the raw generator, at batch 64 whatever the paper recipe
    images, labels = _seeded_samples(result.generator, len(real))
    after = fid_from_features(extractor(images)["pool"], real)
    accuracy = None if labels is None else classifier_accuracy(images, labels, extractor)
    return LearningOutcome(name, seed, steps, before, after, accuracy)


# -- the command line ---------------------------------------------------------------------------
def run_cli(*args):
    """``ganbench ARGS...`` in-process (click's CliRunner); its Result."""
    from click.testing import CliRunner

    from ganbench.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result) -> str:
    """The one ``Error: ...`` line of a refused command (exit 2, no traceback)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    return line
