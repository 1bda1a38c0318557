"""LPIPS, batched, with backbones resolved offline.

Zhang, Isola, Efros, Shechtman, Wang: "The Unreasonable Effectiveness of Deep Features as
a Perceptual Metric", CVPR 2018 (https://arxiv.org/abs/1801.03924).

Reference code, read for its conventions (this file is written anew):

* richzhang/PerceptualSimilarity, the ``lpips`` package (BSD-2): the AlexNet / VGG16 /
  SqueezeNet-1.1 taps, ``ScalingLayer``, ``normalize_tensor`` (eps 1e-10) and the v0.1
  linear-layer weights, which ship inside its wheel and are loaded from there.
* toshas/torch-fidelity ``sample_similarity_lpips.py`` (Apache-2.0): the ``lpips-vgg16``
  sample similarity its PPL uses -- 0..255 input, normalisation folded into one affine
  map *before* resizing to 64 px (``area`` when shrinking both sides, else bilinear).
  Its linear weights file (``weights-vgg16-lpips.pth``) is a re-upload of the lpips v0.1
  ``vgg.pth`` and has the same keys (``lin{k}.model.1.weight``).

The ImageNet backbone is a torchvision state dict found by
:func:`ganbench.weights.resolve_weights` (explicit path, ``$GANBENCH_WEIGHTS_DIR``, the
torch hub cache, a download); its sha256 and whether it is the official file are kept on
the module for provenance.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError, InputError, UnknownNameError
from ganbench.weights import CATALOG, load_state_dict, resolve_weights, sha256_file


def _vgg16_features() -> nn.Sequential:
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs["D"], batch_norm=False)


def _alexnet_features() -> nn.Sequential:
    from torchvision.models import AlexNet

    return AlexNet().features


def _squeezenet_features() -> nn.Sequential:
    from torchvision.models import SqueezeNet

    return SqueezeNet("1_1").features


@dataclass(frozen=True)
class LPIPSNet:
    """One LPIPS trunk: a torchvision ``features`` stack tapped after some of its layers."""

    weights_key: str  # ganbench.weights.CATALOG key of the torchvision ImageNet file
    channels: tuple[int, ...]  # channels of each tap
    taps: tuple[int, ...]  # `features` index just after each tap (exclusive slice ends)
    build: Callable[[], nn.Sequential]  # the torchvision `features` stack
    min_size: int  # smallest input side the trunk accepts


NETS: dict[str, LPIPSNet] = {
    "alex": LPIPSNet("alexnet", (64, 192, 384, 256, 256), (2, 5, 8, 10, 12), _alexnet_features, 31),
    "vgg": LPIPSNet("vgg16", (64, 128, 256, 512, 512), (4, 9, 16, 23, 30), _vgg16_features, 16),
    "squeeze": LPIPSNet("squeezenet1_1", (64, 128, 256, 384, 384, 512, 512), (2, 5, 8, 10, 11, 12, 13),
                        _squeezenet_features, 17),
}
CONVENTIONS = ("lpips", "torch-fidelity")
# lpips' ScalingLayer: ImageNet mean/std expressed for inputs in [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def lin_weights_path(net: str, version: str = "0.1") -> Path:
    """The linear-layer weights shipped in the ``lpips`` wheel."""
    import lpips

    return Path(lpips.__file__).resolve().parent / "weights" / f"v{version}" / f"{net}.pth"


def resize_like_torch_fidelity(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """torch-fidelity's LPIPS resize: ``area`` when both sides shrink, else bilinear.

    Skipped when the image already is ``size`` x ``size`` (bilinear with
    ``align_corners=False`` at scale 1 is the identity).
    """
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    if x.shape[-1] > size and x.shape[-2] > size:
        return F.interpolate(x, (size, size), mode="area")
    return F.interpolate(x, (size, size), mode="bilinear", align_corners=False)


class LPIPS(nn.Module):
    """Batched LPIPS distance between two batches of images.

    ``forward(img0, img1)`` takes images in the 0..255 scale -- the uint8 image contract,
    or float for unquantised images -- shaped (N, 3, H, W), and returns float32 (N,).
    Identical pairs give exactly 0 and are not run through the trunk. Both images of a
    pair go through the trunk in one channels-last batch (faster on CPU; in float32 it
    rounds differently from NCHW: ~1e-7 relative on features, which shows as ~1e-4 on the
    tiny distances of PPL at epsilon 1e-4).

    Args:
        net: "alex", "vgg" or "squeeze".
        backbone: the torchvision state dict of the trunk (keys ``features.<i>.*``).
        lin: the linear-layer state dict (keys ``lin<k>.model.1.weight``, lpips or
            torch-fidelity format).
        convention: "lpips" maps 0..255 to [-1, 1] (``x / 127.5 - 1``, lpips'
            ``im2tensor``) then applies lpips' ScalingLayer; "torch-fidelity" folds both
            into torch-fidelity's single affine map. The two agree to float rounding.
        resize: resize (after normalisation, as torch-fidelity does) to this side; None
            keeps the input size.
    """

    def __init__(self, net: str, backbone: dict[str, torch.Tensor], lin: dict[str, torch.Tensor], *,
                 convention: str = "lpips", resize: int | None = None):
        super().__init__()
        if net not in NETS:
            raise UnknownNameError("LPIPS network", net, NETS)
        if convention not in CONVENTIONS:
            raise UnknownNameError("LPIPS convention", convention, CONVENTIONS)
        spec = NETS[net]
        self.net, self.spec, self.convention, self.resize = net, spec, convention, resize
        with torch.device("meta"):  # no random init: every tensor comes from `backbone`
            features = spec.build()[: spec.taps[-1]]
        features.load_state_dict(_backbone_features(backbone, features, spec), strict=True, assign=True)
        starts = (0,) + spec.taps[:-1]
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(starts, spec.taps))
        for i, (weight, chans) in enumerate(zip(_lin_weights(lin, len(spec.taps)), spec.channels)):
            if weight.numel() != chans:
                raise GanbenchError(f"LPIPS {net} linear layer {i} has {weight.numel()} weights, expected {chans}")
            self.register_buffer(f"lin{i}", weight.reshape(chans).float().clone())
        shift = torch.tensor(_SHIFT).view(1, 3, 1, 1)
        scale = torch.tensor(_SCALE).view(1, 3, 1, 1)
        if convention == "lpips":
            self.register_buffer("shift", shift)
            self.register_buffer("scale", scale)
        else:  # torch-fidelity's SampleSimilarityLPIPS.normalize, same float ops
            self.register_buffer("mean_rescaled", (1 + shift) * 255 / 2)
            self.register_buffer("inv_std_rescaled", 2 / (scale * 255))
        self.requires_grad_(False)
        self.eval()
        # Provenance, filled in by build_lpips.
        self.name = f"lpips-{net}" if convention == "lpips" else "lpips-vgg16-tf"
        self.weights_sha256: str | None = None
        self.weights_standard = False
        self.lin_sha256: str | None = None

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """0..255 images to the trunk's input (float32, resized)."""
        x = images.float()
        if self.convention == "lpips":
            x = (x / 127.5 - 1 - self.shift) / self.scale
        else:
            x = (x - self.mean_rescaled) * self.inv_std_rescaled
        return resize_like_torch_fidelity(x, self.resize)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        if img0.shape != img1.shape or img0.dim() != 4 or img0.shape[1] != 3:
            raise InputError(f"LPIPS needs two (N, 3, H, W) batches of one shape, got "
                             f"{tuple(img0.shape)} and {tuple(img1.shape)}")
        size = self.resize or min(img0.shape[-2:])
        if size < self.spec.min_size:
            raise InputError(f"LPIPS-{self.net} needs images of at least {self.spec.min_size} px, got "
                             f"{img0.shape[-2]}x{img0.shape[-1]}; resize them (e.g. resize=64)")
        out = torch.zeros(img0.shape[0], dtype=torch.float32, device=img0.device)
        # Identical pairs are at distance 0 exactly (frequent in PPL on uint8 images); the
        # trunk would give ~1e-16 there, as oneDNN's result depends on the batch position.
        differ = (img0 != img1).flatten(1).any(1)
        if not differ.any():
            return out
        if not differ.all():
            out[differ] = self(img0[differ], img1[differ])
            return out
        n = img0.shape[0]
        x = self.normalize(torch.cat([img0, img1])).contiguous(memory_format=torch.channels_last)
        total = out
        for i, block in enumerate(self.slices):
            x = block(x)
            # lpips.normalize_tensor (x / (|x|_channels + 1e-10)) and the squared difference,
            # in few passes over memory: the features are the bulk of the work after the convs.
            inv = (torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-10).reciprocal_()
            diff = torch.addcmul(x[:n] * inv[:n], x[n:], inv[n:], value=-1)
            # lin is a 1x1 conv without bias, so the spatial mean can come first.
            mean_sq = torch.linalg.vector_norm(diff, dim=(2, 3)).square_() / (diff.shape[2] * diff.shape[3])
            total += mean_sq @ getattr(self, f"lin{i}")
        return total

    def describe(self) -> dict[str, object]:
        """Provenance, as :meth:`ganbench.metrics.base.FeatureExtractor.describe`."""
        return {"extractor": self.name, "weights_sha256": self.weights_sha256,
                "weights_standard": bool(self.weights_standard), "input_size": self.resize,
                "resize": ("area-down/bilinear-up after normalisation" if self.resize else "")}


