"""swav-resnet50 against StudioGAN's SwAV-FID pipeline on seeded weights in SwAV's file layout.

The oracle network is the one ``torch.hub.load("facebookresearch/swav:main", "resnet50")``
builds (torchvision's ResNet-50, the ``module.`` prefix stripped, ``strict=False``), run
in float64; its input is StudioGAN's "friendly" SwAV preprocessing written out here from
``src/utils/resize.py`` / ``src/utils/ops.py`` (per-channel float PIL bilinear to 224,
``ToTensor``, ``(x / 255 - mean) / std``).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from ganbench.errors import GanbenchError, MissingFileError
from ganbench.metrics.swav import WEIGHTS, SwAVResNet50, preprocess
from ganbench.registry import feature_extractors
from ganbench.testing_weights import make_seeded_swav_weights, seeded_swav_state_dict
from ganbench.weights import sha256_file

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n: int, size: int | tuple[int, int], seed: int) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (smooth + torch.randn(n, 3, h, w, generator=g) * 20).clamp(0, 255).round().to(torch.uint8)


def _studiogan_input(images: torch.Tensor) -> torch.Tensor:
    """StudioGAN: make_resizer("PIL", "bilinear", (224, 224)), ToTensor, then (x/255 - mean)/std."""
    totensor = torchvision.transforms.ToTensor()
    mean = torch.Tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.Tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    resized = []
    for image in images.permute(0, 2, 3, 1).numpy():
        channels = [np.asarray(Image.fromarray(image[:, :, c].astype(np.float32), mode="F")
                               .resize((224, 224), resample=Image.BILINEAR)).reshape(224, 224, 1) for c in range(3)]
        resized.append(totensor(np.concatenate(channels, axis=2).astype(np.float32)))
    return (torch.stack(resized) / 255.0 - mean) / std


@pytest.fixture(scope="module")
def swav_weights(tmp_path_factory):
    return make_seeded_swav_weights(tmp_path_factory.mktemp("swav") / WEIGHTS.filename, seed=0)


@pytest.fixture(scope="module")
def swav(swav_weights):
    return feature_extractors.get("swav-resnet50")(weights=swav_weights)


@pytest.mark.parametrize("size", [32, 64, 224, (40, 56)])
def test_preprocessing_is_bit_exact_with_studiogan(size):
    images = _images(2, size, seed=1)
    assert torch.equal(preprocess(images), _studiogan_input(images))


def test_features_match_the_hub_resnet50_on_the_same_file(swav, swav_weights):
    hub = torchvision.models.resnet50(weights=None)
    state = torch.load(swav_weights, map_location="cpu", weights_only=True)
    hub.load_state_dict({k.replace("module.", ""): v for k, v in state.items()}, strict=False)
    hub.fc = torch.nn.Identity()
    hub = hub.double().eval()
    images = _images(3, 32, seed=2)
    with torch.no_grad():
        ref = hub(_studiogan_input(images).double())
    ours = swav(images)["pool"]
    assert ours.shape == (3, 2048) and ours.dtype == torch.float32
    assert ref.std(0).mean() > 1e-3 * ref.abs().mean()  # image-dependent features
    err = ((ours.double() - ref).abs().max() / ref.abs().max()).item()
    assert err < 1e-4, err


def test_provenance_records_the_file_and_never_calls_it_standard(swav, swav_weights):
    assert swav.weights_sha256 == sha256_file(swav_weights)
    assert swav.weights_standard is False
    assert swav.describe()["extractor"] == "swav-resnet50"
    metadata = feature_extractors.metadata("swav-resnet50")
    assert metadata["provides"] == ("pool",)
    assert WEIGHTS.filename in metadata["description"] and WEIGHTS.url in metadata["description"]


def test_missing_weights_name_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingFileError, match="swav_800ep_pretrain.pth.tar.*sha256 unknown.*GANBENCH_WEIGHTS_DIR"):
        feature_extractors.get("swav-resnet50")()


def test_weights_found_in_the_weights_dir(tmp_path, monkeypatch, swav_weights):
    import shutil

    shutil.copy(swav_weights, tmp_path / WEIGHTS.filename)
    monkeypatch.setenv("GANBENCH_WEIGHTS_DIR", str(tmp_path))
    assert feature_extractors.get("swav-resnet50")().weights_sha256 == sha256_file(swav_weights)


def test_a_state_dict_of_another_network_is_refused():
    state = seeded_swav_state_dict(seed=1)
    state["module.layer4.2.conv3.weight"] = torch.zeros(16, 512, 1, 1)
    with pytest.raises(GanbenchError, match="layer4.2.conv3.weight"):
        SwAVResNet50.from_state_dict(state)
    del state["module.layer4.2.conv3.weight"]
    with pytest.raises(GanbenchError, match="missing"):
        SwAVResNet50.from_state_dict(state)
