"""DINOv2 ViT features (``dinov2-vit-s14``, ``-b14``, ``-l14``, ``-g14``), as dgm-eval computes them.

Network: Oquab et al., "DINOv2: Learning Robust Visual Features without Supervision"
(TMLR 2024), official weights ``dinov2_vit{s,b,l,g}14_pretrain.pth`` (facebookresearch/
dinov2, Apache-2.0): plain state dicts of the hub models (``block_chunks=0``: keys
``blocks.N.*``), a 37x37 position embedding (trained at 518 px), layer scale, and for
ViT-g a SwiGLU MLP (``mlp.w12``, ``mlp.w3``). FD_DINOv2: Stein et al., "Exposing flaws
of generative model evaluation metrics and their unfair treatment of diffusion models"
(NeurIPS 2023), reference code layer6ai-labs/dgm-eval (MIT).

The transformer is timm's ``VisionTransformer`` (the same architecture: pre-norm blocks,
LayerNorm eps 1e-6, qkv bias, exact GELU or packed SwiGLU, layer scale), built for 224
px input. The official keys map one to one (``mlp.w12``/``mlp.w3`` -> ``mlp.fc1``/``mlp.fc2``,
``mask_token`` unused), except the position embedding: DINOv2 resamples its 37x37 grid
to the input's 16x16 on every forward, with ``F.interpolate(scale_factor=(16 + 0.1) / 37,
mode="bicubic")`` (no antialias; the 0.1 is the official "historical kludge", and with a
scale factor PyTorch maps coordinates by that factor, not by 16/37). This module does
that resampling once, when the weights are loaded (timm's own resampling differs: it
passes a size and antialiases).

Preprocessing, as dgm-eval's ``DINOv2Encoder.transform`` (default, ``clean_resize=False``):
the uint8 RGB image resized with PIL's bicubic filter (antialiased when shrinking) to
224x224 -- no aspect-preserving resize, no crop -- then ``ToTensor`` (/255) and
``Normalize`` with the ImageNet mean and std. Feature ``"pool"``: what dgm-eval gets from
the hub model's forward, ``x_norm_clstoken``: the CLS token after the final LayerNorm.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganbench.errors import GanbenchError
from ganbench.metrics.base import FeatureExtractor, register_extractor
from ganbench.metrics.inception import check_request, check_state_dict
from ganbench.weights import WeightsFile, build_from_weights, load_state_dict

INPUT_SIZE = 224
PATCH = 14
FEATURES = ("pool",)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATE_OFFSET = 0.1  # DINOv2's pos-embed resampling offset (see the module docstring)
LN_EPS = 1e-6


@dataclass(frozen=True)
class DinoV2Arch:
    """One DINOv2 ViT size."""

    name: str  # "s14", "b14", "l14", "g14"
    embed_dim: int
    depth: int  # number of blocks
    num_heads: int  # head dim is 64 in every size
    swiglu: bool = False  # ViT-g: SwiGLU MLP (hidden 4096), else GELU MLP (hidden 4 * embed_dim)
    pos_grid: int = 37  # side of the trained position-embedding grid (518 / 14)

    @property
    def mlp_hidden(self) -> int:
        # dinov2's SwiGLUFFNFused: (int(4 * dim * 2 / 3) + 7) // 8 * 8
        return (int(4 * self.embed_dim * 2 / 3) + 7) // 8 * 8 if self.swiglu else 4 * self.embed_dim


ARCHS = {a.name: a for a in [
    DinoV2Arch("s14", 384, 12, 6),
    DinoV2Arch("b14", 768, 12, 12),
    DinoV2Arch("l14", 1024, 24, 16),
    DinoV2Arch("g14", 1536, 40, 24, swiglu=True),
]}

WEIGHTS = {name: WeightsFile(
    f"dinov2-vit-{name}", f"dinov2_vit{name}_pretrain.pth",
    f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{name}/dinov2_vit{name}_pretrain.pth",
    "unknown",  # no published sha256; results record the file's hash and never call it standard
    f"DINOv2 ViT-{name[0].upper()}/14 (Oquab et al. 2023), facebookresearch/dinov2", "Apache-2.0")
    for name in ARCHS}


def official_shapes(arch: DinoV2Arch) -> dict[str, tuple[int, ...]]:
    """Key -> shape of every tensor in the official ``dinov2_vit*14_pretrain.pth``."""
    d = arch.embed_dim
    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, d), "pos_embed": (1, 1 + arch.pos_grid ** 2, d), "mask_token": (1, d),
        "patch_embed.proj.weight": (d, 3, PATCH, PATCH), "patch_embed.proj.bias": (d,),
    }
    if arch.swiglu:
        mlp = {"mlp.w12.weight": (2 * arch.mlp_hidden, d), "mlp.w12.bias": (2 * arch.mlp_hidden,),
               "mlp.w3.weight": (d, arch.mlp_hidden), "mlp.w3.bias": (d,)}
    else:
        mlp = {"mlp.fc1.weight": (arch.mlp_hidden, d), "mlp.fc1.bias": (arch.mlp_hidden,),
               "mlp.fc2.weight": (d, arch.mlp_hidden), "mlp.fc2.bias": (d,)}
    block = {"norm1.weight": (d,), "norm1.bias": (d,), "attn.qkv.weight": (3 * d, d), "attn.qkv.bias": (3 * d,),
             "attn.proj.weight": (d, d), "attn.proj.bias": (d,), "ls1.gamma": (d,),
             "norm2.weight": (d,), "norm2.bias": (d,), **mlp, "ls2.gamma": (d,)}
    for i in range(arch.depth):
        shapes.update({f"blocks.{i}.{k}": s for k, s in block.items()})
    shapes.update({"norm.weight": (d,), "norm.bias": (d,)})
    return shapes


def resample_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """DINOv2's ``interpolate_pos_encoding`` for a ``grid`` x ``grid`` input: (1, 1 + M*M, D) ->
    (1, 1 + grid*grid, D), bicubic with scale factor (grid + 0.1) / M, in float32."""
    cls_pos, patch_pos = pos_embed[:, :1].float(), pos_embed[:, 1:].float()
    m, dim = int(round(patch_pos.shape[1] ** 0.5)), patch_pos.shape[2]
    scale = (grid + INTERPOLATE_OFFSET) / m
    resized = F.interpolate(patch_pos.reshape(1, m, m, dim).permute(0, 3, 1, 2), scale_factor=(scale, scale),
                            mode="bicubic")
    if resized.shape[-2:] != (grid, grid):
        raise GanbenchError(f"DINOv2 position embedding: {m}x{m} resampled to {tuple(resized.shape[-2:])}, "
                            f"not {grid}x{grid}")
    return torch.cat([cls_pos, resized.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)], dim=1)


def timm_state_dict(state: dict[str, torch.Tensor], arch: DinoV2Arch) -> dict[str, torch.Tensor]:
    """An official DINOv2 state dict in timm's ``VisionTransformer`` names, for 224 px input.

    Raises:
        GanbenchError: keys or shapes differ from :func:`official_shapes`.
    """
    check_state_dict(state, official_shapes(arch), f"DINOv2 ViT-{arch.name}")
    out = {}
    for key, tensor in state.items():
        if key == "mask_token":  # for masked-image training only
            continue
        out[key.replace(".mlp.w12.", ".mlp.fc1.").replace(".mlp.w3.", ".mlp.fc2.")] = tensor.float()
    out["pos_embed"] = resample_pos_embed(state["pos_embed"], INPUT_SIZE // PATCH)
    return out


def build_vit(arch: DinoV2Arch, device: str | torch.device = "meta") -> torch.nn.Module:
    """timm's VisionTransformer in DINOv2's configuration for 224 px input (uninitialised on meta)."""
    from timm.layers import Mlp, SwiGLUPacked
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=INPUT_SIZE, patch_size=PATCH, embed_dim=arch.embed_dim, depth=arch.depth, num_heads=arch.num_heads,
        mlp_ratio=(2 if arch.swiglu else 1) * arch.mlp_hidden / arch.embed_dim, init_values=1.0, num_classes=0,
        global_pool="token", mlp_layer=SwiGLUPacked if arch.swiglu else Mlp,
        act_layer=torch.nn.SiLU if arch.swiglu else torch.nn.GELU, weight_init="skip", device=device)


def resize_pil(images: torch.Tensor, size: tuple[int, int], resample: int = Image.BICUBIC) -> torch.Tensor:
    """Each uint8 (3, H, W) image resized by PIL as an RGB image (what torchvision's ``Resize``
    does to a PIL image): uint8 (N, 3, size[0], size[1])."""
    out_h, out_w = size
    hwc = images.cpu().permute(0, 2, 3, 1).numpy()
    resized = [np.asarray(Image.fromarray(np.ascontiguousarray(im), "RGB").resize((out_w, out_h), resample=resample))
               for im in hwc]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2)


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """torchvision's ``ToTensor`` then ``Normalize``: uint8 -> float32 ``(x / 255 - mean) / std``."""
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return images.float().div(255).sub_(m).div_(s)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 (N, 3, 224, 224), dgm-eval's DINOv2 input."""
    return normalize(resize_pil(images, (INPUT_SIZE, INPUT_SIZE)), IMAGENET_MEAN, IMAGENET_STD)


