"""LeNet-style domain feature extractors for MNIST and Fashion-MNIST.

Inception-v3 features say little about 28 x 28 grayscale digits, so GAN papers on MNIST
commonly measure FID / IS / classifier accuracy with a small classifier trained on the
dataset itself. ganbench ships two, trained by ``scripts/train_lenet.py`` with ganbench's
own data pipeline (command, test accuracy and sha256 in ``weights/lenet-*.json``):

=================  =============================  ==========================================
extractor          weights                        provides
=================  =============================  ==========================================
``lenet-mnist``    ``weights/lenet-mnist.safetensors``    ``pool`` (128-d penultimate
``lenet-fashion``  ``weights/lenet-fashion.safetensors``  ReLU features), ``logits`` (10)
=================  =============================  ==========================================

Input: the image contract (uint8, N x 3 x H x W). Images are made grayscale by the
channel mean (grayscale expanded to RGB round-trips exactly), resized to 28 x 28
(bilinear; antialiased when shrinking), and scaled to [-1, 1] as in training.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.metrics.base import FeatureExtractor, register_extractor

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
INPUT_SIZE = 28
FEATURE_DIM = 128


class LeNet(nn.Module):
    """A small CNN classifier: 3 conv blocks (BN, ReLU, max-pool), 128-d features, 10 logits.

    About 165k parameters (0.66 MB as float32).
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()

        def block(cin: int, cout: int, k: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(1, 32, 5), block(32, 64, 5), block(64, 64, 3))  # 64x3x3
        self.fc = nn.Linear(64 * 3 * 3, FEATURE_DIM)
        self.dropout = nn.Dropout(0.3)
        self.classifier = nn.Linear(FEATURE_DIM, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Float (N, 1, 28, 28) in [-1, 1] -> penultimate features (N, 128), after ReLU."""
        return F.relu(self.fc(self.features(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(x)))


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float (N, 1, 28, 28) in [-1, 1], as the classifiers were trained."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise InputError(f"LeNet extractor expects uint8 (N, C, H, W) images, got "
                         f"{images.dtype} {tuple(images.shape)}")
    x = images.float().mean(1, keepdim=True)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > INPUT_SIZE)
    return x * (2.0 / 255.0) - 1.0


class LeNetExtractor(FeatureExtractor):
    provides = ("pool", "logits")
    input_size = INPUT_SIZE
    resize = "channel-mean gray, bilinear to 28"

    def __init__(self, name: str, weights: str | os.PathLike, device: str | torch.device = "cpu"):
        super().__init__()
        from ganbench.weights import load_state_dict, sha256_file

        self.name = name
        path = Path(weights)
        if not path.is_file():
            raise GanbenchError(f"{name}: weights file {str(path)!r} does not exist")
        self.net = LeNet()
        try:
            self.net.load_state_dict(load_state_dict(path))
        except RuntimeError as exc:
            raise GanbenchError(f"{name}: {str(path)!r} does not hold LeNet weights "
                                f"({str(exc).splitlines()[0]})") from None
        self.weights_sha256 = sha256_file(path)
        shipped = _shipped_sha256(name)
        self.weights_standard = shipped is not None and shipped == self.weights_sha256
        self.net.eval().requires_grad_(False)
        self.to(device)

    @torch.no_grad()
    def forward(self, images, features=None):
        features = features or self.provides
        device = next(self.net.parameters()).device
        pool = self.net.embed(preprocess(images.to(device)))
        out = {}
        if "pool" in features:
            out["pool"] = pool.float()
        if "logits" in features:
            out["logits"] = self.net.classifier(pool).float()
        return out


def _shipped_sha256(name: str) -> str | None:
    meta = WEIGHTS_DIR / f"{name}.json"
    if not meta.is_file():
        return None
    return json.loads(meta.read_text()).get("sha256")


def weights_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.safetensors"


@register_extractor("lenet-mnist", provides=("pool", "logits"),
                    description="LeNet classifier trained on MNIST by ganbench (weights shipped)")
def lenet_mnist(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> LeNetExtractor:
    return LeNetExtractor("lenet-mnist", weights or weights_path("lenet-mnist"), device)


@register_extractor("lenet-fashion", provides=("pool", "logits"),
                    description="LeNet classifier trained on Fashion-MNIST by ganbench (weights shipped)")
def lenet_fashion(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> LeNetExtractor:
    return LeNetExtractor("lenet-fashion", weights or weights_path("lenet-fashion"), device)


@torch.no_grad()
def classifier_accuracy(images: torch.Tensor, labels: torch.Tensor, extractor: FeatureExtractor,
                        batch_size: int = 500) -> float:
    """Fraction of ``images`` (uint8 N x C x H x W) that ``extractor``'s classifier assigns
    to ``labels`` (N,): for class-conditional generators, how recognisably they draw the
    class they were asked for."""
    if len(images) != len(labels):
        raise InputError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise InputError("no images to classify")
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = extractor(images[start:start + batch_size], ("logits",))["logits"]
        correct += (logits.argmax(1).cpu() == labels[start:start + batch_size].cpu()).sum().item()
    return correct / len(images)