def _backbone_features(state: dict[str, torch.Tensor], features: nn.Sequential,
                       spec: LPIPSNet) -> dict[str, torch.Tensor]:
    wanted = features.state_dict()
    out = {}
    for key, meta in wanted.items():
        full = f"features.{key}"
        if full not in state:
            raise GanbenchError(f"not a torchvision {spec.weights_key} state dict: {full!r} is missing")
        if tuple(state[full].shape) != tuple(meta.shape):
            raise GanbenchError(f"not a torchvision {spec.weights_key} state dict: {full!r} has shape "
                                f"{tuple(state[full].shape)}, expected {tuple(meta.shape)}")
        out[key] = state[full].float()
    return out


def _lin_weights(state: dict[str, torch.Tensor], count: int) -> list[torch.Tensor]:
    out = []
    for i in range(count):
        keys = [k for k in (f"lin{i}.model.1.weight", f"lin{i}.model.0.weight") if k in state]
        if not keys:
            raise GanbenchError(f"LPIPS linear weights lack 'lin{i}.model.1.weight' (have {sorted(state)[:8]})")
        out.append(state[keys[0]])
    return out


def build_lpips(net: str = "alex", *, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                convention: str = "lpips", resize: int | None = None,
                lin_weights: str | os.PathLike | None = None) -> LPIPS:
    """LPIPS v0.1 for ``net`` with its backbone resolved offline.

    Args:
        net: "alex", "vgg" or "squeeze".
        weights: the torchvision ImageNet backbone file; None looks it up by its official
            file name (see :mod:`ganbench.weights`).
        convention: "lpips" or "torch-fidelity" (see :class:`LPIPS`).
        resize: see :class:`LPIPS`.
        lin_weights: a linear-layer file in lpips / torch-fidelity format; None takes the
            one shipped in the lpips wheel.
    Raises:
        MissingFileError: backbone not found (names the file and its sha256).
    """
    if net not in NETS:
        raise UnknownNameError("LPIPS network", net, NETS)
    if convention == "torch-fidelity" and net != "vgg":
        raise InputError("torch-fidelity's LPIPS exists for net='vgg' only")
    resolved = resolve_weights(CATALOG[NETS[net].weights_key], weights)
    lin_path = Path(lin_weights) if lin_weights is not None else lin_weights_path(net)
    module = LPIPS(net, load_state_dict(resolved.path), load_state_dict(lin_path),
                   convention=convention, resize=resize)
    module.weights_sha256, module.weights_standard = resolved.sha256, resolved.standard
    module.lin_sha256 = sha256_file(lin_path)
    return module.to(device=device, memory_format=torch.channels_last)
