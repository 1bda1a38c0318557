"""SwAV ResNet-50 features (``swav-resnet50``), as PyTorch-StudioGAN computes SwAV-FID.

Network: Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments" (NeurIPS 2020), ResNet-50 trained 800 epochs; the official file
``swav_800ep_pretrain.pth.tar`` (facebookresearch/swav) is a plain state dict whose keys
are torchvision's ``resnet50`` keys behind a ``module.`` prefix, plus the SwAV
projection head and prototypes. SwAV-FID: Morozov et al., "On Self-Supervised Image
Representations for GAN Evaluation" (ICLR 2021).

Reference code: PyTorch-StudioGAN (MIT) ``src/metrics/preparation.py`` loads
``torch.hub.load("facebookresearch/swav:main", "resnet50")`` -- torchvision's ResNet-50,
the file's ``module.`` prefix stripped, loaded with ``strict=False`` -- and takes the
input of ``fc`` (a forward pre-hook): the 2048-d global average pool. Its preprocessing
(``src/utils/resize.py``, ``src/utils/ops.py``) for ``SwAV_torch`` at 224x224 with the
architecture-friendly resizer (``--post_resizer friendly``, the one its benchmark
tables use): each channel resized as a float32 PIL image (mode ``"F"``) with PIL's
bilinear filter (which antialiases when shrinking) to 224x224, no crop, then
``(x / 255 - mean) / std`` with the ImageNet mean and std. This module runs torchvision's
ResNet-50 itself on that input (channels_last, eval mode).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.metrics.base import FeatureExtractor, register_extractor
from ganbench.metrics.inception import check_request, check_state_dict
from ganbench.weights import WeightsFile, build_from_weights, load_state_dict

INPUT_SIZE = 224
FEATURES = ("pool",)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HEAD_PREFIXES = ("projection_head.", "prototypes.")  # SwAV's training heads, unused for features

WEIGHTS = WeightsFile(
    "swav-resnet50", "swav_800ep_pretrain.pth.tar",
    "https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar",
    "unknown",  # no published sha256; results record the file's hash and never call it standard
    "SwAV ResNet-50, 800 epochs (Caron et al. 2020), facebookresearch/swav")


def resnet50_backbone_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's ResNet-50 state dict without ``fc`` (SwAV's keys, unprefixed)."""
    import torchvision  # here: importing it costs seconds, listing the extractors should not

    with torch.device("meta"):
        model = torchvision.models.resnet50(weights=None)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()
            if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}


def backbone_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ResNet-50 tensors of an official SwAV state dict: ``module.`` stripped, heads dropped.

    Raises:
        GanbenchError: keys or shapes are not SwAV's ResNet-50's.
    """
    unprefixed = {k.removeprefix("module."): v for k, v in state.items()}
    backbone = {k: v for k, v in unprefixed.items() if not k.startswith(HEAD_PREFIXES + ("fc.",))}
    check_state_dict(backbone, resnet50_backbone_shapes(), "SwAV ResNet-50")
    return backbone


def resize_bilinear_pil_float(images: torch.Tensor, size: int) -> np.ndarray:
    """StudioGAN's "friendly" resize: each channel a float32 PIL image, bilinear, to size x size.

    Args:
        images: uint8 (N, 3, H, W).
    Returns:
        float32 numpy (N, size, size, 3), values 0..255 (not rounded).
    """
    hwc = images.cpu().permute(0, 2, 3, 1).numpy().astype(np.float32)
    out = np.empty((len(hwc), size, size, 3), dtype=np.float32)
    for i, image in enumerate(hwc):
        for c in range(3):
            channel = Image.fromarray(np.ascontiguousarray(image[:, :, c]), mode="F")
            out[i, :, :, c] = np.asarray(channel.resize((size, size), resample=Image.BILINEAR))
    return out


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 (N, 3, 224, 224), StudioGAN's SwAV input (see the module docstring)."""
    x = torch.from_numpy(resize_bilinear_pil_float(images, INPUT_SIZE)).permute(0, 3, 1, 2)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


class SwAVResNet50(FeatureExtractor):
    """SwAV ResNet-50: uint8 images of any size -> ``"pool"`` (N, 2048), the input of ``fc``."""

    name = "swav-resnet50"
    provides = FEATURES
    input_size = INPUT_SIZE
    resize = "pil-bilinear-float"

    def __init__(self):
        import torchvision

        super().__init__()
        self.net = torchvision.models.resnet50(weights=None)
        self.net.fc = nn.Identity()
        self.requires_grad_(False)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "SwAVResNet50":
        """Build from an official SwAV file's state dict (see :func:`backbone_state_dict`)."""
        backbone = backbone_state_dict(state)
        with torch.device("meta"):  # skip the default initialisation: every tensor is loaded
            model = cls()
        missing, unexpected = model.net.load_state_dict({k: v.float() for k, v in backbone.items()}, strict=False,
                                                        assign=True)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise GanbenchError(f"SwAV ResNet-50 weights do not fit torchvision's ResNet-50 ({missing or unexpected})")
        for module in model.modules():  # counters the file may lack: unused in eval mode
            if isinstance(module, nn.BatchNorm2d) and module.num_batches_tracked.is_meta:
                module.num_batches_tracked = torch.zeros((), dtype=torch.long)
        model.eval()
        return model.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor, features: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Features of uint8 images (N, 3, H, W), any H and W: {"pool": float32 (N, 2048)}."""
        features = check_request(self, images, features)
        device = next(self.parameters()).device
        with torch.inference_mode():
            x = preprocess(images).to(device).contiguous(memory_format=torch.channels_last)
            pool = self.net(x)
        return {"pool": pool.float().clone()}  # ordinary tensors, not inference ones


@register_extractor("swav-resnet50", provides=FEATURES, weights=WEIGHTS,
                    description=f"SwAV ResNet-50 pool (StudioGAN's SwAV-FID); weights {WEIGHTS.filename} "
                                f"(sha256 unknown) from {WEIGHTS.url}")
def build(weights: str | None = None, device: str | torch.device = "cpu") -> SwAVResNet50:
    """SwAV ResNet-50 with the official weights (or ``weights``), ready for eval.

    Raises:
        MissingFileError: the weights file cannot be found or downloaded.
    """
    return build_from_weights(WEIGHTS, weights, lambda path: SwAVResNet50.from_state_dict(load_state_dict(path)),
                              device)
