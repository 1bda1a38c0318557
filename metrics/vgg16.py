"""VGG16 fc2 features, as torch-fidelity computes them for precision/recall.

Network: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (ICLR 2015), with torchvision's ImageNet weights (``vgg16-397923af.pth``).
Precision/recall: Kynkaanniemi et al., "Improved Precision and Recall Metric for
Assessing Generative Models" (NeurIPS 2019), which embeds images with VGG16's second
fully connected layer. Reference code: torch-fidelity's ``FeatureExtractorVGG16``
(Apache-2.0): torchvision ``vgg16`` with the classifier cut after fc2, inputs resized
to 224x224 with the TensorFlow-1.x bilinear resize and normalised with the ImageNet
mean and std scaled to 0..255. This module computes the same features from the same
state-dict keys; it runs channels_last with ReLUs fused into the convolutions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.metrics.base import FeatureExtractor, register_extractor
from ganbench.metrics.inception import FastConv2d, check_request, check_state_dict, resize_bilinear_tf1
from ganbench.weights import CATALOG, build_from_weights, load_state_dict

INPUT_SIZE = 224
FEATURES = ("fc2", "fc2_relu")
# torchvision's VGG16 "D" configuration: conv widths, "M" for a 2x2 max pool
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# ImageNet statistics on the 0..255 scale, exactly as torch-fidelity passes them to
# torchvision's normalize (python floats, made float32 tensors there and here)
_MEAN = (255 * 0.485, 255 * 0.456, 255 * 0.406)
_STD = (255 * 0.229, 255 * 0.224, 255 * 0.225)


def vgg16_official_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of every tensor in torchvision's ``vgg16-397923af.pth``, in order."""
    shapes: dict[str, tuple[int, ...]] = {}
    index, cin = 0, 3
    for v in _CFG:
        if v == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (v, cin, 3, 3)
        shapes[f"features.{index}.bias"] = (v,)
        index, cin = index + 2, v
    for index, (cout, cin) in zip((0, 3, 6), ((4096, 512 * 7 * 7), (4096, 4096), (1000, 4096))):
        shapes[f"classifier.{index}.weight"] = (cout, cin)
        shapes[f"classifier.{index}.bias"] = (cout,)
    return shapes


class VGG16Features(FeatureExtractor):
    """VGG16 up to fc2: uint8 images of any size -> ``"fc2"`` and ``"fc2_relu"`` (4096).

    Parameter names are torchvision's (``features.N``, ``classifier.0``, ``classifier.3``);
    build with :meth:`from_state_dict` or the registered factory.
    """

    name = "vgg16"
    provides = FEATURES
    input_size = INPUT_SIZE
    resize = "tf1-bilinear"

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [FastConv2d(cin, v, kernel_size=3, padding=1, relu=True), nn.Identity()]  # ReLU fused
                cin = v
        self.features = nn.Sequential(*layers)
        # torchvision: Linear, ReLU, Dropout, Linear (fc2), ReLU, Dropout, Linear (cut)
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Identity(),
                                        nn.Linear(4096, 4096))
        self.register_buffer("mean", torch.tensor(_MEAN, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "VGG16Features":
        """Build from a torchvision VGG16 state dict (the 1000-way fc3 is dropped).

        Raises:
            GanbenchError: keys or shapes differ from :func:`vgg16_official_shapes`.
        """
        check_state_dict(state, vgg16_official_shapes(), "torchvision VGG16")
        with torch.device("meta"):  # skip the default initialisation: every tensor is loaded
            model = cls()
        model.load_state_dict({k: v.float() for k, v in state.items() if not k.startswith("classifier.6.")},
                              assign=True)
        model.mean, model.std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in (_MEAN, _STD))
        model.requires_grad_(False)
        model.eval()
        return model.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor, features: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Features of uint8 images (N, 3, H, W), any H and W.

        Returns:
            {name: float32 (N, 4096)} for the requested names (default: both).
        """
        features = check_request(self, images, features)
        with torch.inference_mode():
            x = resize_bilinear_tf1(images.to(self.mean.device), INPUT_SIZE, channels_last=True)
            x = x.sub_(self.mean).div_(self.std)
            x = self.features(x)
            x = F.adaptive_avg_pool2d(x, (7, 7))  # identity at 224x224 input, kept as in torchvision
            fc2 = self.classifier(torch.flatten(x, 1))  # flatten in (C, H, W) order, as torchvision
            out = {"fc2": fc2, "fc2_relu": F.relu(fc2)}
        return {f: out[f].float().clone() for f in features}  # ordinary tensors, not inference ones


@register_extractor("vgg16", provides=FEATURES, weights=CATALOG["vgg16"],
                    description="torchvision VGG16 fc2 (ImageNet weights), torch-fidelity's precision/recall embedding")
def build(weights: str | None = None, device: str | torch.device = "cpu") -> VGG16Features:
    """VGG16 fc2 with torchvision's weights (or ``weights``), ready for eval.

    Raises:
        MissingFileError: the weights file cannot be found or downloaded.
    """
    return build_from_weights(CATALOG["vgg16"], weights,
                              lambda path: VGG16Features.from_state_dict(load_state_dict(path)), device)
