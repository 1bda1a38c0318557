"""Seeded stand-ins, in the official file layouts, for the weights of the SwAV, DINOv2 and
CLIP feature extractors (the Inception and VGG16 ones are in :mod:`ganbench.testing`).

The official files are not available offline. These functions write files with the
official keys, shapes and container format, filled from a seeded generator, so that
ganbench's loader and an independent implementation can be compared on identical (if
meaningless) networks. They are never ``standard`` weights.
"""
from __future__ import annotations

import math
import os

import torch


def _normal(shape: tuple[int, ...], std: float, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator).mul_(std)


def _he_normal(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return _normal(shape, math.sqrt(2.0 / math.prod(shape[1:])), generator)


def _save(state: dict[str, torch.Tensor], path: str | os.PathLike) -> str:
    with open(path, "wb") as f:  # a file object: the bytes depend on the seed only
        torch.save(state, f)
    return str(path)


# -- SwAV ------------------------------------------------------------------------------------
def seeded_swav_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """``swav_800ep_pretrain.pth.tar``'s layout: torchvision ResNet-50 keys (no ``fc``) and
    SwAV's projection head (2048-2048-128, BN) and 3000 prototypes, all behind ``module.``.

    Batch norms get non-trivial statistics (so that a mapping that drops them shows), and
    each block's last BN a small scale (so that 16 residual blocks of He-normal weights
    neither explode nor collapse).
    """
    from ganbench.metrics.swav import resnet50_backbone_shapes

    generator = torch.Generator().manual_seed(seed)
    head = {"projection_head.0.weight": (2048, 2048), "projection_head.0.bias": (2048,),
            "projection_head.1.weight": (2048,), "projection_head.1.bias": (2048,),
            "projection_head.1.running_mean": (2048,), "projection_head.1.running_var": (2048,),
            "projection_head.3.weight": (128, 2048), "projection_head.3.bias": (128,),
            "prototypes.weight": (3000, 128)}
    state: dict[str, torch.Tensor] = {}
    for key, shape in {**resnet50_backbone_shapes(), **head}.items():
        state[f"module.{key}"] = _seeded_resnet_tensor(key, shape, generator)
    return state


def _seeded_resnet_tensor(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    if key.endswith("running_var"):
        return torch.rand(shape, generator=generator).add_(0.5)
    if key.endswith("running_mean") or key.endswith("bias"):
        return _normal(shape, 0.05, generator)
    if len(shape) == 1:  # a BN scale
        scale = 0.2 if key.endswith(("bn3.weight", "downsample.1.weight")) else 1.0
        return torch.rand(shape, generator=generator).add_(0.5).mul_(scale)
    return _he_normal(shape, generator)


def make_seeded_swav_weights(path: str | os.PathLike, seed: int = 0) -> str:
    """Write :func:`seeded_swav_state_dict` to ``path`` (about 130 MB, like the official file)."""
    return _save(seeded_swav_state_dict(seed), path)


# -- DINOv2 ----------------------------------------------------------------------------------
def seeded_dinov2_state_dict(arch, seed: int = 0, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``dinov2_vit*14_pretrain.pth``'s layout for ``arch`` (a :class:`ganbench.metrics.dinov2.DinoV2Arch`).

    Layer norms and layer scales get non-trivial values (so that a mapping that drops one
    shows); on ``device="meta"`` only the keys and shapes exist (a mapping check for the
    large sizes).
    """
    from ganbench.metrics.dinov2 import official_shapes

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_shapes(arch).items():
        if device == "meta" or str(device) == "meta":
            state[key] = torch.empty(shape, device="meta")
        else:
            state[key] = _seeded_vit_tensor(key, shape, generator)
    return state


def _seeded_vit_tensor(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    if key.endswith(("norm1.weight", "norm2.weight", "norm.weight", "ln_1.weight", "ln_2.weight",
                     "ln_pre.weight", "ln_post.weight")):
        return torch.rand(shape, generator=generator).add_(0.5)
    if key.endswith(".gamma"):  # layer scale
        return torch.rand(shape, generator=generator).mul_(0.5).add_(0.05)
    if len(shape) == 1 or key.endswith(("cls_token", "mask_token", "class_embedding")):
        return _normal(shape, 0.1 if key.endswith("bias") else 1.0, generator)
    if key.endswith(("pos_embed", "positional_embedding")):
        return _normal(shape, 0.5, generator)
    return _he_normal(shape, generator) if len(shape) == 4 else _normal(shape, shape[-1] ** -0.5, generator)


def make_seeded_dinov2_weights(path: str | os.PathLike, arch, seed: int = 0) -> str:
    """Write :func:`seeded_dinov2_state_dict` to ``path``; return the path."""
    return _save(seeded_dinov2_state_dict(arch, seed), path)


# -- OpenAI CLIP -----------------------------------------------------------------------------
_CLIP_VOCAB, _CLIP_CONTEXT = 49408, 77


class _ClipLayout(torch.nn.Module):
    """OpenAI's CLIP module names and shapes: the whole image tower, the text tower's
    embeddings, final norm and projection, and one text block (OpenAI's have 12; the image
    features never read them)."""

    def __init__(self, arch):
        super().__init__()
        from torch_fidelity.feature_extractor_clip import LayerNorm, ResidualAttentionBlock, VisionTransformer

        self.visual = VisionTransformer(arch.resolution, arch.patch, arch.width, arch.layers, arch.width // 64,
                                        arch.embed_dim)
        self.transformer = torch.nn.Module()
        self.transformer.resblocks = torch.nn.Sequential(ResidualAttentionBlock(arch.text_width,
                                                                                arch.text_width // 64))
        self.token_embedding = torch.nn.Embedding(_CLIP_VOCAB, arch.text_width)
        self.positional_embedding = torch.nn.Parameter(torch.empty(_CLIP_CONTEXT, arch.text_width))
        self.ln_final = LayerNorm(arch.text_width)
        self.text_projection = torch.nn.Parameter(torch.empty(arch.text_width, arch.embed_dim))
        self.logit_scale = torch.nn.Parameter(torch.ones([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def seeded_clip_state_dict(arch, seed: int = 0) -> dict[str, torch.Tensor]:
    """The tensors of a seeded OpenAI CLIP file for ``arch`` (a
    :class:`ganbench.metrics.clip.ClipArch`), float16 as OpenAI ships them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in _ClipLayout(arch).state_dict().items()}
    return {k: (_seeded_vit_tensor(k, s, generator) if s else torch.tensor(4.6052)).half() for k, s in shapes.items()}


def make_seeded_clip_weights(path: str | os.PathLike, arch, seed: int = 0) -> str:
    """Write a TorchScript archive laid out as OpenAI's ``ViT-*.pt`` (module names, float16
    tensors) holding :func:`seeded_clip_state_dict`; return the path."""
    import warnings

    module = _ClipLayout(arch).half()
    module.load_state_dict(seeded_clip_state_dict(arch, seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; OpenAI's files are TorchScript
        torch.jit.save(torch.jit.script(module.eval()), str(path))
    return str(path)