class DinoV2Features(FeatureExtractor):
    """DINOv2 ViT: uint8 images of any size -> ``"pool"`` (N, D), the normalised CLS token."""

    provides = FEATURES
    input_size = INPUT_SIZE
    resize = "pil-bicubic"

    def __init__(self, arch: DinoV2Arch, vit: torch.nn.Module):
        super().__init__()
        self.arch = arch
        self.name = f"dinov2-vit-{arch.name}"
        self.vit = vit
        self.requires_grad_(False)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], arch: DinoV2Arch) -> "DinoV2Features":
        """Build from an official DINOv2 state dict (meta tensors give a meta model: a shape check)."""
        mapped = timm_state_dict(state, arch)
        vit = build_vit(arch)
        vit.load_state_dict(mapped, strict=True, assign=True)
        return cls(arch, vit).eval()

    def forward(self, images: torch.Tensor, features: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Features of uint8 images (N, 3, H, W), any H and W: {"pool": float32 (N, D)}."""
        check_request(self, images, features)
        device = self.vit.cls_token.device
        with torch.inference_mode():
            tokens = self.vit.forward_features(preprocess(images).to(device))
        return {"pool": tokens[:, 0].float().clone()}  # ordinary tensors, not inference ones


def _factory(arch: DinoV2Arch):
    spec = WEIGHTS[arch.name]

    def build(weights: str | None = None, device: str | torch.device = "cpu") -> DinoV2Features:
        """DINOv2 with the official weights (or ``weights``), ready for eval.

        Raises:
            MissingFileError: the weights file cannot be found or downloaded.
        """
        return build_from_weights(spec, weights,
                                  lambda path: DinoV2Features.from_state_dict(load_state_dict(path), arch), device)

    return build


for _arch in ARCHS.values():
    register_extractor(
        f"dinov2-vit-{_arch.name}", provides=FEATURES, weights=WEIGHTS[_arch.name],
        description=f"DINOv2 ViT-{_arch.name[0].upper()}/14 CLS token ({_arch.embed_dim}-d; FD_DINOv2 as dgm-eval); "
                    f"weights {WEIGHTS[_arch.name].filename} (sha256 unknown) from {WEIGHTS[_arch.name].url}",
    )(_factory(_arch))
del _arch
