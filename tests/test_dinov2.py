"""dinov2-vit-* against an independent float64 DINOv2 forward on seeded weights in the
official file layout, and against dgm-eval's preprocessing.

Oracle: torch-fidelity 0.4's DINOv2 extractor cannot serve (it fetches the network code
with ``torch.hub.load("facebookresearch/dinov2", ...)`` and raises NotImplementedError
for a weights path), so :func:`_reference_dinov2` below is written from the DINOv2
architecture itself: it reads the official keys directly, does the position-embedding
resampling with explicit cubic-convolution weights (PyTorch's bicubic, A = -0.75, with
DINOv2's scale factor (16 + 0.1) / 37), and runs in float64. It shares no code with
timm's VisionTransformer or with ganbench's key mapping.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as TF
from PIL import Image

from ganbench.errors import GanbenchError, MissingFileError
from ganbench.metrics.dinov2 import ARCHS, WEIGHTS, DinoV2Features, preprocess, resample_pos_embed
from ganbench.registry import feature_extractors
from ganbench.testing_weights import make_seeded_dinov2_weights, seeded_dinov2_state_dict
from ganbench.weights import sha256_file

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n: int, size: int | tuple[int, int], seed: int) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 255
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (smooth + torch.randn(n, 3, h, w, generator=g) * 20).clamp(0, 255).round().to(torch.uint8)


def _dgm_eval_input(images: torch.Tensor) -> torch.Tensor:
    """dgm-eval DINOv2Encoder.transform on each image as a PIL image (clean_resize=False)."""
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    transform = TF.Compose([TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor()])
    return torch.stack([TF.Normalize(mean, std)(transform(Image.fromarray(im.permute(1, 2, 0).numpy())))
                        for im in images])


# -- the independent reference ---------------------------------------------------------------
def _cubic_weights(in_size: int, out_size: int, scale: float) -> torch.Tensor:
    """(out, in) float64 matrix of PyTorch's bicubic (A = -0.75, align_corners=False) when
    given ``scale_factor=scale``: output i samples the input at (i + 0.5) / scale - 0.5."""
    a = -0.75

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    for i in range(out_size):
        src = (i + 0.5) / scale - 0.5
        left = math.floor(src)
        t = src - left
        for offset, w in zip((-1, 0, 1, 2), (far(t + 1), near(t), near(1 - t), far(2 - t))):
            weights[i, min(max(left + offset, 0), in_size - 1)] += w
    return weights


def _reference_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    m = int(round((pos_embed.shape[1] - 1) ** 0.5))
    w = _cubic_weights(m, grid, (grid + 0.1) / m)
    patches = pos_embed[0, 1:].double().reshape(m, m, -1)
    resized = torch.einsum("ai,bj,ijd->abd", w, w, patches).reshape(grid * grid, -1)
    return torch.cat([pos_embed[0, :1].double(), resized])[None]


def _reference_dinov2(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """DINOv2's forward, float64, from the official keys: the normalised CLS token (N, D)."""
    s = {k: v.double() for k, v in state.items()}
    n, d = x.shape[0], s["cls_token"].shape[-1]
    heads = d // 64
    patches = F.conv2d(x.double(), s["patch_embed.proj.weight"], s["patch_embed.proj.bias"], stride=14)
    tokens = torch.cat([s["cls_token"].expand(n, 1, d), patches.flatten(2).transpose(1, 2)], dim=1)
    tokens = tokens + _reference_pos_embed(s["pos_embed"], x.shape[-1] // 14)
    depth = len({k.split(".")[1] for k in s if k.startswith("blocks.")})
    for i in range(depth):
        p = {k[len(f"blocks.{i}."):]: v for k, v in s.items() if k.startswith(f"blocks.{i}.")}
        h = F.layer_norm(tokens, (d,), p["norm1.weight"], p["norm1.bias"], eps=1e-6)
        q, k, v = (h @ p["attn.qkv.weight"].T + p["attn.qkv.bias"]).reshape(n, -1, 3, heads, 64).unbind(2)
        scores = torch.einsum("nqhc,nkhc->nhqk", q, k) / 8.0  # sqrt(64)
        attended = torch.einsum("nhqk,nkhc->nqhc", scores.softmax(-1), v).reshape(n, -1, d)
        tokens = tokens + p["ls1.gamma"] * (attended @ p["attn.proj.weight"].T + p["attn.proj.bias"])
        h = F.layer_norm(tokens, (d,), p["norm2.weight"], p["norm2.bias"], eps=1e-6)
        if "mlp.w12.weight" in p:  # SwiGLU
            gate, value = (h @ p["mlp.w12.weight"].T + p["mlp.w12.bias"]).chunk(2, dim=-1)
            mlp = (F.silu(gate) * value) @ p["mlp.w3.weight"].T + p["mlp.w3.bias"]
        else:
            mlp = F.gelu(h @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"]) @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]
        tokens = tokens + p["ls2.gamma"] * mlp
    return F.layer_norm(tokens, (d,), s["norm.weight"], s["norm.bias"], eps=1e-6)[:, 0]


def _relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s14_weights(tmp_path_factory):
    return make_seeded_dinov2_weights(tmp_path_factory.mktemp("dinov2") / WEIGHTS["s14"].filename, ARCHS["s14"])


@pytest.fixture(scope="module")
def s14(s14_weights):
    return feature_extractors.get("dinov2-vit-s14")(weights=s14_weights)


# -- tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64, 256, (40, 56)])
def test_preprocessing_is_bit_exact_with_dgm_eval(size):
    images = _images(2, size, seed=1)
    assert torch.equal(preprocess(images), _dgm_eval_input(images))


def test_pos_embed_is_resampled_as_dinov2_does():
    pos = torch.randn(1, 1 + 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    ours = resample_pos_embed(pos, 16)
    assert ours.shape == (1, 257, 8)
    assert _relative_error(ours, _reference_pos_embed(pos, 16)) < 1e-5  # PyTorch computes in float32
    # the 0.1 offset matters: resampling by size (timm's way, scale 16/37) is another embedding
    by_size = torch.cat([pos[:, :1], F.interpolate(pos[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2), size=16,
                                                   mode="bicubic").permute(0, 2, 3, 1).reshape(1, 256, 8)], 1)
    assert _relative_error(by_size, ours) > 1e-2


def test_s14_features_match_the_reference(s14, s14_weights):
    state = torch.load(s14_weights, map_location="cpu", weights_only=True)
    images = _images(3, 32, seed=2)
    with torch.no_grad():
        ref = _reference_dinov2(state, _dgm_eval_input(images))
    ours = s14(images)["pool"]
    assert ours.shape == (3, 384) and ours.dtype == torch.float32
    assert (ref[0] - ref[1]).abs().max() > 1e-2 * ref.abs().max()  # image-dependent features
    assert _relative_error(ours, ref) < 1e-4


def test_swiglu_blocks_of_vit_g_match_the_reference():
    """ViT-g's own block (width 1536, SwiGLU w12/w3), two of them: the mapping and the MLP numerics."""
    arch = dataclasses.replace(ARCHS["g14"], depth=2)
    state = seeded_dinov2_state_dict(arch, seed=3)
    model = DinoV2Features.from_state_dict(state, arch)
    images = _images(2, 28, seed=3)
    with torch.no_grad():
        ref = _reference_dinov2(state, _dgm_eval_input(images))
    assert _relative_error(model(images)["pool"], ref) < 1e-4


@pytest.mark.parametrize("name", ["b14", "l14", "g14"])
def test_every_official_layout_maps_onto_the_network(name):
    model = DinoV2Features.from_state_dict(seeded_dinov2_state_dict(ARCHS[name], device="meta"), ARCHS[name])
    assert model.vit.pos_embed.shape == (1, 257, ARCHS[name].embed_dim)
    assert sum(p.numel() for p in model.parameters()) > {"b14": 85e6, "l14": 300e6, "g14": 1.1e9}[name]


def test_l14_builds_from_seeded_weights_and_runs():
    model = DinoV2Features.from_state_dict(seeded_dinov2_state_dict(ARCHS["l14"], seed=4), ARCHS["l14"])
    out = model(_images(1, 32, seed=4))["pool"]
    assert out.shape == (1, 1024) and torch.isfinite(out).all()


def test_provenance_and_listing(s14, s14_weights):
    assert s14.weights_sha256 == sha256_file(s14_weights) and s14.weights_standard is False
    assert s14.describe()["extractor"] == "dinov2-vit-s14"
    for name in ARCHS:
        description = feature_extractors.metadata(f"dinov2-vit-{name}")["description"]
        assert WEIGHTS[name].filename in description and WEIGHTS[name].url in description
        assert "sha256 unknown" in description


def test_missing_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingFileError, match="dinov2_vitl14_pretrain.pth.*sha256 unknown"):
        feature_extractors.get("dinov2-vit-l14")()


def test_weights_of_another_size_are_refused():
    with pytest.raises(GanbenchError, match="DINOv2 ViT-s14 weights"):
        DinoV2Features.from_state_dict(seeded_dinov2_state_dict(ARCHS["b14"], device="meta"), ARCHS["s14"])
