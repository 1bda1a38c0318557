"""clip-vit-* against timm's CLIP ViT given the same OpenAI tensors (converted by timm's own
``_convert_openai_clip``), on seeded weights saved as OpenAI's TorchScript archives; the
archive reader against ``torch.jit.load``; preprocessing against OpenAI's/clean-fid's
torchvision transform and CMMD's crop-and-resize, bit for bit.
"""
from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as TF
from PIL import Image

from ganbench.errors import GanbenchError, MissingFileError
from ganbench.metrics.clip import (ARCHS, CLIP_MEAN, CLIP_STD, ClipImageFeatures, official_visual_shapes, preprocess,
                                   read_clip_weights, read_torchscript_tensors)
from ganbench.registry import feature_extractors
from ganbench.testing_weights import make_seeded_clip_weights, seeded_clip_state_dict
from ganbench.weights import sha256_file

pytestmark = pytest.mark.usefixtures("one_thread")
B32 = ARCHS["clip-vit-b32"]


def _images(n: int, size: int | tuple[int, int], seed: int) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 255
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (smooth + torch.randn(n, 3, h, w, generator=g) * 20).clamp(0, 255).round().to(torch.uint8)


def _pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(image.permute(1, 2, 0).numpy())


def _openai_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """OpenAI CLIP's ``_transform(n_px)`` (clean-fid's img_preprocess_clip + /255 + Normalize)."""
    transform = TF.Compose([TF.Resize(size, interpolation=TF.InterpolationMode.BICUBIC), TF.CenterCrop(size),
                            TF.ToTensor(), TF.Normalize(CLIP_MEAN, CLIP_STD)])
    return torch.stack([transform(_pil(im)) for im in images])


def _cmmd_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """CMMD: io_util._center_crop_and_resize, float32 / 255, clip.normalize_image (float32)."""
    out = []
    for image in images:
        im = _pil(image)
        w, h = im.size
        side = min(w, h)
        top, left = (h - side) // 2, (w - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), resample=Image.BICUBIC)
        x = np.asarray(im).astype(np.float32) / 255.0
        x = (x - np.asarray(CLIP_MEAN, dtype=np.float32)) / np.asarray(CLIP_STD, dtype=np.float32)
        out.append(torch.from_numpy(x).permute(2, 0, 1))
    return torch.stack(out)


def _timm_clip(state: dict[str, torch.Tensor], arch) -> torch.nn.Module:
    from timm.models.vision_transformer import VisionTransformer, _convert_openai_clip

    model = VisionTransformer(img_size=arch.resolution, patch_size=arch.patch, embed_dim=arch.width,
                              depth=arch.layers, num_heads=arch.width // 64, pre_norm=True,
                              norm_layer=partial(torch.nn.LayerNorm, eps=1e-5), act_layer="quick_gelu",
                              num_classes=arch.embed_dim, global_pool="token")
    model.load_state_dict(_convert_openai_clip({k: v.float() for k, v in state.items()}, model), strict=True)
    return model.double().eval()


def _relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


@pytest.fixture(scope="module")
def b32_weights(tmp_path_factory):
    return make_seeded_clip_weights(tmp_path_factory.mktemp("clip") / B32.filename, B32, seed=0)


@pytest.fixture(scope="module")
def b32(b32_weights):
    return feature_extractors.get("clip-vit-b32")(weights=b32_weights)


@pytest.mark.parametrize("size", [32, 64, 256, (40, 56), (300, 250)])
def test_openai_preprocessing_is_bit_exact(size):
    images = _images(2, size, seed=1)
    assert torch.equal(preprocess(images, B32), _openai_input(images, 224))


@pytest.mark.parametrize("size", [32, 64, (40, 56), (300, 250)])
def test_cmmd_preprocessing_is_bit_exact(size):
    images = _images(2, size, seed=2)
    assert torch.equal(preprocess(images, ARCHS["clip-vit-l14-336"]), _cmmd_input(images, 336))


def test_archive_reader_equals_torch_jit_load(b32_weights):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(b32_weights, map_location="cpu").state_dict()
    ours = read_torchscript_tensors(b32_weights)
    assert set(scripted) <= set(ours)
    assert all(torch.equal(ours[k], v) and ours[k].dtype == torch.float16 for k, v in scripted.items())


def test_b32_features_match_timm_on_the_same_tensors(b32, b32_weights):
    state = read_clip_weights(b32_weights)
    images = _images(3, 32, seed=3)
    with torch.no_grad():
        ref = _timm_clip(state, B32)(_openai_input(images, 224).double())
    ours = b32(images)["pool"]
    assert ours.shape == (3, 512) and ours.dtype == torch.float32
    assert (ref[0] - ref[1]).abs().max() > 1e-2 * ref.abs().max()  # image-dependent features
    assert _relative_error(ours, ref) < 1e-4


def test_a_plain_state_dict_file_gives_the_same_features(b32, tmp_path):
    path = tmp_path / "clip-b32.pt"
    torch.save(seeded_clip_state_dict(B32, seed=0), path)
    images = _images(2, 48, seed=4)
    assert torch.equal(feature_extractors.get("clip-vit-b32")(weights=str(path))(images)["pool"], b32(images)["pool"])


@pytest.mark.parametrize("name", list(ARCHS))
def test_official_layouts_are_torch_fidelitys_image_towers(name):
    from torch_fidelity.feature_extractor_clip import VisionTransformer

    arch = ARCHS[name]
    with torch.device("meta"):
        tower = VisionTransformer(arch.resolution, arch.patch, arch.width, arch.layers, arch.width // 64,
                                  arch.embed_dim)
    expected = {f"visual.{k}": tuple(v.shape) for k, v in tower.state_dict().items()}
    expected["text_projection"] = (arch.text_width, arch.embed_dim)
    assert official_visual_shapes(arch) == expected


def test_l14_336_builds_from_seeded_weights():
    arch = ARCHS["clip-vit-l14-336"]
    state = seeded_clip_state_dict(arch, seed=5)
    model = ClipImageFeatures.from_state_dict(state, arch)
    loaded = {f"visual.{k}": v for k, v in model.visual.state_dict().items()}
    assert all(torch.equal(loaded[k], state[k].float()) for k in official_visual_shapes(arch) if k in loaded)
    assert model.input_size == 336 and model.visual.positional_embedding.shape == (24 * 24 + 1, 1024)


def test_provenance_and_listing(b32, b32_weights):
    assert b32.weights_sha256 == sha256_file(b32_weights) and b32.weights_standard is False
    assert b32.describe()["extractor"] == "clip-vit-b32" and b32.describe()["input_size"] == 224
    for name, arch in ARCHS.items():
        description = feature_extractors.metadata(name)["description"]
        assert arch.filename in description and arch.sha256 in description and arch.weights.url in description


def test_missing_weights_name_the_file_and_its_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingFileError, match=f"ViT-L-14-336px.pt \\(sha256 {ARCHS['clip-vit-l14-336'].sha256}"):
        feature_extractors.get("clip-vit-l14-336")()


def test_weights_of_another_model_are_refused(b32_weights):
    with pytest.raises(GanbenchError, match="ViT-L-14.pt weights"):
        ClipImageFeatures.from_state_dict(read_clip_weights(b32_weights), ARCHS["clip-vit-l14"])
